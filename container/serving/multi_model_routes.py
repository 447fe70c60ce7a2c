"""SageMaker's multi-model container contract over HTTP, as WSGI middleware in front of Flask.

    POST   /models                 {"model_name", "url"}: load (200; 409 loaded; 507 no memory)
    GET    /models                 {"models": [{"modelName", "modelUrl"}], "nextPageToken"}
    GET    /models/{name}          {"modelName", "modelUrl"}; 404 when not loaded
    DELETE /models/{name}          unload; 404 when not loaded
    POST   /models/{name}/invoke   the single-model /invocations steps for that model

Plain WSGI for the same reason as `invocations.py`: invokes run the same steps at the same cost
as /invocations. Every request a worker gets first lets the registry catch up with other
workers (/ping does not reach a worker: nginx sends it to gunicorn's master).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_content_length, get_input_stream

from container.errors import BadRequest, ClientError, MethodNotAllowed
from container.serving.failures import error_answer, error_document
from container.serving.multi_model import Entry, InsufficientMemory, ModelRegistry
from container.serving.payload import read_body
from container.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "/models"
INVOKE = "/invoke"
TARGET_MODEL = "HTTP_X_AMZN_SAGEMAKER_TARGET_MODEL"
"""`X-Amzn-SageMaker-Target-Model`: the `TargetModel` of the InvokeEndpoint call, for the log."""
MAX_LOAD_BODY = 64 * 1024


class MultiModelRoutes:
    """Answers /models and /models/...; everything else goes to `flask_app`."""

    def __init__(self, flask_app: WSGIApplication, registry: ModelRegistry) -> None:
        self.flask_app = flask_app
        self.registry = registry

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            self.registry.sync()  # an idle worker still frees unloaded models
            return self.flask_app(environ, start_response)
        method = environ["REQUEST_METHOD"]
        name = path[len(PREFIX) + 1 :]
        if name.endswith(INVOKE) and "/" not in name[: -len(INVOKE)]:
            return self._invoke(name[: -len(INVOKE)], environ, start_response)
        try:
            if "/" in name:
                return self.flask_app(environ, start_response)  # no such route: Flask's 404
            if not name:
                status, document = self._collection(method, environ)
            else:
                status, document = self._model(method, name, environ)
            body = json.dumps(document).encode()
        except InsufficientMemory as error:
            log.warning("%s", error.message)
            status, body = error.status, error_document(error.message)
        except Exception as error:
            status, body = error_answer(error, method, path)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}", headers)
        return [body]

    def _collection(self, method: str, environ: WSGIEnvironment) -> tuple[int, object]:
        if method == "GET":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            token = query.get("next_page_token", [None])[0] or None
            entries, next_token = self.registry.page(token)
            document: dict[str, object] = {"models": [_describe(entry) for entry in entries]}
            if next_token is not None:
                document["nextPageToken"] = next_token
            return 200, document
        if method == "POST":
            name, url = _load_request(environ)
            log.info("Load model %r from %s (target model %s)", name, url, _target(environ))
            entry = self.registry.load(name, url)
            return 200, {"status": f"Model {entry.name!r} loaded."}
        raise MethodNotAllowed(
            f"{method} is not allowed on {PREFIX}; GET lists the models, POST loads one."
        )

    def _model(self, method: str, name: str, environ: WSGIEnvironment) -> tuple[int, object]:
        if method == "GET":
            return 200, _describe(self.registry.entry(name))
        if method == "DELETE":
            log.info("Unload model %r (target model %s)", name, _target(environ))
            self.registry.unload(name)
            return 200, {"status": f"Model {name!r} unloaded."}
        raise MethodNotAllowed(
            f"{method} is not allowed on {PREFIX}/{{model_name}}; GET describes the model, "
            "DELETE unloads it, and POST to its /invoke predicts."
        )

    def _invoke(
        self, name: str, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Predict with `name` through the single-model /invocations steps."""
        method = environ["REQUEST_METHOD"]
        try:
            if method != "POST":
                raise MethodNotAllowed(
                    f"{method} is not allowed on {PREFIX}/{{model_name}}{INVOKE}; "
                    "send the rows with POST."
                )
            invocations, first = self.registry.invocations(name)
        except Exception as error:
            status, body = error_answer(error, method, environ.get("PATH_INFO", ""))
            log.info("Invoke model %r (target model %s): %d", name, _target(environ), status)
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}", headers)
            return [body]
        # A log line costs about 30 µs, a third of a 1-row prediction: every invoke is logged at
        # DEBUG, and at INFO the first one of each model in each worker.
        log.log(
            logging.INFO if first else logging.DEBUG,
            "Invoke model %r (target model %s)",
            name,
            _target(environ),
        )
        return invocations(environ, start_response)


def _target(environ: WSGIEnvironment) -> str:
    return environ.get(TARGET_MODEL, "not given")


def _describe(entry: Entry) -> dict[str, str]:
    return {"modelName": entry.name, "modelUrl": entry.url}


def _load_request(environ: WSGIEnvironment) -> tuple[str, str]:
    """`model_name` and `url` from a load request's JSON body; 400 with a sentence if not."""
    body = read_body(get_input_stream(environ), get_content_length(environ), MAX_LOAD_BODY)
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        document = None
    if not isinstance(document, dict):
        raise BadRequest(
            'The body must be a JSON object: {"model_name": "...", "url": "/opt/ml/models/..."}.'
        )
    values = []
    for key in ("model_name", "url"):
        value = document.get(key)
        if not isinstance(value, str):
            raise BadRequest(
                f'"{key}" must be a string; the body is {{"model_name": "...", "url": "..."}}.'
            )
        values.append(value)
    return values[0], values[1]


def multi_model_app(
    flask_app: WSGIApplication, settings: Settings, default_accept: str
) -> MultiModelRoutes:
    """The /models routes in front of `flask_app`, around a fresh registry (build it in the
    master, before workers fork, so that they share it)."""
    from container.serving.server import worker_threads  # server.py imports the app

    registry = ModelRegistry(settings, default_accept, nthread=worker_threads(settings))
    return MultiModelRoutes(flask_app, registry)


def refuse_user_code(settings: Settings) -> None:
    """Multi-model mode serves the built-in steps only: refuse inference code at start-up."""
    code = settings.paths.model_dir / "code" / "inference.py"
    if settings.program or settings.submit_directory or code.is_file():
        given = settings.program or settings.submit_directory or str(code)
        raise ClientError(
            f"SAGEMAKER_MULTI_MODEL=true serves the built-in inference only, but inference code "
            f"was given ({given}). Unset SAGEMAKER_PROGRAM and SAGEMAKER_SUBMIT_DIRECTORY (and "
            "remove code/inference.py), or serve that model on a single-model endpoint."
        )
