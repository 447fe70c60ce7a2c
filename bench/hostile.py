"""The hostile-load scenario: /ping and 1-row throughput while clients misbehave.

SageMaker replaces an instance whose /ping does not answer within 2 s. For each load, every
server in turn: pings back to back on fresh connections (as SageMaker's are) for a window, then
1-row requests at 8 connections with `wrk`, while the load runs:

- `none`: nothing else (the reference);
- `idle`: 64 connections that send nothing;
- `trickling`: 64 clients that send a 1-row request a byte every 50 ms;
- `batch`: one client per worker sending 5 MB requests back to back (no throughput then: the
  workers are meant to be busy).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from typing import Any

from bench.load import run_wrk

PING_LIMIT_S = 2.0
CONNECTIONS = 64
TRICKLE_PAUSE_S = 0.05


def ping(port: int) -> tuple[bool, float]:
    """One /ping on a fresh connection: (200 within the 2 s limit, seconds)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PING_LIMIT_S)
    try:
        conn.request("GET", "/ping")
        response = conn.getresponse()
        response.read()
        ok = response.status == 200
    except (OSError, http.client.HTTPException):
        ok = False
    finally:
        conn.close()
    seconds = time.perf_counter() - started
    return ok and seconds < PING_LIMIT_S, seconds


def ping_window(port: int, seconds: float) -> dict[str, Any]:
    """Pings back to back for `seconds`: how many, how many healthy, p50 and p99 (a failed
    ping counts with the time it took, up to the 2 s limit)."""
    results = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or not results:
        results.append(ping(port))
    times = sorted(t for _, t in results)
    return {
        "pings": len(results),
        "healthy": sum(ok for ok, _ in results),
        "p50_ms": statistics.median(times) * 1000,
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000,
    }


@contextmanager
def idle(port: int) -> Iterator[None]:
    with ExitStack() as stack:
        for _ in range(CONNECTIONS):
            stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
        yield


@contextmanager
def trickling(port: int, body: bytes) -> Iterator[None]:
    request = (
        "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    stop = threading.Event()

    def run() -> None:
        with ExitStack() as stack:
            socks = [
                stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
                for _ in range(CONNECTIONS)
            ]
            for index in range(len(request) - 1):  # never the last byte
                for sock in socks:
                    with contextlib.suppress(OSError):  # a server that gave up on it
                        sock.sendall(request[index : index + 1])
                if stop.wait(TRICKLE_PAUSE_S):
                    return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


@contextmanager
def batches(port: int, body: bytes, clients: int) -> Iterator[None]:
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            try:
                conn.request("POST", "/invocations", body, {"Content-Type": "text/csv"})
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                stop.wait(0.1)
            finally:
                conn.close()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)


def run_hostile(
    ports: dict[str, int],
    wrk: str,
    row: bytes,
    batch_body: bytes,
    workers: int,
    window_s: float,
    duration_s: float,
) -> dict[str, dict[str, Any]]:
    """For each load and each server (in turn): its pings and, but under `batch`, its 1-row
    rate at 8 connections."""
    loads: dict[str, Callable[[int], AbstractContextManager[Any]]] = {
        "none": lambda port: nullcontext(),
        "idle": idle,
        "trickling": lambda port: trickling(port, row),
        "batch": lambda port: batches(port, batch_body, workers),
    }
    results: dict[str, dict[str, Any]] = {name: {} for name in ports}
    for load, make in loads.items():
        for name, port in ports.items():
            print(f"  hostile {load}: {name} ...", flush=True)
            with make(port):
                entry = ping_window(port, window_s)
                if load != "batch":
                    rate = run_wrk(wrk, port, row, 8, duration_s)
                    entry |= {"req_per_s": rate.req_per_s, "errors": rate.errors}
            results[name][load] = entry
    for entry in results.values():
        reference = entry["none"].get("req_per_s") or 0.0
        for load in ("idle", "trickling"):
            rate = entry[load]["req_per_s"]
            entry[load]["of_unloaded"] = rate / reference if reference else 0.0
    return results


def hostile_table(results: dict[str, Any]) -> str:
    """The hostile-load results of a bench run as a markdown table."""
    lines = [
        "| load | server | /ping healthy | /ping p50 | /ping p99 | 1-row req/s (8 clients) |",
        "|---|---|---|---|---|---|",
    ]
    for model, measured in results["models"].items():
        for name, server in measured["servers"].items():
            for load, entry in server.get("hostile", {}).items():
                rate = entry.get("req_per_s")
                share = ""
                if "of_unloaded" in entry:
                    share = f" ({entry['of_unloaded']:.2f} of unloaded)"
                lines.append(
                    f"| {model} {load} | {name} | {entry['healthy']} of {entry['pings']} | "
                    f"{entry['p50_ms']:.1f} ms | {entry['p99_ms']:.1f} ms | "
                    f"{'-' if rate is None else f'{rate:,.0f}'}{share} |"
                )
    return "\n".join(lines)
