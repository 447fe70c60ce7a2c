"""POST /invocations as one pipeline, run as a plain WSGI application: headers → decode →
predict → output keys → encode → response, with the custom attributes echoed.

The built-in steps are the defaults; a user's `input_fn`, `predict_fn`, `output_fn` or
`transform_fn` (`user_hooks.py`) replaces its step when the pipeline is built, so a request
runs no dispatch on what the user defined. The pipeline runs on every prediction, so it skips
Flask's per-request machinery (request context, URL matching, request and response objects):
for one row that machinery cost more than the prediction. Measured side by side on this 2-core
machine, 1-row requests at 8 clients through gunicorn (five alternating rounds): the same steps
as a Flask view ran at 2,083-2,506 req/s, as this application at 2,880-3,190 (binary model).
Flask still serves every other route and 404s (`app.py`); failures here are answered by the
same function as Flask's (`failures.py`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import numpy as np
import scipy.sparse
import xgboost as xgb
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.utils import get_content_type
from werkzeug.wsgi import get_content_length, get_input_stream

from container.errors import MethodNotAllowed, UserCodeError
from container.serving import headers
from container.serving.codecs import DECODERS, ENCODERS, Limits, decode_rows
from container.serving.failures import error_answer
from container.serving.model_loading import LoadedModel
from container.serving.payload import read_body
from container.serving.predictions import SCORE, Features, Output, Predictor, parse_output_keys
from container.serving.user_code import INPUT_FN, OUTPUT_FN, PREDICT_FN, TRANSFORM_FN
from container.serving.user_hooks import Answer, UserHooks, user_accept, user_content_type
from container.settings import Settings

PATH = "/invocations"
METHODS = ("POST",)
_ATTRIBUTES_KEY = "HTTP_" + headers.CUSTOM_ATTRIBUTES.upper().replace("-", "_")
_ATTRIBUTE_SOURCE = f"{headers.CUSTOM_ATTRIBUTES} {headers.OUTPUT_ATTRIBUTE}="


class Invocations:
    """Answers /invocations for `model` with the built-in steps, each replaced by the user's
    function of that name in `hooks`; output keys from settings are validated when built.

    `model` is None only when the user's `model_fn` returned something other than an XGBoost
    model, and then the user's functions do every step that needs one (`user_code.py`).
    """

    def __init__(
        self,
        model: LoadedModel | None,
        settings: Settings,
        default_accept: str,
        hooks: UserHooks | None = None,
    ) -> None:
        serving = settings.serving
        self.predictor = Predictor(model) if model is not None else None
        self.objective = model.objective if model is not None else ""
        self.default_keys = (
            parse_output_keys(
                serving.inference_output, model.objective, "SAGEMAKER_INFERENCE_OUTPUT"
            )
            if model is not None
            else ()
        )
        self.default_accept = default_accept
        self.limits = Limits(max_rows=serving.max_rows, max_columns=serving.max_columns)
        self.max_payload_bytes = serving.max_payload_bytes
        self.batch = serving.batch
        self.hooks = hooks
        defined = hooks.code.functions if hooks is not None else {}
        self.user_input = INPUT_FN in defined or TRANSFORM_FN in defined
        self.user_output = OUTPUT_FN in defined or TRANSFORM_FN in defined
        self.select_keys = PREDICT_FN not in defined and not self.user_output
        # Each step is the built-in one unless the user's code defines it.
        self.transform: Callable[[bytearray, str, str], Answer] | None = None
        self.decode: Callable[[bytearray, str], Any] = self._decode
        self.predict: Callable[[Any], Any] = self._predict
        self.encode: Callable[[Any, str, tuple[str, ...]], Answer] = self._encode
        if hooks is not None:
            if TRANSFORM_FN in defined:
                self.transform = hooks.transform_step(default_accept)
            if INPUT_FN in defined:
                self.decode = hooks.input_step()
            elif PREDICT_FN in defined:
                self.decode = self._decode_for_user
            if PREDICT_FN in defined:
                self.predict = hooks.predict_step()
            if OUTPUT_FN in defined:
                self.encode = hooks.output_step(default_accept)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, response_headers, body = self._answer(environ)
        except Exception as error:  # every failure is answered, as Flask's handler does
            status, body = error_answer(error, environ["REQUEST_METHOD"], PATH)
            response_headers = [("Content-Type", "application/json")]
            if isinstance(error, MethodNotAllowed):
                response_headers.append(("Allow", ", ".join(METHODS)))
        response_headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}", response_headers)
        return [body]

    def _answer(self, environ: WSGIEnvironment) -> Answer:
        """The status, headers and body for one request; raises typed errors.

        The headers are checked (415, 406, unknown output keys) before the body is read.
        """
        if environ["REQUEST_METHOD"] not in METHODS:
            raise MethodNotAllowed(
                f"The method is not allowed for {PATH}; send the rows with POST."
            )
        content_type = environ.get("CONTENT_TYPE")
        content_type = (
            user_content_type(content_type)
            if self.user_input
            else headers.parse_content_type(content_type, DECODERS)
        )
        accept = environ.get("HTTP_ACCEPT")
        accept = (
            user_accept(accept, self.default_accept)
            if self.user_output
            else headers.choose_accept(accept, ENCODERS, self.default_accept)
        )
        attributes = environ.get(_ATTRIBUTES_KEY)
        keys = self._keys(attributes) if self.select_keys else ()
        body = read_body(
            get_input_stream(environ), get_content_length(environ), self.max_payload_bytes
        )
        if self.transform is not None:
            status, response_headers, answer = self.transform(body, content_type, accept)
        else:
            data = self.decode(body, content_type)
            del body  # a batch body is the largest object here: free it before predicting
            status, response_headers, answer = self.encode(self.predict(data), accept, keys)
        if attributes is not None:
            response_headers.append((headers.CUSTOM_ATTRIBUTES, attributes))
        return status, response_headers, answer

    def _keys(self, attributes: str | None) -> tuple[str, ...]:
        """The output keys: the request's `inference_output=` attribute, else the default."""
        chosen = headers.requested_output(attributes)
        if chosen is None:
            return self.default_keys
        return parse_output_keys(chosen, self.objective, _ATTRIBUTE_SOURCE)

    # --- The built-in steps ---------------------------------------------------------------

    def _decode(self, body: bytearray, media_type: str) -> Features:
        """input_fn: the rows of the body, by the decoder of its content type."""
        return decode_rows(media_type, body, self.limits)

    def _decode_for_user(self, body: bytearray, media_type: str) -> xgb.DMatrix:
        """input_fn before a user's predict_fn: the rows as an `xgb.DMatrix`, what the built-in
        algorithm's input_fn gives it (so `model.predict(data)` works)."""
        return xgb.DMatrix(self._decode(body, media_type))

    def _predict(self, data: Any) -> np.ndarray:
        """predict_fn: the booster on the decoded rows (numpy or CSR: the fast path), or on
        what a user's input_fn returned (pandas or a DMatrix too)."""
        predictor = self.predictor
        assert predictor is not None  # without a booster, start-up requires predict_fn
        if isinstance(data, np.ndarray) and data.ndim == 2 and data.dtype.kind in "biuf":
            return predictor.predict(data.astype(np.float32, copy=False))
        if isinstance(data, scipy.sparse.csr_matrix):
            return predictor.predict(data)
        pandas = sys.modules.get("pandas")
        if isinstance(data, xgb.DMatrix) or (
            pandas is not None and isinstance(data, pandas.DataFrame)
        ):
            return predictor.predict_other(data)
        where = self.hooks.code.path if self.hooks is not None else "the input step"
        raise UserCodeError(
            f"input_fn in {where} returned {_shape_of(data)}; the built-in predict_fn "
            "takes a 2-D numeric numpy array, a scipy CSR matrix, a pandas DataFrame or an "
            "xgboost.DMatrix. Return one of those, or define predict_fn(data, model)."
        )

    def _encode(self, prediction: Any, accept: str, keys: tuple[str, ...]) -> Answer:
        """output_fn: the selected output keys, written by the encoder of the response type."""
        if self.select_keys:
            assert self.predictor is not None
            output = self.predictor.output(prediction, keys)
        else:
            output = Output(((SCORE, self._as_array(prediction)),), selected=False)
        answer = ENCODERS[accept](output, self.batch)
        return 200, [("Content-Type", get_content_type(accept, "utf-8"))], answer

    def _as_array(self, prediction: Any) -> np.ndarray:
        """A user predict_fn's answer as the numeric array the built-in output_fn writes."""
        try:
            array = np.asarray(prediction)
        except (ValueError, TypeError):
            array = np.asarray(None)
        if array.ndim in (1, 2) and array.dtype.kind in "biuf" and len(array):
            return array
        where = self.hooks.code.path if self.hooks is not None else "the predict step"
        raise UserCodeError(
            f"predict_fn in {where} returned {_shape_of(prediction)}; the built-in "
            "output_fn writes a numeric array with one value or row per input row. Return "
            "one, or define output_fn(prediction, accept)."
        )


def _shape_of(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.ndim}-D numpy array of {value.dtype}"
    return f"a {type(value).__module__}.{type(value).__qualname__}".replace("builtins.", "")


class InvocationsFirst:
    """WSGI middleware: requests for `PATH` go to the invocations pipeline, the rest to Flask."""

    def __init__(self, flask_app: WSGIApplication, invocations: Invocations) -> None:
        self.flask_app = flask_app
        self.invocations = invocations

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == PATH:
            return self.invocations(environ, start_response)
        return self.flask_app(environ, start_response)
