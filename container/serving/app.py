"""The HTTP layer: /ping, /execution-parameters and /invocations around an already loaded model.

Flask serves every route but the built-in /invocations, which runs in front of it as a plain
WSGI application (`invocations.py`: the same steps, without Flask's per-request cost). The
user's inference code answers /invocations as a Flask view. One function renders every failure
as `{"error": ...}` with the status the error carries (`failures.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Flask, Response, request

from container.errors import ClientError
from container.serving import headers
from container.serving.codecs import ENCODERS
from container.serving.failures import error_answer
from container.serving.invocations import PATH, BuiltinInvocations, InvocationsFirst
from container.serving.model_loading import LoadedModel
from container.serving.multi_model_routes import multi_model_app
from container.settings import Settings


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

    if user_view is not None:
        app.add_url_rule(PATH, "invocations", user_view, methods=["POST"])
    elif serving.multi_model:
        app.wsgi_app = multi_model_app(app.wsgi_app, settings, default_accept)  # type: ignore[method-assign]
    elif model is not None:
        builtin = BuiltinInvocations(model, settings, default_accept)
        app.wsgi_app = InvocationsFirst(app.wsgi_app, builtin)  # type: ignore[method-assign]
    else:
        raise TypeError("create_app needs a model, or the user's view to answer without one")

    @app.errorhandler(Exception)
    def render_error(error: Exception) -> Response:
        status, body = error_answer(error, request.method, request.path)
        return Response(body, status=status, mimetype="application/json")

    return app
