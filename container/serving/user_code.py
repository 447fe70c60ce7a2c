"""Find and import the user's inference code, and load the model its `model_fn` returns.

`code/inference.py` in the model folder, or the module `SAGEMAKER_PROGRAM` names (looked up in
`SAGEMAKER_SUBMIT_DIRECTORY`, an s3 or local `sourcedir.tar.gz` included, then the model's
`code/`), with SageMaker's hook names. Problems found here (no such module, it does not
import, `transform_fn` mixed with the steps it replaces, `model_fn` fails or returns what the
built-in steps cannot use) stop `serve` with a sentence. `user_hooks.py` makes the functions
steps of the /invocations pipeline.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xgboost as xgb

from container.errors import ModelLoadError
from container.serving.model_loading import LoadedModel, describe, load_model
from container.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_PROGRAM = "inference.py"
CODE_FOLDER = "code"
MODEL_FN = "model_fn"
INPUT_FN = "input_fn"
PREDICT_FN = "predict_fn"
OUTPUT_FN = "output_fn"
TRANSFORM_FN = "transform_fn"
HOOKS = (MODEL_FN, INPUT_FN, PREDICT_FN, OUTPUT_FN, TRANSFORM_FN)
STEPS = (INPUT_FN, PREDICT_FN, OUTPUT_FN)
"""The request steps `transform_fn` replaces as a whole."""


@dataclass(frozen=True)
class UserCode:
    """The hook functions one user module defines, by SageMaker's names."""

    path: Path
    functions: dict[str, Callable[..., Any]]

    def get(self, name: str) -> Callable[..., Any] | None:
        return self.functions.get(name)


def _local_path(location: str) -> Path | None:
    """`file:///x` or `/x` as a path; None for a remote (s3) location."""
    if location.startswith("file://"):
        return Path(location.removeprefix("file://"))
    return None if "://" in location else Path(location)


def find_user_code(settings: Settings) -> Path | None:
    """The user's inference module, or None when the model folder has none (built-in only).

    With `SAGEMAKER_PROGRAM` set, a missing module is a start-up error naming where we looked.
    """
    program = settings.program
    name = program or DEFAULT_PROGRAM
    places: list[Path] = []
    submit = settings.submit_directory
    if submit and program:
        local = _local_path(submit)
        if local is None or local.is_file():  # an s3 URI or a tarball
            places.append(_extract_code(submit, settings.paths.code_dir) / name)
        else:
            places.append(local / name)
    places.append(settings.paths.model_dir / CODE_FOLDER / name)
    for path in places:
        if path.is_file():
            return path
    if program:
        raise ModelLoadError(
            f"SAGEMAKER_PROGRAM={program!r} names no file: looked for "
            f"{', '.join(str(p) for p in places)}. Put the inference script in the model's "
            f"{CODE_FOLDER}/ folder or pass source_dir= with entry_point=."
        )
    return None


def _extract_code(source: str, code_dir: Path) -> Path:
    """Fetch a `sourcedir.tar.gz` (s3 URI or local tarball) into `code_dir` (sagemaker-training)."""
    from sagemaker_training import files

    try:
        files.download_and_extract(uri=source.removeprefix("file://"), path=str(code_dir))
    except Exception as exc:
        raise ModelLoadError(
            f"Could not fetch the inference code from SAGEMAKER_SUBMIT_DIRECTORY={source}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return code_dir


def import_user_code(path: Path) -> UserCode:
    """Import the module at `path` (its folder first on `sys.path`, for sibling modules) and
    collect its hooks; refuse `transform_fn` mixed with the steps it replaces."""
    if sys.modules.get("sklearn", False) is None:
        del sys.modules["sklearn"]  # serving hides it for speed; user code may import it
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"{path} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(path.stem, None)
        log.error("Importing the inference code %s failed:", path, exc_info=True)
        raise ModelLoadError(
            f"The inference code {path} does not import: {_summary(exc)}. "
            "The traceback is in the log above."
        ) from exc
    functions = {
        name: getattr(module, name) for name in HOOKS if callable(getattr(module, name, None))
    }
    mixed = [name for name in STEPS if name in functions]
    if TRANSFORM_FN in functions and mixed:
        raise ModelLoadError(
            f"{path} defines transform_fn and {', '.join(mixed)}: transform_fn replaces "
            f"input_fn, predict_fn and output_fn together, so define either transform_fn or "
            "those three (each optional), not both."
        )
    log.info(
        "Inference code %s: %s; built-in for the rest.",
        path,
        ", ".join(functions) if functions else "no hook functions",
    )
    return UserCode(path=path, functions=functions)


def _summary(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({Path(exc.filename or '?').name}, line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}"


def load_user_model(code: UserCode, settings: Settings) -> tuple[Any, LoadedModel | None]:
    """The model the hooks get (`model_fn`'s, else the booster from `xgboost-model`) and, when
    it is an XGBoost model, its facts for the built-in steps."""
    model_dir = settings.paths.model_dir
    model_fn = code.get(MODEL_FN)
    if model_fn is None:
        loaded = load_model(model_dir, nthread=1, max_features=settings.serving.max_columns)
        return loaded.booster, loaded
    try:
        # One OpenMP thread while loading: a multi-threaded pool in the gunicorn master would
        # hang XGBoost in the forked workers.
        with xgb.config_context(nthread=1):
            model = model_fn(str(model_dir))
    except Exception as exc:
        log.error("model_fn in %s failed:", code.path, exc_info=True)
        raise ModelLoadError(
            f"model_fn in {code.path} raised {_summary(exc)}; the traceback is in the log above."
        ) from exc
    booster = model.get_booster() if isinstance(model, xgb.XGBModel) else model
    loaded = None
    if isinstance(booster, xgb.Booster):
        booster.set_param("nthread", 1)  # workers set their own count after forking
        loaded = describe(booster, None, settings.serving.max_columns, f"model_fn in {code.path}")
    needs_booster = code.get(PREDICT_FN) is None and code.get(TRANSFORM_FN) is None
    if needs_booster and loaded is None:
        raise ModelLoadError(
            f"model_fn in {code.path} returned {type(model).__name__}, but without predict_fn "
            "the built-in prediction needs an xgboost.Booster (or XGBoost scikit-learn model): "
            "return one from model_fn, or define predict_fn(data, model)."
        )
    return model, loaded


def load_user_code(settings: Settings) -> UserCode | None:
    """The user's inference module, imported, or None when there is none (built-in only)."""
    path = find_user_code(settings)
    return None if path is None else import_user_code(path)
