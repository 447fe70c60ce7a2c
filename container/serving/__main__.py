"""`python -m container.serving` (what `./serve` execs): start the inference server."""

import sys

from container.settings import Settings


def _may_run_user_code() -> bool:
    """Whether user inference code may be loaded (cheap: no model or package imports)."""
    try:
        settings = Settings.from_environ()
    except ValueError:
        return False  # main() reports the bad setting
    return bool(
        settings.program
        or settings.submit_directory
        or (settings.paths.model_dir / "code" / "inference.py").exists()
    )


if not _may_run_user_code():
    # xgboost imports scikit-learn at import time (1.5 s of start-up here); the built-in
    # server never uses it, so it is hidden from this process unless user code may need it.
    sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]

from container.serving.supervisor import main  # noqa: E402

raise SystemExit(main())
