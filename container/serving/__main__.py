"""`python -m container.serving` (what `./serve` execs): start the inference server."""

import sys

# xgboost imports scikit-learn at import time when it is installed (1.5 s of start-up here);
# serving never uses it, so it is hidden from this process only.
sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]

from container.serving.server import main  # noqa: E402

raise SystemExit(main())
