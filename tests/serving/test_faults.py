"""The real `./serve` under load and faults, loopback only, each run bounded.

A short soak (`python -m bench.soak` for 20 s), `kill -9` of a worker under load, and SIGTERM
under load.
The figures each test measures are printed (`pytest -s`) for the README.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.paths import REPO
from tests.support.server import Server, accepted_by, listening, worker_pids
from tests.support.waiting import wait_until

from .helpers import save_model_dir, train_booster

pytestmark = pytest.mark.slow

BODY = b"0.1,0.2,0.3,0.4\n"
UNDER_LOAD = 20
"""Requests answered before a fault, and after a replaced worker, to call the server loaded."""


@dataclass(frozen=True)
class Outcome:
    path: str
    began: float
    ended: float
    result: str
    """The status code, or the name of the exception the client got."""


@dataclass
class Load:
    """Client threads that send requests back to back (a fresh connection each) until stopped."""

    port: int
    clients: int = 4
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def _one(self, path: str) -> None:
        began = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                if path == "/ping":
                    conn.request("GET", path)
                else:
                    conn.request("POST", path, BODY, {"Content-Type": "text/csv"})
                response = conn.getresponse()
                response.read()
                result = str(response.status)
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            result = type(exc).__name__
            time.sleep(0.01)  # a refused connection returns at once: do not spin
        self.outcomes.append(Outcome(path, began, time.monotonic(), result))

    def _invoke(self) -> None:
        while not self.stop.is_set():
            self._one("/invocations")

    def _ping(self) -> None:
        while not self.stop.is_set():
            self._one("/ping")
            time.sleep(0.05)  # a steady, light /ping beside the load

    def __enter__(self) -> Load:
        targets = [self._invoke] * self.clients + [self._ping]
        self.threads = [threading.Thread(target=t, daemon=True) for t in targets]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.result != "200"]

    def answered(self, count: int, after: float = 0.0) -> bool:
        """Whether `count` requests begun after `after` (monotonic time) have been answered 200."""
        return sum(o.result == "200" and o.began > after for o in list(self.outcomes)) >= count


def _serve(tmp_path: Path, serve) -> Server:
    save_model_dir(tmp_path, train_booster("binary:logistic"))
    return serve(tmp_path)


def test_short_soak_has_no_errors_and_flat_memory(tmp_path: Path) -> None:
    """`python -m bench.soak` for 20 s at 100 requests/s (one in ten a bad body that must get
    its 400)."""
    soak_args = ["--seconds", "20", "--warm-up-s", "5", "--out", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "bench.soak", *soak_args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stdout)
    soak = json.loads((tmp_path / "soak.json").read_text())
    assert soak["requests"] == 2000
    assert soak["unexpected"] == 0, soak["unexpected_examples"]
    assert soak["server_errors"] == 0
    assert soak["statuses"] == {"200": 1800, "400": 200}
    assert not soak["workers_replaced"]
    assert len(soak["rss_samples"]) >= 15
    memory = soak["memory"]
    assert memory["growth_percent"] < 5, memory  # flat: a leak of a few KB a request shows here
    assert (tmp_path / "soak.png").stat().st_size > 0


def test_kill_9_of_a_worker_under_load_loses_only_its_request(tmp_path: Path, serve) -> None:
    server = _serve(tmp_path, serve)
    workers = server.workers
    victim = min(workers)
    with Load(server.port) as load:
        wait_until(lambda: load.answered(UNDER_LOAD), 60, f"{UNDER_LOAD} requests answered")
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: len(now := worker_pids(server)) == 2 and victim not in now,
            30,
            "a worker in place of the killed one",
        )
        replaced_at = time.monotonic()
        wait_until(
            lambda: load.answered(UNDER_LOAD, after=replaced_at),
            60,
            f"{UNDER_LOAD} requests answered after the replacement",
        )
    replacement = worker_pids(server) - workers
    failures = load.failures()
    print(
        f"kill -9: {len(load.outcomes)} requests, {len(failures)} failed "
        f"({Counter(o.result for o in failures)}), worker replaced in "
        f"{replaced_at - killed_at:.2f} s"
    )
    assert len(replacement) == 1, server.log.read_text()[-2000:]
    assert f"Worker (pid:{victim}) was sent SIGKILL" in server.log.read_text()
    # A sync worker holds one request at a time: at most that one request is lost, and only
    # one that was in progress when the signal came.
    assert len(failures) <= 1, failures
    assert all(o.began <= killed_at <= o.ended for o in failures), failures
    assert all(o.result == "200" for o in load.outcomes if o.path == "/ping" and o not in failures)
    assert any(o.began > replaced_at and o.result == "200" for o in load.outcomes)


def _connect_result(port: int) -> str:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        return type(exc).__name__
    return "connected"


def test_sigterm_under_load_drains_refuses_new_connections_and_exits_0(
    tmp_path: Path, serve
) -> None:
    """A request is held in flight (half its body sent) when SIGTERM comes; load keeps coming."""
    server = _serve(tmp_path, serve)
    port = server.port
    with Load(port, clients=2) as load, socket.create_connection(("127.0.0.1", port)) as held:
        held.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
            + BODY[:5]
        )
        wait_until(lambda: accepted_by(server, held), 30, "nginx to accept the held request")
        wait_until(lambda: load.answered(UNDER_LOAD), 60, f"{UNDER_LOAD} requests answered")
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        # nginx closes its listener on SIGTERM (the supervisor quits it gracefully): the drain
        # has begun.
        wait_until(lambda: not listening(port), 30, f"port {port} to stop listening")
        during_drain = _connect_result(port)
        held.sendall(BODY[5:])
        reply = b""
        while chunk := held.recv(65536):
            reply += chunk
        code = server.process.wait(timeout=30)
        drained = time.monotonic() - signalled
    before = [o for o in load.outcomes if o.ended < signalled]
    after = [o for o in load.outcomes if o.ended >= signalled]
    print(
        f"SIGTERM: exit {code} after {drained:.2f} s; "
        f"{len(before)} requests before, after: {Counter(o.result for o in after)}; "
        f"a new connection during the drain: {during_drain}"
    )
    assert code == 0, server.log.read_text()[-2000:]
    assert drained < 30
    assert reply.startswith(b"HTTP/1.1 200"), reply
    assert during_drain == "ConnectionRefusedError"
    assert all(o.result == "200" for o in before), Counter(o.result for o in before)
    # Accepted requests are answered and later connections refused. A connection the kernel
    # queued in the moment before the listener closed, not yet taken by a worker, is reset:
    # at most one per client thread (each has one connection open at a time).
    results = Counter(o.result for o in after)
    assert set(results) <= {"200", "ConnectionRefusedError", "ConnectionResetError"}, (
        results,
        server.log.read_text()[-3000:],
    )
    assert results["ConnectionResetError"] <= len(load.threads), results
