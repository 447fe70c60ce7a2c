"""The user's own inference functions, with SageMaker's names, in place of the built-in steps.

`code/inference.py` in the model folder (or the module `SAGEMAKER_PROGRAM` names, looked up in
`SAGEMAKER_SUBMIT_DIRECTORY` and then the model's `code/`) may define any of

    model_fn(model_dir) -> model           input_fn(body, content_type) -> data
    predict_fn(data, model) -> prediction  output_fn(prediction, accept) -> body | (body, type)

or `transform_fn(model, body, content_type, accept)` instead of the last three. Each missing
function falls back to the built-in step; the built-in input_fn gives a user's predict_fn an
`xgb.DMatrix`, as the built-in algorithm's does. Problems found at start-up (the module does not
import, `transform_fn` mixed with the others, `model_fn` fails or returns what the built-in
steps cannot use) stop `serve` with a sentence. At request time an exception in user code is a
500 whose traceback goes to the log; `ClientError("...", status=4xx)` (or any exception with an
integer `status_code`) answers the client with that status and message.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import xgboost as xgb
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from container.errors import ClientError, ContainerError, ModelLoadError, UserCodeError
from container.serving import headers
from container.serving.app import create_app
from container.serving.codecs import DECODERS, ENCODERS, Limits, decode_rows
from container.serving.model_loading import LoadedModel, describe, load_model
from container.serving.payload import read_body
from container.serving.predictions import SCORE, Output, Predictor, parse_output_keys
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


class UserInference:
    """Answers /invocations with the user's hooks, the built-in step for each one missing."""

    def __init__(
        self, code: UserCode, model: Any, loaded: LoadedModel | None, settings: Settings
    ) -> None:
        self.code = code
        self.model = model
        self.loaded = loaded
        self.predictor = Predictor(loaded) if loaded is not None else None
        serving = settings.serving
        self.serving = serving
        self.limits = Limits(max_rows=serving.max_rows, max_columns=serving.max_columns)
        self.default_accept = headers.media_type_of(serving.default_accept)
        self.default_keys = (
            parse_output_keys(
                serving.inference_output, loaded.objective, "SAGEMAKER_INFERENCE_OUTPUT"
            )
            if loaded is not None
            else ()
        )

    def answer(self) -> Response:
        """The /invocations view: body → input → predict → output, each step user or built-in."""
        body = bytes(
            read_body(request.stream, request.content_length, self.serving.max_payload_bytes)
        )
        content_type = (request.headers.get("Content-Type") or "").strip()
        accept_header = request.headers.get("Accept")
        transform_fn = self.code.get(TRANSFORM_FN)
        if transform_fn is not None:
            accept = self._user_accept(accept_header)
            result = self._call(
                TRANSFORM_FN, self.model, body, content_type or headers.DEFAULT_CONTENT_TYPE, accept
            )
            return self._user_response(TRANSFORM_FN, result, accept)

        input_fn = self.code.get(INPUT_FN)
        predict_fn = self.code.get(PREDICT_FN)
        if input_fn is not None:
            data = self._call(INPUT_FN, body, content_type or headers.DEFAULT_CONTENT_TYPE)
        else:
            data = self._decode(body, content_type, for_user=predict_fn is not None)
        if predict_fn is not None:
            prediction = self._call(PREDICT_FN, data, self.model)
        else:
            prediction = self._predict(data)
        output_fn = self.code.get(OUTPUT_FN)
        if output_fn is not None:
            accept = self._user_accept(accept_header)
            return self._user_response(OUTPUT_FN, self._call(OUTPUT_FN, prediction, accept), accept)
        return self._encode(prediction, accept_header, builtin_prediction=predict_fn is None)

    def _call(self, name: str, *args: Any) -> Any:
        """Run one user function; its own 4xx passes to the client, anything else is a 500."""
        try:
            return self.code.functions[name](*args)
        except HTTPException:
            raise
        except ContainerError as exc:
            if 400 <= exc.status < 600:
                raise
            raise UserCodeError(
                f"{name} in {self.code.path} raised {type(exc).__name__} with status "
                f"{exc.status}, which is not an HTTP error status (400-599)."
            ) from exc
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            if isinstance(status, int) and not isinstance(status, bool) and 400 <= status < 500:
                message = getattr(exc, "message", None)
                raise ClientError(
                    message if isinstance(message, str) else str(exc), status
                ) from exc
            raise UserCodeError(
                f"{name} in {self.code.path} raised {type(exc).__name__}: {exc}"
            ) from exc

    def _user_accept(self, header: str | None) -> str:
        """What a user function gets as `accept`: the header, or the default for none or */*."""
        value = (header or "").strip()
        return self.default_accept if value in ("", "*/*") else value

    def _user_response(self, name: str, result: Any, accept: str) -> Response:
        """A user function's answer: bytes or str (sent as `accept`), or (body, content_type)."""
        if isinstance(result, Response):
            return result
        single = "," not in accept and "*" not in accept
        content_type = headers.media_type_of(accept) if single else self.default_accept
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
            result, content_type = result
        if isinstance(result, str):
            result = result.encode("utf-8")
        if not isinstance(result, bytes | bytearray | memoryview):
            raise UserCodeError(
                f"{name} in {self.code.path} returned {type(result).__name__}; it must return "
                "bytes, str, or a (body, content_type) tuple."
            )
        return Response(bytes(result), status=200, content_type=content_type)

    def _decode(self, body: bytes, content_type: str, for_user: bool) -> Any:
        """The built-in input_fn: the server's decoders, with their 415 and 400 sentences.

        The rows go to the user's predict_fn as an `xgb.DMatrix`, what the built-in algorithm's
        input_fn gives it (so `model.predict(data)` works); the built-in predict_fn takes them
        as they are decoded (numpy or CSR), its fast path.
        """
        media_type = headers.parse_content_type(content_type or None, DECODERS)
        rows = decode_rows(media_type, body, self.limits)
        return xgb.DMatrix(rows) if for_user else rows

    def _predict(self, data: Any) -> np.ndarray:
        """The built-in predict_fn: the booster on numpy, CSR, pandas or DMatrix input."""
        assert self.loaded is not None and self.predictor is not None  # checked at start-up
        booster = self.loaded.booster
        if isinstance(data, xgb.DMatrix):
            return booster.predict(data)
        pandas = sys.modules.get("pandas")
        if pandas is not None and isinstance(data, pandas.DataFrame):
            return booster.inplace_predict(data)
        if isinstance(data, scipy.sparse.csr_matrix):
            return self.predictor.predict(data)
        if isinstance(data, np.ndarray) and data.ndim == 2 and data.dtype.kind in "biuf":
            return self.predictor.predict(data.astype(np.float32, copy=False))
        raise UserCodeError(
            f"input_fn in {self.code.path} returned {_shape_of(data)}; the built-in predict_fn "
            "takes a 2-D numeric numpy array, a scipy CSR matrix, a pandas DataFrame or an "
            "xgboost.DMatrix. Return one of those, or define predict_fn(data, model)."
        )

    def _encode(
        self, prediction: Any, accept_header: str | None, builtin_prediction: bool
    ) -> Response:
        """The built-in output_fn: the server's encoders and output keys."""
        accept = headers.choose_accept(accept_header, ENCODERS, self.default_accept)
        attributes = request.headers.get(headers.CUSTOM_ATTRIBUTES)
        if builtin_prediction and self.predictor is not None and self.loaded is not None:
            chosen = headers.requested_output(attributes)
            keys = (
                self.default_keys
                if chosen is None
                else parse_output_keys(chosen, self.loaded.objective, headers.CUSTOM_ATTRIBUTES)
            )
            output = self.predictor.output(prediction, keys)
        else:
            output = Output(((SCORE, self._as_array(prediction)),), selected=False)
        response = Response(
            ENCODERS[accept](output, self.serving.batch), status=200, mimetype=accept
        )
        if attributes is not None:
            response.headers[headers.CUSTOM_ATTRIBUTES] = attributes
        return response

    def _as_array(self, prediction: Any) -> np.ndarray:
        try:
            array = np.asarray(prediction)
        except (ValueError, TypeError):
            array = np.asarray(None)
        if array.ndim in (1, 2) and array.dtype.kind in "biuf" and len(array):
            return array
        raise UserCodeError(
            f"predict_fn in {self.code.path} returned {_shape_of(prediction)}; the built-in "
            "output_fn writes a numeric array with one value or row per input row. Return "
            "one, or define output_fn(prediction, accept)."
        )


def _shape_of(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.ndim}-D numpy array of {value.dtype}"
    return f"a {type(value).__module__}.{type(value).__qualname__}".replace("builtins.", "")


def load_application(settings: Settings) -> tuple[LoadedModel | None, Flask] | None:
    """The app around the user's inference code, or None when the model folder has none."""
    path = find_user_code(settings)
    if path is None:
        return None
    code = import_user_code(path)
    model, loaded = load_user_model(code, settings)
    inference = UserInference(code, model, loaded, settings)
    return loaded, create_app(loaded, settings, user_view=inference.answer)
