"""The HTTP layer: /ping, /execution-parameters and /invocations around an already loaded model.

The view only moves data between steps: headers → decode → predict → encode → response. One
error handler renders every failure as `{"error": ...}` with the status the error carries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from container.errors import BadRequest, ClientError, ContainerError
from container.serving import headers
from container.serving.codecs import DECODERS, ENCODERS, Limits
from container.serving.model_loading import LoadedModel
from container.serving.payload import read_body
from container.serving.predictions import Predictor, parse_output_keys
from container.settings import Settings

log = logging.getLogger(__name__)

CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
OUTPUT_ATTRIBUTE = "inference_output"
"""Custom attribute that picks the output keys for one request: `inference_output=a,b`."""


def _json_response(document: object, status: int) -> Response:
    return Response(json.dumps(document), status=status, mimetype="application/json")


def requested_output(attributes: str | None) -> str | None:
    """The `inference_output=...` value in a custom-attributes header (`;`-separated pairs)."""
    if not attributes:
        return None
    for pair in attributes.split(";"):
        name, sep, value = pair.partition("=")
        if sep and name.strip().lower() == OUTPUT_ATTRIBUTE:
            return value
    return None


def _builtin_invocations(
    model: LoadedModel, settings: Settings, default_accept: str
) -> Callable[[], Response]:
    """The built-in /invocations view: headers → decode → predict → encode → response. Output
    keys from settings are validated here, when the app is built."""
    serving = settings.serving
    predictor = Predictor(model)
    objective = model.objective
    default_keys = parse_output_keys(
        serving.inference_output, objective, "SAGEMAKER_INFERENCE_OUTPUT"
    )
    limits = Limits(max_rows=serving.max_rows, max_columns=serving.max_columns)
    source = f"{CUSTOM_ATTRIBUTES} {OUTPUT_ATTRIBUTE}="

    def invocations() -> Response:
        content_type = headers.parse_content_type(request.headers.get("Content-Type"), DECODERS)
        accept = headers.choose_accept(request.headers.get("Accept"), ENCODERS, default_accept)
        attributes = request.headers.get(CUSTOM_ATTRIBUTES)
        chosen = requested_output(attributes)
        keys = default_keys if chosen is None else parse_output_keys(chosen, objective, source)
        body = read_body(request.stream, request.content_length, serving.max_payload_bytes)
        if not body or body.isspace():
            raise BadRequest("The request body is empty; send at least one row of features.")
        features = DECODERS[content_type](body, limits)
        del body  # a batch body is the largest object here: free it before predicting
        output = predictor.output(predictor.predict(features), keys)
        response = Response(ENCODERS[accept](output, serving.batch), status=200, mimetype=accept)
        if attributes is not None:
            response.headers[CUSTOM_ATTRIBUTES] = attributes
        return response

    return invocations


def create_app(
    model: LoadedModel | None,
    settings: Settings,
    user_view: Callable[[], Response] | None = None,
) -> Flask:
    """Build the Flask app around `model`; settings are validated here.

    `user_view` answers /invocations in place of the built-in steps (the user's inference code,
    `user_hooks.py`); `model` is then None when that code's model is not an XGBoost booster.
    """
    serving = settings.serving
    default_accept = headers.media_type_of(serving.default_accept)
    if default_accept not in ENCODERS:
        raise ClientError(
            f"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT={serving.default_accept!r} is not a response "
            f"type this server writes; use one of: {', '.join(ENCODERS)}."
        )
    execution_parameters = json.dumps(
        {
            "MaxConcurrentTransforms": serving.workers,
            "BatchStrategy": "MultiRecord",
            "MaxPayloadInMB": serving.max_payload_mb,
        }
    )
    app = Flask(__name__)

    @app.get("/ping")
    def ping() -> Response:
        return Response(status=200)

    @app.get("/execution-parameters")
    def execution_params() -> Response:
        return Response(execution_parameters, status=200, mimetype="application/json")

    if user_view is None:
        if model is None:
            raise TypeError("create_app needs a model, or the user's view to answer without one")
        user_view = _builtin_invocations(model, settings, default_accept)
    app.add_url_rule("/invocations", "invocations", user_view, methods=["POST"])

    @app.errorhandler(Exception)
    def render_error(error: Exception) -> Response:
        """Every failure as `{"error": ...}`: a client's mistake with its sentence and status,
        anything else as a generic 500 whose traceback goes to the log only."""
        if isinstance(error, ContainerError) and error.status < 500:
            return _json_response({"error": error.message}, error.status)
        if isinstance(error, HTTPException) and (error.code or 500) < 500:
            return _json_response({"error": error.description}, error.code or 500)
        log.error("Failed to answer %s %s", request.method, request.path, exc_info=error)
        return _json_response({"error": "Internal server error; see the server log."}, 500)

    return app
