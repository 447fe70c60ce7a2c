"""`python -m container.serving` (what `./serve` execs): start the inference server."""

import sys

from container.settings import Settings

_settings = Settings.from_environ()
_user_code = (
    _settings.program
    or _settings.submit_directory
    or (_settings.paths.model_dir / "code" / "inference.py").exists()
)
if not _user_code:
    # xgboost imports scikit-learn at import time (1.5 s of start-up here); the built-in
    # server never uses it, so it is hidden from this process unless user code may need it.
    sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]

from container.serving.server import main  # noqa: E402

raise SystemExit(main())
