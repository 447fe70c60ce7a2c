"""The real `./serve` under gunicorn on a free 127.0.0.1 port: round trips, SIGTERM, start-up.

Each server runs in its own session and its process group is killed at teardown.
"""

from __future__ import annotations

import io
import json
import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import xgboost as xgb

from container.serving.server import worker_threads
from container.settings import Settings
from tests.support.paths import PEER_DATA
from tests.support.server import (
    Server,
    accepted_by,
    listening,
    running_server,
    serve_until_exit,
)
from tests.support.waiting import wait_until

from .helpers import save_model_dir, train_booster

ABALONE = PEER_DATA / "abalone" / "data"
needs_peer_data = pytest.mark.skipif(
    not ABALONE.is_dir(), reason=f"peer test data not present at {ABALONE}"
)

pytestmark = pytest.mark.slow


def _read_libsvm(path: Path, width: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Rows (NaN where an index is absent; indices are column positions) and labels."""
    rows, labels = [], []
    for line in path.read_text().splitlines():
        label, *tokens = line.split()
        row = np.full(width, np.nan, dtype=np.float32)
        for token in tokens:
            index, value = token.split(":")
            row[int(index)] = float(value)
        rows.append(row)
        labels.append(float(label))
    return np.array(rows), np.array(labels, dtype=np.float32)


@pytest.fixture(scope="module")
def abalone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, xgb.Booster]:
    """A regression model trained with xgboost on the peer abalone LIBSVM files, saved as UBJSON."""
    if not ABALONE.is_dir():
        pytest.skip(f"peer test data not present at {ABALONE}")
    parts = [_read_libsvm(path) for path in sorted((ABALONE / "train").iterdir())]
    rows = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    booster = xgb.train(
        {"objective": "reg:squarederror", "max_depth": 5, "nthread": 1},
        xgb.DMatrix(rows, labels),
        num_boost_round=20,
    )
    base = tmp_path_factory.mktemp("abalone")
    save_model_dir(base, booster, "ubj")
    return base, booster


@pytest.fixture(scope="module")
def abalone_server(abalone: tuple[Path, xgb.Booster]) -> Iterator[Server]:
    with running_server(abalone[0]) as server:
        yield server


def _npy(rows: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, rows)
    return buffer.getvalue()


def _bodies(rows: np.ndarray, libsvm_text: str) -> dict[str, bytes]:
    listed = np.where(np.isnan(rows), None, rows).tolist()
    csv = "\n".join(",".join("" if v is None else repr(v) for v in row) for row in listed)
    return {
        "text/csv": csv.encode(),
        "application/json": json.dumps({"instances": listed}).encode(),
        "application/jsonlines": "\n".join(json.dumps(r) for r in listed).encode(),
        "text/libsvm": libsvm_text.encode(),
        "application/x-npy": _npy(rows),
    }


@needs_peer_data
def test_ping_and_execution_parameters(abalone_server: Server) -> None:
    assert requests.get(f"{abalone_server.url}/ping", timeout=5).status_code == 200
    params = requests.get(f"{abalone_server.url}/execution-parameters", timeout=5).json()
    assert params == {
        "MaxConcurrentTransforms": 2,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
    }


@needs_peer_data
@pytest.mark.parametrize(
    "content_type",
    ["text/csv", "application/json", "application/jsonlines", "text/libsvm", "application/x-npy"],
    ids=["csv", "json", "jsonlines", "libsvm", "npy"],
)
@pytest.mark.parametrize("accept", ["text/csv", "application/json", "application/jsonlines"])
def test_abalone_round_trips_equal_booster_predict(
    abalone_server: Server, abalone: tuple[Path, xgb.Booster], content_type: str, accept: str
) -> None:
    booster = abalone[1]
    path = ABALONE / "validation" / "abalone.validation"
    rows, _ = _read_libsvm(path)
    expected = booster.predict(xgb.DMatrix(rows))
    response = requests.post(
        f"{abalone_server.url}/invocations",
        data=_bodies(rows, path.read_text())[content_type],
        headers={"Content-Type": content_type, "Accept": accept},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    if accept == "text/csv":
        got = [float(v) for v in response.text.splitlines()]
    elif accept == "application/json":
        got = [p["score"] for p in response.json()["predictions"]]
    else:
        got = [json.loads(line)["score"] for line in response.text.splitlines()]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@needs_peer_data
def test_client_error_over_http_is_json_with_a_sentence(abalone_server: Server) -> None:
    response = requests.post(
        f"{abalone_server.url}/invocations",
        data=b"1,2,3",
        headers={"Content-Type": "text/csv"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "Each row must have 9 features (the model was trained on 9); got 3. "
        "Send the features only, without the label column."
    }
    assert requests.get(f"{abalone_server.url}/ping", timeout=5).status_code == 200


@needs_peer_data
def test_oversized_body_is_refused_before_it_is_sent(abalone_server: Server) -> None:
    """The 413 comes from Content-Length alone: the client has sent none of the 7 MB body."""
    port = abalone_server.port
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Content-Length: 7340032\r\n\r\n"
        )
        reply = b""
        while b"}" not in reply and (chunk := sock.recv(65536)):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), reply
    assert json.loads(payload)["error"].startswith(
        "The request body is 7340032 bytes; the limit is 6 MB"
    )
    assert requests.get(f"{abalone_server.url}/ping", timeout=5).status_code == 200


@needs_peer_data
def test_chunked_body_without_content_length(
    abalone_server: Server, abalone: tuple[Path, xgb.Booster]
) -> None:
    rows, _ = _read_libsvm(ABALONE / "validation" / "abalone.validation")
    lines = _bodies(rows[:50], "")["text/csv"].splitlines()
    response = requests.post(
        f"{abalone_server.url}/invocations",
        data=(line + b"\n" for line in lines),  # a generator: requests sends it chunked
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    got = [float(v) for v in response.text.splitlines()]
    np.testing.assert_allclose(got, abalone[1].predict(xgb.DMatrix(rows[:50])), rtol=1e-6)


def test_large_body_sent_in_pieces_arrives_whole(tmp_path: Path, serve) -> None:
    """A 4 MB body written in 64 KiB pieces with pauses: the worker receives it over many reads
    straight into its buffer, pipelined headers and all, and answers every row."""
    booster = train_booster("binary:logistic")
    save_model_dir(tmp_path, booster)
    rows = np.random.default_rng(3).random((40_000, 4)).astype(np.float32)
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode()
    server = serve(tmp_path)
    head = (
        "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(head + body[:1000])  # some body bytes arrive with the headers
        for start in range(1000, len(body), 65536):
            sock.sendall(body[start : start + 65536])
            if start % (16 * 65536) == 1000:
                time.sleep(0.05)  # the client pauses: the body reaches the worker in pieces
        reply = b""
        while chunk := sock.recv(1 << 20):
            reply += chunk
    status, _, answer = reply.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 200"), reply[:500]
    got = np.array([float(v) for v in answer.split()])
    np.testing.assert_allclose(got, booster.inplace_predict(rows), rtol=1e-6)


def test_single_worker_uses_all_threads_without_hanging(tmp_path: Path, serve) -> None:
    """One worker gets every core; XGBoost's thread pool must still work after the fork."""
    booster = train_booster("multi:softprob", rounds=20)
    save_model_dir(tmp_path, booster)
    rows = np.random.default_rng(5).random((5000, 4)).astype(np.float32)
    server = serve(tmp_path, SAGEMAKER_MODEL_SERVER_WORKERS="1")
    response = requests.post(
        f"{server.url}/invocations",
        data=_npy(rows),
        headers={"Content-Type": "application/x-npy"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    got = np.array([[float(v) for v in line.split(",")] for line in response.text.splitlines()])
    np.testing.assert_allclose(got, booster.predict(xgb.DMatrix(rows)), rtol=1e-6)
    assert "1 worker(s), " in server.log.read_text()


def _post_raw(port: int, body: bytes) -> socket.socket:
    """POST `body` as CSV on a new connection and read the whole answer; the client's side of
    the connection stays open (returned)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        + f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    reply = b""
    while chunk := sock.recv(65536):  # the server closes its side after the answer
        reply += chunk
    assert reply.startswith(b"HTTP/1.1 200"), reply[:300]
    return sock


def test_a_client_that_keeps_its_connection_open_does_not_hold_the_worker(
    tmp_path: Path, serve
) -> None:
    """A client's connection is held by nginx, never by the worker: once a request has been
    answered, the next client is served at once (the worker's own close does not linger for
    nginx's either). One worker: a second request served while the first client's socket is
    still open proves the worker did not wait for it."""
    save_model_dir(tmp_path, train_booster("binary:logistic", rounds=5))
    server = serve(tmp_path, SAGEMAKER_MODEL_SERVER_WORKERS="1")
    first = _post_raw(server.port, b"0.1,0.2,0.3,0.4\n")
    start = time.monotonic()
    second = _post_raw(server.port, b"0.4,0.3,0.2,0.1\n")
    waited = time.monotonic() - start
    first.close()
    second.close()
    assert waited < 1.0, f"the second request waited {waited:.2f} s behind the first client"


@pytest.mark.parametrize(
    ("environ", "threads"),
    [
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}, lambda cpus: cpus),
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}, lambda cpus: 1),
        (
            {"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SAGEMAKER_BATCH": "true"},
            lambda cpus: min(cpus, 2),
        ),
    ],
    ids=["one-worker", "endpoint", "batch-transform"],
)
def test_threads_per_worker_follow_the_kind_of_load(
    environ: dict[str, str], threads: Callable[[int], int]
) -> None:
    """A single worker gets every core. An endpoint's workers answer many small requests at
    once: one thread each. A batch transform's requests are large and come one per worker at
    most: two threads each, so a lone request uses two cores and a busy instance holds at most
    twice as many threads as cores."""
    settings = Settings.from_environ(environ)
    assert worker_threads(settings) == threads(settings.cpu_count)


def test_sigterm_finishes_the_request_in_flight_and_exits_0(tmp_path: Path, serve) -> None:
    booster = train_booster("binary:logistic")
    save_model_dir(tmp_path, booster)
    server = serve(tmp_path)
    row = np.array([[0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    body = b"0.1,0.2,0.3,0.4\n"
    port = server.port
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:5]
        )
        wait_until(lambda: accepted_by(server, sock), 30, "nginx to accept the request")
        server.process.send_signal(signal.SIGTERM)
        # nginx closes its listener on SIGTERM (the supervisor quits it gracefully): the drain
        # has begun.
        wait_until(lambda: not listening(port), 30, f"port {port} to stop listening")
        sock.sendall(body[5:])
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    started = time.monotonic()
    exit_code = server.process.wait(timeout=30)
    waited = time.monotonic() - started
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), reply
    np.testing.assert_allclose(float(payload), booster.predict(xgb.DMatrix(row))[0], rtol=1e-6)
    assert exit_code == 0, server.log.read_text()
    assert waited < 30
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _start_failure(base_dir: Path, **extra: str) -> tuple[int, str]:
    result = serve_until_exit(base_dir, **extra)
    return result.returncode, result.stdout + result.stderr


def _peer_model_dir(tmp_path: Path, name: str) -> Path:
    source = PEER_DATA / "models" / name / "xgboost-model"
    if not source.is_file():
        pytest.skip(f"peer model not present at {source}")
    (tmp_path / "model").mkdir()
    shutil.copyfile(source, tmp_path / "model" / "xgboost-model")
    return tmp_path


@pytest.mark.parametrize(
    ("setup", "extra", "message"),
    [
        (lambda tmp: tmp, {}, "serve cannot start: No model file at"),
        (
            lambda tmp: _peer_model_dir(tmp, "pickled_model"),
            {},
            "is a Python pickle. This server never loads pickles",
        ),
        (
            lambda tmp: _peer_model_dir(tmp, "saved_booster"),
            {},
            "is in XGBoost's old binary model format (objective multi:softprob)",
        ),
        (
            lambda tmp: save_model_dir(tmp, train_booster("reg:squarederror")).parent,
            {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probability"},
            "SAGEMAKER_INFERENCE_OUTPUT: predicted_label, probability cannot be computed for a "
            "model with objective reg:squarederror; it answers predicted_score.",
        ),
        (
            lambda tmp: save_model_dir(tmp, train_booster("binary:logistic")).parent,
            {"SAGEMAKER_BIND_TO_PORT": "http"},
            "SAGEMAKER_BIND_TO_PORT='http' is not an integer",
        ),
    ],
    ids=["missing-model", "pickle", "old-binary", "bad-inference-output", "bad-port"],
)
def test_start_up_failures_exit_non_zero_with_the_reason(
    tmp_path: Path, setup, extra: dict[str, str], message: str
) -> None:
    base = setup(tmp_path)
    code, output = _start_failure(base, **extra)
    assert code != 0
    assert message in output
    assert "Traceback" not in output
