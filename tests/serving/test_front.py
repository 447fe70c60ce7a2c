"""What nginx, in front of the workers, answers a real `./serve` for requests it refuses
itself: the body limit before `100 Continue`, transfer codings and HTTP versions."""

from __future__ import annotations

import json
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import read_answer, running_server

from .helpers import save_model_dir, train_booster

pytestmark = pytest.mark.slow

ROW = b"0.1,0.2,0.3,0.4"


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    base = tmp_path_factory.mktemp("front")
    save_model_dir(base, train_booster("binary:logistic"))
    with running_server(base, XGB_SERVER_READ_TIMEOUT_S="2") as server:
        yield server.port


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        return read_answer(sock)


def _status_and_error(reply: bytes) -> tuple[bytes, str]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], json.loads(body)["error"]


def test_a_body_over_the_limit_gets_413_before_any_100_continue(port: int) -> None:
    """The client asks to go on (`Expect: 100-continue`) with a 7 MB body and sends none of
    it: the first thing back is the 413 with its sentence."""
    reply = _exchange(
        port,
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        b"Expect: 100-continue\r\nContent-Length: 7340032\r\n\r\n",
    )
    assert b"100 Continue" not in reply
    status, error = _status_and_error(reply)
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert error.startswith("The request body is 7340032 bytes; the limit is 6 MB"), error


def test_a_chunked_body_over_the_limit_gets_413(port: int) -> None:
    chunk = b"0.1,0.2,0.3,0.4\n" * 65536  # 1 MB
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(7)) + b"0\r\n\r\n"
    reply = _exchange(
        port,
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + body,
    )
    status, error = _status_and_error(reply)
    assert status.startswith(b"HTTP/1.1 413"), status
    assert "the limit is 6 MB" in error


@pytest.mark.parametrize("coding", ["gzip", "gzip, chunked", "identity", "deflate"])
def test_transfer_encodings_other_than_chunked_are_refused(port: int, coding: str) -> None:
    reply = _exchange(
        port,
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        + f"Transfer-Encoding: {coding}\r\n\r\n".encode()
        + ROW,
    )
    status, error = _status_and_error(reply)
    assert status == b"HTTP/1.1 400 Bad Request", status
    assert error.endswith("."), error


@pytest.mark.parametrize("version", ["HTTP/1.7", "HTTP/1.10"])
def test_an_unknown_http_1_minor_version_is_answered_as_http_1_1(port: int, version: str) -> None:
    reply = _exchange(
        port,
        f"POST /invocations {version}\r\nHost: x\r\nContent-Type: text/csv\r\n".encode()
        + f"Content-Length: {len(ROW)}\r\nConnection: close\r\n\r\n".encode()
        + ROW,
    )
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply[:200]
    assert version.encode() not in reply


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/3.0", "HTTP/9.9", "HTTX/1.1"])
def test_an_unknown_http_version_is_refused_never_echoed(port: int, version: str) -> None:
    reply = _exchange(
        port,
        f"POST /invocations {version}\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode(),
    )
    status, error = _status_and_error(reply)
    assert status == b"HTTP/1.1 400 Bad Request", reply[:200]
    assert version.encode() not in reply
    assert error.endswith("."), error


def test_an_http_0_9_request_line_is_answered_in_http_0_9_with_the_sentence(port: int) -> None:
    """A request line with no version is HTTP/0.9, whose answer is a body alone: the
    refusal's sentence, no status line (nginx answers 0.9 in 0.9)."""
    reply = _exchange(port, b"POST /invocations\r\n\r\n")
    assert not reply.startswith(b"HTTP/"), reply[:200]
    assert json.loads(reply)["error"].startswith("The request is not valid HTTP/1.1")


def test_the_error_pages_are_not_reachable_by_name(port: int) -> None:
    """The front's own pages are internal: asking for one by name is an ordinary 404."""
    reply = _exchange(port, b"GET /.errors/bad_request HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 404"), reply[:200]


def test_the_health_and_worker_sockets_live_in_a_private_folder(port: int) -> None:
    """No TCP port but the one SageMaker gave: gunicorn and the health responder listen on
    unix sockets under serve's own temporary folder, removed when serve stops."""
    runs = Path(tempfile.gettempdir()).glob("xgboost-serve-*")
    folders = [p for p in runs if (p / "nginx.conf").exists()]
    assert any(f"listen 127.0.0.1:{port} " in (p / "nginx.conf").read_text() for p in folders)
