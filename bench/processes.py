"""Start, watch and stop the processes a benchmark measures; memory read from /proc.

Every server runs in its own session (process group) so the whole gunicorn tree is stopped
with one signal; memory is summed over the tree because gunicorn forks its workers.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
SERVE = Path(__file__).resolve().parents[1] / "serve"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_group(
    argv: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session, stdout and stderr appended to `log`."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_group(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM the process group of `proc`, then SIGKILL what is left after `grace_s`."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    # The leader may be gone while forked workers still linger in its group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def ping_status(port: int, timeout_s: float = 1.0) -> int | None:
    """The status of `GET /ping` on 127.0.0.1:`port`, or None when nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def wait_for_ping(proc: subprocess.Popen[bytes], port: int, timeout_s: float, log: Path) -> float:
    """Seconds from now until `/ping` answers 200; raises if the server exits or never answers."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode} before answering /ping; "
                f"last lines of {log}:\n{tail(log)}"
            )
        if ping_status(port, timeout_s=0.5) == 200:
            return time.perf_counter() - start
        time.sleep(0.005)
    raise RuntimeError(f"no /ping 200 within {timeout_s} s; last lines of {log}:\n{tail(log)}")


OURS_BESIDE_WORKERS = 4
"""Processes of our `./serve` besides its gunicorn workers: the supervisor, nginx's master and
worker, gunicorn's master."""


def wait_for_processes(pid: int, count: int, timeout_s: float, settle_s: float = 0.3) -> None:
    """Wait until `pid`'s tree holds `count` processes (a server's master and every worker), then
    `settle_s` more for the last worker's start-up. A server answers /ping as soon as its first
    worker does; memory read before the others exist would miss them."""
    deadline = time.perf_counter() + timeout_s
    while len(process_tree(pid)) < count:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"process {pid} has {len(process_tree(pid))} of {count} processes")
        time.sleep(0.01)
    time.sleep(settle_s)


def base_env() -> dict[str, str]:
    """The caller's environment without settings that would change what a server does, this
    interpreter's folder first on PATH, output unbuffered."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SAGEMAKER_", "XGB_", "OMP_", "GUNICORN_")) and k != "PYTHONPATH"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def serve_env(base_dir: Path, port: int, workers: int, **extra: str) -> dict[str, str]:
    """`base_env` with our `./serve` pointed at `base_dir`, 127.0.0.1:`port` and `workers`."""
    return base_env() | {
        "SAGEMAKER_BASE_DIR": str(base_dir),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
        "XGB_SERVER_HOST": "127.0.0.1",
        **extra,
    }


@contextlib.contextmanager
def running_group(
    argv: Sequence[str],
    env: Mapping[str, str],
    port: int,
    log: Path,
    processes: int,
    cwd: Path | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """Start a server's process group, wait until /ping answers 200 and its tree holds
    `processes` processes (master and workers); yield it with the seconds from start to the
    first 200. The group is stopped on leaving the block."""
    start = time.perf_counter()
    proc = start_group(argv, env, log, cwd=cwd)
    try:
        wait_for_ping(proc, port, timeout_s=120, log=log)
        start_to_ping_s = time.perf_counter() - start
        wait_for_processes(proc.pid, processes, timeout_s=60)
        yield proc, start_to_ping_s
    finally:
        stop_group(proc)


def tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a text file (empty when it does not exist)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants that are alive now."""
    tree = _children()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_bytes(pids: Sequence[int]) -> int:
    """Sum of resident memory (VmRSS) over `pids`; shared pages count once per process."""
    return sum(_status_kb(pid, "VmRSS") for pid in pids) * 1024


def pss_bytes(pids: Sequence[int]) -> int:
    """Sum of proportional set size over `pids`: shared pages split between their sharers."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


def peak_rss_bytes(pids: Sequence[int]) -> int:
    """Sum of each process's resident high-water mark (VmHWM) since start or `reset_peaks`."""
    return sum(_status_kb(pid, "VmHWM") for pid in pids) * 1024


def rss_by_process(pids: Sequence[int]) -> dict[int, int]:
    """Resident memory (VmRSS) of each of `pids`, in bytes."""
    return {pid: _status_kb(pid, "VmRSS") * 1024 for pid in pids}


def peak_by_process(pids: Sequence[int]) -> dict[int, int]:
    """Resident high-water mark (VmHWM) of each of `pids`, in bytes."""
    return {pid: _status_kb(pid, "VmHWM") * 1024 for pid in pids}


def reset_peaks(pids: Sequence[int]) -> bool:
    """Reset VmHWM of `pids` to their current RSS (`clear_refs` 5); False if not permitted."""
    ok = True
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time used so far by `pid` (not its children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TreeSampler:
    """Samples the summed RSS of a process tree in a thread; `peak` is the largest sum seen."""

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._sampling = threading.Event()
        self._sampling.set()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._sampling.is_set():
                self.peak = max(self.peak, rss_bytes(process_tree(self.pid)))
            self._stop.wait(self.interval_s)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No samples meanwhile: the sampling thread takes CPU and the GIL from whatever the
        bench itself measures (the in-process floor between two batch requests)."""
        self._sampling.clear()
        try:
            yield
        finally:
            self._sampling.set()

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
