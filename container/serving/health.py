"""/ping, answered by gunicorn's master, so that no client and no busy worker can delay it.

SageMaker replaces an instance whose `/ping` does not answer within 2 s. A worker can be busy
for as long as a request takes (a batch request, a user's `predict_fn`), so `/ping` must not
wait for one; nginx (`front.py`) sends it to this responder instead: a thread in gunicorn's
master that answers on a unix socket from what gunicorn's public server hooks tell it. It
answers 200 once the model is loaded and gunicorn is ready, while at least one worker process
is alive; 503 with a sentence otherwise. A master that has died or hangs answers nothing, and
nginx turns that into a 503 after `front.PING_TIMEOUT_S`: the front never answers 200 alone.

The thread only accepts, reads the request head and writes a fixed answer (no logging, no
locks), so gunicorn's forks of the master stay safe; each worker closes its copy of the socket.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from pathlib import Path
from typing import Any

_READ_TIMEOUT_S = 1.0
_HEAD_LIMIT = 16384


def _answer(status: str, error: str | None = None) -> bytes:
    body = json.dumps({"error": error}).encode() if error else b""
    return (
        f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


_HEALTHY = _answer("200 OK")
_LOADING = _answer("503 Service Unavailable", "The model is loading; /ping answers 200 then.")
_NO_WORKER = _answer(
    "503 Service Unavailable",
    "No worker is alive; gunicorn is starting new ones. See the server log.",
)


class HealthResponder:
    """The pool's state, kept by gunicorn's server hooks, and the thread that reports it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ready = False
        self.workers: list[Any] = []
        """gunicorn's worker objects, from fork to exit (`pid` set in the master after fork)."""
        self._listener: socket.socket | None = None

    def listen(self) -> None:
        """Bind the socket nginx sends /ping to (before nginx starts: it never finds none)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        self.path.chmod(0o666)  # nginx's workers may run as another user
        listener.listen(64)
        self._listener = listener

    def start(self) -> None:
        """Answer from a thread of this process (gunicorn's master, before it loads the
        model): 503 until gunicorn is ready."""
        threading.Thread(target=self._serve, name="health", daemon=True).start()

    # gunicorn server hooks (the master calls them, except `post_fork`).
    def when_ready(self, server: Any) -> None:
        """gunicorn has bound its socket; the model was loaded before (preload)."""
        self.ready = True

    def pre_fork(self, server: Any, worker: Any) -> None:
        self.workers = [*self.workers, worker]

    def post_fork(self, server: Any, worker: Any) -> None:
        """In the new worker: it has no business with the master's socket."""
        if self._listener is not None:
            self._listener.close()

    def child_exit(self, server: Any, worker: Any) -> None:
        self.workers = [w for w in self.workers if w is not worker]

    def answer(self) -> bytes:
        """The HTTP answer `/ping` gets now."""
        if not self.ready:
            return _LOADING
        return _HEALTHY if any(_alive(worker) for worker in self.workers) else _NO_WORKER

    def _serve(self) -> None:
        listener = self._listener
        assert listener is not None
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: the master is stopping
            with client, contextlib.suppress(OSError):
                client.settimeout(_READ_TIMEOUT_S)
                head = b""
                while b"\r\n\r\n" not in head and len(head) < _HEAD_LIMIT:
                    chunk = client.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                client.sendall(self.answer())


def _alive(worker: Any) -> bool:
    """Whether a worker process runs: a worker that died is a zombie until the master's main
    thread reaps it (and calls `child_exit`), which this thread must not wait for."""
    pid = worker.pid
    if not isinstance(pid, int):
        return True  # being forked
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
