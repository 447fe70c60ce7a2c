"""The real `./serve` (nginx in front of gunicorn) on a free 127.0.0.1 port, in its own session.

`start_serve` returns once /ping answers 200; `Server.stop` kills the whole process group.
The `serve` fixture (tests/conftest.py) stops every server a test started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.processes import free_port, start_group

from .paths import REPO
from .waiting import wait_for_ping, wait_until

READY_TIMEOUT_S = 60
"""Upper bound on a server's start-up; a readiness deadline, not a speed assertion."""


def serve_env(base_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """The caller's environment without SAGEMAKER_/XGB_ settings, this venv first on PATH, and
    the server pointed at `base_dir` and 127.0.0.1:`port` with 2 workers; `extra` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "XGB_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.update(
        SAGEMAKER_BASE_DIR=str(base_dir),
        SAGEMAKER_BIND_TO_PORT=str(port),
        XGB_SERVER_HOST="127.0.0.1",
        SAGEMAKER_MODEL_SERVER_WORKERS="2",
    )
    env.update(extra)
    return env


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path
    workers: set[int] = field(default_factory=set)
    """The workers it started with (all of them: /ping answers before the last one boots)."""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        """SIGKILL the server's process group: the master and every worker, also those left
        behind when the master has already exited."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def start_serve(base_dir: Path, **extra: str) -> Server:
    """Start `./serve` for the `/opt/ml` tree at `base_dir` in its own session; return once
    /ping answers 200 and every worker is up. `extra` environment variables override the
    defaults of `serve_env`."""
    port = free_port()
    log = base_dir / f"serve-{port}.log"
    env = serve_env(base_dir, port, **extra)
    process = start_group([str(REPO / "serve")], env, log)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_for_ping(
            server.url,
            READY_TIMEOUT_S,
            alive=lambda: process.poll() is None,
            context=lambda: f"serve exit status {process.poll()}:\n{log.read_text()}",
        )
        server.workers = wait_for_workers(server, int(env["SAGEMAKER_MODEL_SERVER_WORKERS"]))
    except BaseException:
        server.stop()
        raise
    return server


def predict_csv(server: Server, content_type: str, body: bytes) -> list[float]:
    """POST `body` to /invocations asking for CSV; the predictions of a 200 answer, one a row."""
    response = requests.post(
        f"{server.url}/invocations",
        data=body,
        headers={"Content-Type": content_type, "Accept": "text/csv"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return [float(value) for value in response.text.split()]


@contextlib.contextmanager
def running_server(base_dir: Path, **extra: str) -> Iterator[Server]:
    """`start_serve`, stopped on leaving the block."""
    server = start_serve(base_dir, **extra)
    try:
        yield server
    finally:
        server.stop()


def child_pids(pid: int) -> set[int]:
    """The live (not zombie) children of `pid`, read from /proc."""
    children: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == pid and fields[0] != "Z":
            children.add(int(stat.parent.name))
    return children


def gunicorn_master(server: Server) -> int | None:
    """gunicorn's master: the child of `serve` (the supervisor) that is not nginx."""
    for pid in child_pids(server.process.pid):
        try:
            if not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"nginx"):
                return pid
        except OSError:
            continue  # the process ended while we looked
    return None


def worker_pids(server: Server) -> set[int]:
    """The gunicorn workers: the children of gunicorn's master (`serve` runs it beside nginx)."""
    master = gunicorn_master(server)
    return set() if master is None else child_pids(master)


def wait_for_workers(server: Server, count: int) -> set[int]:
    """The worker PIDs once `count` workers are up (/ping can answer before the last boots)."""

    def all_up() -> set[int] | None:
        pids = worker_pids(server)
        return pids if len(pids) == count else None

    return wait_until(
        all_up,
        30,
        f"{count} workers",
        alive=lambda: server.process.poll() is None,
        context=lambda: f"{len(worker_pids(server))} workers:\n{server.log.read_text()}",
    )


def serve_until_exit(
    base_dir: Path, timeout_s: float = 120, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run `./serve` for `base_dir` in its own session when it is expected to refuse to start:
    its exit status and output (a server that does start runs into `timeout_s`)."""
    return subprocess.run(
        [str(REPO / "serve")],
        env=serve_env(base_dir, free_port(), **extra),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        start_new_session=True,
    )


def read_answer(sock: socket.socket) -> bytes:
    """One HTTP answer: until its Content-Length is in, or until the server closes."""
    reply = b""
    while chunk := sock.recv(1 << 20):
        reply += chunk
        head, found, body = reply.partition(b"\r\n\r\n")
        lengths = [
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")[1:]
            if line.lower().startswith(b"content-length:")
        ]
        if found and lengths and len(body) >= lengths[0]:
            break
    return reply


def _tcp_sockets() -> list[tuple[int, int, str, int]]:
    """(local port, remote port, state, inode) of every IPv4 TCP socket, from /proc/net/tcp."""
    sockets = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        sockets.append(
            (int(local.split(":")[1], 16), int(remote.split(":")[1], 16), state, int(inode))
        )
    return sockets


def listening(port: int) -> bool:
    """Whether any socket listens on TCP `port` (state 0A, LISTEN)."""
    return any(local == port and state == "0A" for local, _, state, _ in _tcp_sockets())


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`: for `serve`, nginx's master and workers, gunicorn's
    master and workers."""
    found: set[int] = set()
    parents = [pid]
    while parents:
        children = child_pids(parents.pop())
        found |= children
        parents.extend(children)
    return found


def accepted_by(server: Server, client: socket.socket) -> int | None:
    """The process that has accepted `client`'s connection (it holds the server's end of it:
    one of nginx's workers, which hold every client connection), or None while the connection
    waits in the listen queue."""
    client_port = client.getsockname()[1]
    ends = {
        inode
        for local, remote, _, inode in _tcp_sockets()
        if local == server.port and remote == client_port
    }
    return next(
        (pid for pid in descendants(server.process.pid) if ends & _socket_inodes(pid)), None
    )
