"""The built-in POST /invocations as a plain WSGI application: headers → decode → predict →
encode → response.

It runs on every prediction, so it skips Flask's per-request machinery (request context, URL
matching, request and response objects): for one row that machinery cost more than the
prediction. Measured side by side on this 2-core machine, 1-row requests at 8 clients through
gunicorn (five alternating rounds): the same steps as a Flask view ran at 2,083-2,506 req/s, as
this application at 2,880-3,190 (binary model). Flask still serves every other route, the
user's inference code and 404s (`app.py`); failures here are answered by the same function as
Flask's (`failures.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.utils import get_content_type
from werkzeug.wsgi import get_content_length, get_input_stream

from container.errors import MethodNotAllowed
from container.serving import headers
from container.serving.codecs import DECODERS, ENCODERS, Limits, decode_rows
from container.serving.failures import error_answer
from container.serving.model_loading import LoadedModel
from container.serving.payload import read_body
from container.serving.predictions import Predictor, parse_output_keys
from container.settings import Settings

PATH = "/invocations"
METHODS = ("POST",)
_ATTRIBUTES_KEY = "HTTP_" + headers.CUSTOM_ATTRIBUTES.upper().replace("-", "_")
_ATTRIBUTE_SOURCE = f"{headers.CUSTOM_ATTRIBUTES} {headers.OUTPUT_ATTRIBUTE}="


class BuiltinInvocations:
    """Answers /invocations for `model`: output keys from settings are validated when built."""

    def __init__(self, model: LoadedModel, settings: Settings, default_accept: str) -> None:
        serving = settings.serving
        self.predictor = Predictor(model)
        self.objective = model.objective
        self.default_keys = parse_output_keys(
            serving.inference_output, model.objective, "SAGEMAKER_INFERENCE_OUTPUT"
        )
        self.default_accept = default_accept
        self.limits = Limits(max_rows=serving.max_rows, max_columns=serving.max_columns)
        self.max_payload_bytes = serving.max_payload_bytes
        self.batch = serving.batch

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, response_headers, body = 200, *self._answer(environ)
        except Exception as error:  # every failure is answered, as Flask's handler does
            status, body = error_answer(error, environ["REQUEST_METHOD"], PATH)
            response_headers = [("Content-Type", "application/json")]
            if isinstance(error, MethodNotAllowed):
                response_headers.append(("Allow", ", ".join(METHODS)))
        response_headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}", response_headers)
        return [body]

    def _answer(self, environ: WSGIEnvironment) -> tuple[list[tuple[str, str]], bytes]:
        """The response headers and body for one request; raises typed errors."""
        if environ["REQUEST_METHOD"] not in METHODS:
            raise MethodNotAllowed(
                f"The method is not allowed for {PATH}; send the rows with POST."
            )
        content_type = headers.parse_content_type(environ.get("CONTENT_TYPE"), DECODERS)
        accept = headers.choose_accept(environ.get("HTTP_ACCEPT"), ENCODERS, self.default_accept)
        attributes = environ.get(_ATTRIBUTES_KEY)
        chosen = headers.requested_output(attributes)
        keys = (
            self.default_keys
            if chosen is None
            else parse_output_keys(chosen, self.objective, _ATTRIBUTE_SOURCE)
        )
        body = read_body(
            get_input_stream(environ), get_content_length(environ), self.max_payload_bytes
        )
        features = decode_rows(content_type, body, self.limits)
        del body  # a batch body is the largest object here: free it before predicting
        output = self.predictor.output(self.predictor.predict(features), keys)
        answer = ENCODERS[accept](output, self.batch)
        response_headers = [("Content-Type", get_content_type(accept, "utf-8"))]
        if attributes is not None:
            response_headers.append((headers.CUSTOM_ATTRIBUTES, attributes))
        return response_headers, answer


class InvocationsFirst:
    """WSGI middleware: requests for `PATH` go to the built-in invocations, the rest to Flask."""

    def __init__(self, flask_app: WSGIApplication, invocations: BuiltinInvocations) -> None:
        self.flask_app = flask_app
        self.invocations = invocations

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == PATH:
            return self.invocations(environ, start_response)
        return self.flask_app(environ, start_response)
