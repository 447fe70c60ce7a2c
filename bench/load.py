"""Drive a server on 127.0.0.1: `wrk` for timed closed-loop load, http.client for one big request.

Why `wrk` and not a Python client: on a 2-core machine the load generator shares the cores with
the server. Measured here against the tuned Flask server with 1-row requests (gunicorn's sync
workers close the connection, so every request is a new TCP connection): `wrk` spent 100-150 µs
of CPU per request (mostly the kernel's connect/close) and drove 1,256 req/s at 8 connections;
a minimal asyncio client spent 370-440 µs per request and drove only 683 req/s, half, because it
took a core away from the server. The bench records the client's CPU per request in every run.
`ensure_wrk` installs Debian's `wrk` when it is missing (new CI machines start without it).
"""

from __future__ import annotations

import http.client
import json
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/csv"
wrk.headers["Accept"] = "text/csv"
local f = assert(io.open("%(body)s", "rb"))
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"bytes\\": %%d, " ..
    "\\"connect_errors\\": %%d, \\"read_errors\\": %%d, \\"write_errors\\": %%d, " ..
    "\\"status_errors\\": %%d, \\"timeouts\\": %%d, \\"p50_us\\": %%d, \\"p90_us\\": %%d, " ..
    "\\"p99_us\\": %%d, \\"mean_us\\": %%.1f, \\"max_us\\": %%d}\\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """What one timed load run measured."""

    requests: int
    duration_s: float
    req_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int
    client_cpu_us_per_req: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def ensure_wrk() -> str:
    """Path of `wrk`, installing Debian's package with apt-get when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise RuntimeError("`wrk` is not installed and there is no apt-get to install it.")
    install = [apt, "install", "-y", "--no-install-recommends", "wrk"]
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run([apt, "update"], env=env, capture_output=True, check=False)
        subprocess.run(install, env=env, capture_output=True, check=True)
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("apt-get installed `wrk` but it is not on PATH.")
    return found


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    wrk: str,
    port: int,
    body: bytes,
    connections: int,
    duration_s: float,
    path: str = "/invocations",
) -> LoadResult:
    """POST `body` as text/csv to `path` with `connections` clients for `duration_s`."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        body_file = Path(tmp, "body.csv")
        body_file.write_bytes(body)
        script = Path(tmp, "post.lua")
        script.write_text(_WRK_SCRIPT % {"body": body_file})
        argv = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",  # wrk counts whole seconds only
            "--timeout",
            "30s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{path}",
        ]
        before = _children_cpu_s()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        cpu = _children_cpu_s() - before
    out, err = proc.stdout, proc.stderr
    line = next((x for x in out.splitlines() if x.startswith("WRK_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip() or out.strip()}")
    raw = json.loads(line.removeprefix("WRK_RESULT "))
    requests = raw["requests"]
    duration = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in raw if k.endswith("_errors")) + raw["timeouts"]
    return LoadResult(
        requests=requests,
        duration_s=duration,
        req_per_s=requests / duration if duration else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=errors,
        client_cpu_us_per_req=cpu / requests * 1e6 if requests else 0.0,
    )


def post_csv(port: int, body: bytes, timeout_s: float = 600.0) -> tuple[int, bytes, float]:
    """One POST of `body` to /invocations: (status, response body, seconds until fully read)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        start = time.perf_counter()
        headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
        conn.request("POST", "/invocations", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - start
    finally:
        conn.close()
