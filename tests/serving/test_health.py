"""/ping against a real `./serve` that clients and busy workers try to starve, and what /ping
reports when the server is a shell: a model that failed to load, a hung master with no worker.

Every server has the default worker count. A ping is a fresh connection, as SageMaker's are;
SageMaker replaces an instance whose /ping takes over 2 s.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pytest

from bench.processes import free_port
from container.settings import Settings
from tests.support.paths import REPO
from tests.support.server import (
    Server,
    child_pids,
    gunicorn_master,
    serve_env,
    start_serve,
    worker_pids,
)

from .helpers import model_dir_with_code, save_model_dir, train_booster

pytestmark = pytest.mark.slow

DEFAULT_WORKERS = str(Settings.from_environ({}).serving.workers)
ROW = b"0.1,0.2,0.3,0.4\n"
PING_LIMIT_S = 2.0


def _model(base: Path) -> Path:
    """`base` with a binary:logistic model in its model folder; the workers `serve` starts by
    default (gunicorn's master beside nginx), not the test helpers' 2."""
    save_model_dir(base, train_booster("binary:logistic"))
    return base


def ping_once(port: int) -> tuple[int, float]:
    """(status, seconds) of one /ping on a fresh connection; status 0 if it got no answer."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PING_LIMIT_S + 1)
    try:
        conn.request("GET", "/ping")
        response = conn.getresponse()
        response.read()
        status = response.status
    except (OSError, http.client.HTTPException):
        status = 0
    finally:
        conn.close()
    return status, time.monotonic() - started


def assert_pings_healthy(port: int, count: int = 30) -> None:
    """`count` pings back to back: every one 200 within SageMaker's 2 s."""
    results = [ping_once(port) for _ in range(count)]
    times = sorted(seconds for _, seconds in results)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"/ping: p50 {statistics.median(times) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    assert all(status == 200 for status, _ in results), results
    assert max(times) < PING_LIMIT_S, times


def fixed_width_csv(rows: int, seed: int) -> bytes:
    """`rows` rows of 4 values in [0, 1), 36 bytes a row ("0.123456,...\\n")."""
    values = np.random.default_rng(seed).random((rows, 4))
    return "".join(f"{a:.6f},{b:.6f},{c:.6f},{d:.6f}\n" for a, b, c, d in values).encode()


def _request_head(length: int, accept: str = "text/csv") -> bytes:
    return (
        "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        f"Accept: {accept}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


@contextmanager
def idle_connections(port: int, count: int = 64) -> Iterator[list[socket.socket]]:
    """`count` connections that send nothing."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
            for _ in range(count)
        ]


@contextmanager
def trickling_clients(port: int, count: int = 64) -> Iterator[None]:
    """`count` clients that each send a 1-row request one byte every 50 ms, all the while: one
    that the server cuts off at its deadline connects again and starts over."""
    request = _request_head(len(ROW)) + ROW
    stop = threading.Event()
    trickling = threading.Event()

    def connect() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=10)

    def trickle() -> None:
        socks = [connect() for _ in range(count)]
        sent = [0] * count
        try:
            while not stop.is_set():
                for i in range(count):
                    if sent[i] >= len(request) - 1:  # never the last byte
                        continue
                    try:
                        socks[i].sendall(request[sent[i] : sent[i] + 1])
                        sent[i] += 1
                    except OSError:
                        socks[i].close()
                        socks[i], sent[i] = connect(), 0
                if min(sent) >= 5:
                    trickling.set()
                stop.wait(0.05)
        finally:
            for sock in socks:
                sock.close()

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        assert trickling.wait(timeout=30), "the trickling clients did not start"
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def rows_per_second(port: int, seconds: float = 2.0, clients: int = 4) -> float:
    """1-row requests answered per second by `clients` keep-alive clients."""
    deadline = time.monotonic() + seconds
    counts = [0] * clients

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < deadline:
            conn.request("POST", "/invocations", ROW, {"Content-Type": "text/csv"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            counts[index] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real-time server; 2 s for a client to send a request or take an answer."""
    served = start_serve(
        _model(tmp_path_factory.mktemp("health")),
        SAGEMAKER_MODEL_SERVER_WORKERS=DEFAULT_WORKERS,
        XGB_SERVER_READ_TIMEOUT_S="2",
    )
    yield served
    served.stop()


def test_ping_with_64_idle_connections(server: Server) -> None:
    with idle_connections(server.port):
        assert_pings_healthy(server.port)


def test_ping_with_64_clients_trickling_requests(server: Server) -> None:
    with trickling_clients(server.port):
        assert_pings_healthy(server.port)


def test_clients_that_never_read_are_cut_off_logged_and_others_served(server: Server) -> None:
    """Two clients ask for a 5 MB JSON answer each and never read it (a tiny receive window).
    nginx takes each answer from the worker at once, keeps pinging and serving others, and
    cuts the clients off 2 s after their last read, with a line in the log."""
    port = server.port
    workers = worker_pids(server)
    body = fixed_width_csv(160_000, seed=1)  # 5.8 MB, under the 6 MB limit
    with ExitStack() as stack:
        for _ in range(2):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stack.enter_context(sock)
            sock.settimeout(30)
            sock.connect(("127.0.0.1", port))
            sock.sendall(_request_head(len(body), "application/json") + body)
        assert_pings_healthy(port)
        assert rows_per_second(port, seconds=1.0) > 0
        deadline = time.monotonic() + 60
        while server.log.read_text().count(" 200 after ") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    log = server.log.read_text()
    assert log.count(" 200 after ") >= 2 and "not completed" in log, log[-2000:]
    assert worker_pids(server) == workers  # no worker was pinned, so none was killed


def test_fairness_idle_and_trickling_connections_keep_half_the_throughput(
    server: Server,
) -> None:
    port = server.port
    rows_per_second(port, seconds=0.5)  # warm-up
    unloaded = rows_per_second(port)
    with idle_connections(port), trickling_clients(port):
        loaded = rows_per_second(port)
    print(f"1-row requests: {unloaded:.0f}/s alone, {loaded:.0f}/s beside 64 idle + 64 trickling")
    assert loaded >= 0.5 * unloaded, (unloaded, loaded)


def test_ping_while_every_worker_is_busy_with_maximum_size_batch_requests(
    tmp_path: Path, serve
) -> None:
    """Batch mode with a 16 MB limit: one client per worker (MaxConcurrentTransforms) sends
    bodies just under the limit back to back while /ping is asked."""
    server = serve(
        _model(tmp_path),
        SAGEMAKER_MODEL_SERVER_WORKERS=DEFAULT_WORKERS,
        SAGEMAKER_BATCH="true",
        SAGEMAKER_MAX_PAYLOAD_IN_MB="16",
    )
    port = server.port
    body = fixed_width_csv(16 * 1024 * 1024 // 36, seed=2)  # 16 MB less a few bytes
    stop = threading.Event()
    answered: list[int] = []

    def send_batches() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while not stop.is_set():
            conn.request("POST", "/invocations", body, {"Content-Type": "text/csv"})
            response = conn.getresponse()
            response.read()
            answered.append(response.status)

    clients = [threading.Thread(target=send_batches) for _ in range(int(DEFAULT_WORKERS))]
    try:
        for client in clients:
            client.start()
        deadline = time.monotonic() + 60
        while not answered and time.monotonic() < deadline:  # the load is in full swing
            time.sleep(0.05)
        assert_pings_healthy(port)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=120)
    assert answered and set(answered) == {200}, answered


SLEEPY_CODE = """
import os
import time
from pathlib import Path

import xgboost as xgb


def model_fn(model_dir):
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, "xgboost-model"))
    return booster


def predict_fn(data, model):
    Path(os.environ["BUSY_DIR"], str(os.getpid())).touch()
    time.sleep(20)
    return model.predict(data)
"""


def test_ping_while_a_user_predict_fn_sleeps_20_s_in_every_worker(tmp_path: Path) -> None:
    model_dir_with_code(tmp_path, SLEEPY_CODE)
    busy = tmp_path / "busy"
    busy.mkdir()
    server = start_serve(
        tmp_path, SAGEMAKER_MODEL_SERVER_WORKERS=DEFAULT_WORKERS, BUSY_DIR=str(busy)
    )
    workers = int(DEFAULT_WORKERS)

    def invoke() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            conn.request("POST", "/invocations", ROW, {"Content-Type": "text/csv"})
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            pass  # the server is stopped before predict_fn wakes
        finally:
            conn.close()

    clients = [threading.Thread(target=invoke, daemon=True) for _ in range(workers)]
    try:
        for client in clients:
            client.start()
        deadline = time.monotonic() + 30
        while len(list(busy.iterdir())) < workers and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(list(busy.iterdir())) == workers, server.log.read_text()[-2000:]
        assert_pings_healthy(server.port, count=10)
    finally:
        server.stop()


def test_ping_is_never_200_from_a_server_whose_model_failed_to_load(tmp_path: Path) -> None:
    """The model file is not a model: serve exits 1, and no /ping meanwhile said 200."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "xgboost-model").write_bytes(b"not a model at all")
    port = free_port()
    process = subprocess.Popen(
        [str(REPO / "serve")],
        env=serve_env(tmp_path, port, SAGEMAKER_MODEL_SERVER_WORKERS=DEFAULT_WORKERS),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    statuses = []
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            statuses.append(ping_once(port)[0])
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    assert code == 1
    assert 200 not in statuses, statuses
    assert "serve cannot start" in process.stderr.read().decode()


def test_ping_is_503_while_the_master_hangs_with_no_worker_then_200_again(
    tmp_path: Path, serve
) -> None:
    """gunicorn's master stopped (SIGSTOP) and every worker killed: nothing can serve, and
    nginx does not answer 200 by itself. Once the master runs again it starts new workers."""
    server = serve(_model(tmp_path), SAGEMAKER_MODEL_SERVER_WORKERS=DEFAULT_WORKERS)
    port = server.port
    workers = server.workers
    master = gunicorn_master(server)
    assert master is not None
    os.kill(master, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while _state(master) != "T" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _state(master) == "T"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    status, seconds = ping_once(port)
    assert status == 503 and seconds < PING_LIMIT_S, (status, seconds)
    os.kill(master, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while ping_once(port)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert_pings_healthy(port, count=5)
    assert not worker_pids(server) & workers


def _state(pid: int) -> str:
    """A process's state letter (`T` once SIGSTOP has taken hold)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _nginx_master(server: Server) -> int:
    for pid in child_pids(server.process.pid):
        if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"nginx"):
            return pid
    raise AssertionError("serve runs no nginx")


@pytest.mark.parametrize("victim", ["nginx", "gunicorn"])
def test_serve_stops_whole_when_nginx_or_gunicorn_dies(tmp_path: Path, victim: str, serve) -> None:
    """Never a front without workers, nor workers without a front: serve stops the other,
    says why and exits non-zero."""
    server = serve(_model(tmp_path), SAGEMAKER_MODEL_SERVER_WORKERS=DEFAULT_WORKERS)
    pid = _nginx_master(server) if victim == "nginx" else gunicorn_master(server)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    code = server.process.wait(timeout=30)
    assert code != 0
    assert f"{victim} exited" in server.log.read_text()
    assert ping_once(server.port)[0] == 0
