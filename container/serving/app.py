"""The HTTP layer: /ping, /execution-parameters and /invocations around an already loaded model.

The one place the application is built. Flask serves every route but /invocations, which runs
in front of it as a plain WSGI pipeline (`invocations.py`: without Flask's per-request cost)
whose steps the user's inference code may replace (`user_hooks.py`). One function renders
every failure as `{"error": ...}` with the status the error carries (`failures.py`).
"""

from __future__ import annotations

import json

from flask import Flask, Response, request

from container.errors import ClientError
from container.serving import headers
from container.serving.codecs import ENCODERS
from container.serving.failures import error_answer
from container.serving.invocations import Invocations, InvocationsFirst
from container.serving.model_loading import LoadedModel
from container.serving.multi_model_routes import multi_model_app
from container.serving.user_hooks import UserHooks
from container.settings import Settings


def create_app(
    model: LoadedModel | None,
    settings: Settings,
    hooks: UserHooks | None = None,
) -> Flask:
    """Build the app around `model`; settings are validated here.

    `hooks` (the user's inference code) replace steps of the /invocations pipeline; `model` is
    None when that code's model is not an XGBoost booster, and in multi-model mode.
    """
    if model is None and hooks is None and not settings.serving.multi_model:
        raise TypeError("create_app needs a model, or the user's hooks to answer without one")
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

    if serving.multi_model:  # the /models routes, each model's invocations built on load
        app.wsgi_app = multi_model_app(app.wsgi_app, settings, default_accept)  # type: ignore[method-assign]
    else:
        invocations = Invocations(model, settings, default_accept, hooks)
        app.wsgi_app = InvocationsFirst(app.wsgi_app, invocations)  # type: ignore[method-assign]

    @app.errorhandler(Exception)
    def render_error(error: Exception) -> Response:
        status, body = error_answer(error, request.method, request.path)
        return Response(body, status=status, mimetype="application/json")

    return app
