"""`container/serving/openapi.json` against the app: the same routes, the statuses and content
types the real server answers, and a property-based fuzz of /invocations generated from it."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator

import numpy as np
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from container.serving.app import create_app
from container.serving.invocations import METHODS, PATH, InvocationsFirst
from container.serving.model_loading import LoadedModel
from container.settings import Settings
from tests.support.paths import REPO
from tests.support.server import Server, running_server, worker_pids

from .helpers import save_model_dir, train_booster

OPENAPI = REPO / "container" / "serving" / "openapi.json"
DOCUMENT = json.loads(OPENAPI.read_text())
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}
"""Methods Flask adds to every route by itself; not part of the documented API."""


def _npy(rows: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, rows)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real `./serve` around a 4-feature binary:logistic model, 1 s to send a request."""
    base = tmp_path_factory.mktemp("openapi")
    save_model_dir(base, train_booster("binary:logistic"))
    with running_server(base, XGB_SERVER_READ_TIMEOUT_S="1") as served:
        yield served


def test_document_is_openapi_3_and_loads_in_schemathesis() -> None:
    assert DOCUMENT["openapi"].startswith("3.")
    schema = schemathesis.openapi.from_path(OPENAPI)
    operations = {
        (result.ok().method.upper(), result.ok().path) for result in schema.get_all_operations()
    }
    assert operations == {
        ("GET", "/ping"),
        ("GET", "/execution-parameters"),
        ("POST", "/invocations"),
    }


def test_every_route_of_the_app_is_documented_and_vice_versa(
    loaded_models: dict[str, LoadedModel],
) -> None:
    app = create_app(
        loaded_models["binary:logistic"], Settings.from_environ({"SAGEMAKER_BASE_DIR": "/x"})
    )
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in (rule.methods or set()) - AUTOMATIC_METHODS
    }
    # The built-in /invocations runs in front of Flask's routes (`invocations.py`).
    assert isinstance(app.wsgi_app, InvocationsFirst)
    routes |= {(method, PATH) for method in METHODS}
    documented = {
        (method.upper(), path)
        for path, operations in DOCUMENT["paths"].items()
        for method in operations
    }
    assert routes == documented


def _request(
    server: Server, method: str, path: str, body: bytes = b"", **headers: str
) -> requests.Response:
    return requests.request(
        method, f"{server.url}{path}", data=body, headers=headers or None, timeout=30
    )


def _slow_request(server: Server) -> bytes:
    """Announce 16 bytes, send 5 and no more, wait past the 1 s read deadline: what the client
    gets."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Content-Length: 16\r\n\r\n0.1,0"
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


ROW = b"0.1,0.2,0.3,0.4"
EXAMPLES = {
    "ping": ("GET", "/ping", b"", {}),
    "execution-parameters": ("GET", "/execution-parameters", b"", {}),
    "csv-to-csv": ("POST", "/invocations", ROW, {"Content-Type": "text/csv"}),
    "json-to-json": (
        "POST",
        "/invocations",
        b'{"instances": [[0.1, null, 0.3, 0.4]]}',
        {"Content-Type": "application/json", "Accept": "application/json"},
    ),
    "jsonlines-to-jsonlines": (
        "POST",
        "/invocations",
        b'{"features": [0.1, 0.2, 0.3, 0.4]}\n',
        {"Content-Type": "application/jsonlines", "Accept": "application/jsonlines"},
    ),
    "libsvm": ("POST", "/invocations", b"1 0:0.1 3:0.4", {"Content-Type": "text/libsvm"}),
    "x-libsvm": ("POST", "/invocations", b"1 0:0.1", {"Content-Type": "text/x-libsvm"}),
    "npy": (
        "POST",
        "/invocations",
        _npy(np.array([0.1, 0.2, 0.3, 0.4])),
        {"Content-Type": "application/x-npy"},
    ),
    "bad-cell-400": ("POST", "/invocations", b"0.1,x,0.3,0.4", {"Content-Type": "text/csv"}),
    "accept-406": ("POST", "/invocations", ROW, {"Accept": "image/png"}),
    "too-many-columns-413": (
        "POST",
        "/invocations",
        b"0," * 200_000 + b"0",
        {"Content-Type": "text/csv"},
    ),
    "content-type-415": ("POST", "/invocations", ROW, {"Content-Type": "text/html"}),
}


def _documented(path: str, method: str, status: int) -> dict:
    responses = DOCUMENT["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, not documented"
    return responses[str(status)]


@pytest.mark.slow
def test_statuses_and_content_types_are_the_ones_the_real_server_answers(
    server: Server,
) -> None:
    """Each example's status and Content-Type are documented for its operation, and every
    documented status but 500 (never provoked: a client cannot cause one) is answered."""
    seen: dict[tuple[str, str], set[int]] = {}
    answers = [
        (method, path, *_answer(server, method, path, body, headers))
        for method, path, body, headers in EXAMPLES.values()
    ]
    # past the read deadline nginx closes the connection with no answer: nothing to document
    assert _slow_request(server) == b""
    for method, path, status, content_type, payload in answers:
        seen.setdefault((method, path), set()).add(status)
        documented = _documented(path, method, status)
        if "content" not in documented:
            assert payload == b"", f"{method} {path} {status} has an undocumented body"
            continue
        media_type = content_type.split(";")[0].strip()
        assert media_type in documented["content"], (method, path, status, content_type)
        if media_type == "application/json":
            json.loads(payload)
        if status >= 400:
            assert json.loads(payload)["error"].endswith("."), payload
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            expected = {int(code) for code in operation["responses"]} - {500}
            assert seen[(method.upper(), path)] == expected, (method, path)


def _answer(
    server: Server, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str, bytes]:
    response = _request(server, method, path, body, **headers)
    return response.status_code, response.headers.get("Content-Type", ""), response.content


@schemathesis.serializer("application/jsonlines")
def _jsonlines(ctx: object, value: object) -> bytes:
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


@schemathesis.serializer("application/x-npy", "application/x-recordio-protobuf")
def _npy_bytes(ctx: object, value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


FUZZ_SCHEMA = schemathesis.openapi.from_path(OPENAPI)
FUZZ_SCHEMA.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=300
)


@pytest.mark.slow
@FUZZ_SCHEMA.include(path="/invocations").parametrize()
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_fuzzed_invocations_never_answer_5xx_kill_no_worker_and_match_the_document(
    case: schemathesis.Case, server: Server
) -> None:
    """After every fuzzed request the server still has the workers it started with."""
    response = case.call(base_url=server.url, timeout=30)
    assert worker_pids(server) == server.workers, server.log.read_text()[-3000:]
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
