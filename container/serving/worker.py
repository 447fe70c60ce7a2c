"""gunicorn's sync worker behind nginx: whole requests in, answers out at memory speed.

The worker's only client is nginx (`front.py`), over a unix socket in the server's private run
folder. nginx reads each request whole, under its own deadlines, before it connects, and takes
each answer whole, so a worker never waits on a client: its reads are plain blocking calls (a
per-read deadline here, kept while gunicorn faced clients itself, cost a `poll` and two
`ioctl`s on every read: about 11 system calls a request, measured with `strace -c`). Should
nginx ever stall mid-request, gunicorn's `timeout` restarts the worker.

Two costs of gunicorn's one-request-per-connection closing are cut (measured side by side,
1-row requests at 8 clients, when gunicorn faced the clients over TCP): the response leaves
corked, headers, body and FIN in one segment (about 5% more requests a second; TCP only), and
once the request's body has been read whole, the close does not wait for the peer's own close,
which gunicorn allows up to 2 s, holding the worker idle meanwhile (13-24% more).

`DirectBody` and the early close use gunicorn attributes that are not its public interface
(`Body.buf`, `LengthReader.length` and `.unreader`, `req.body`); they were written against
`GUNICORN_VERSION`, which pyproject.toml pins, and tests/serving/test_gunicorn_pin.py fails when
the installed gunicorn is another one, so that an upgrade re-checks them.
"""

from __future__ import annotations

import contextlib
import socket
from http import HTTPStatus
from typing import Any

from gunicorn.http import errors as http_errors
from gunicorn.http.body import Body, LengthReader
from gunicorn.workers.sync import SyncWorker

from container.errors import ContainerError
from container.serving.failures import error_document

GUNICORN_VERSION = "27.0.1"
"""The gunicorn whose internals `DirectBody` and `FrontSyncWorker` use."""


class FrontSocket(socket.socket):
    """One connection from nginx: the response is sent corked (TCP), and once the request's
    body was read whole, gunicorn's lingering close does not wait for the peer."""

    corked: bool = False
    body_consumed: bool = False
    """Set by the worker once the request's body was read whole and the response sent."""

    @classmethod
    def adopt(cls, client: socket.socket) -> FrontSocket:
        """Take over `client`'s connection (the old object is detached)."""
        return cls(client.family, client.type, client.proto, fileno=client.detach())

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self.body_consumed:
            return self._drain(bufsize, flags)
        return super().recv(bufsize, flags)

    def _drain(self, bufsize: int, flags: int) -> bytes:
        """gunicorn's close after a response to a request read whole: what has already arrived,
        then b"" (closed) rather than wait for the peer's close. (With unread request bytes
        it lingers as usual: closing on them would reset the connection and could cut the
        response short.)"""
        self.setblocking(False)
        try:
            return super().recv(bufsize, flags)
        except BlockingIOError:
            return b""

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Send, holding partial segments back from the response's first write on (`TCP_CORK`,
        on TCP connections): gunicorn writes the headers and the body in two calls, and closes
        the connection after them, so a small response leaves in one segment with the FIN that
        the close sends. gunicorn's `100 Continue` goes out with `send`, before the body is
        read: it is never held."""
        if not self.corked:
            self.corked = True
            if self.family in (socket.AF_INET, socket.AF_INET6):
                self.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        super().sendall(data, flags)


class DirectBody(Body):
    """gunicorn's request body plus `readinto`, which receives from the socket straight into the
    caller's buffer. gunicorn's `read` passes every byte through two more buffers (a 52 MB
    batch body: about 40 ms and 100 MB of copies); werkzeug's stream uses `readinto` when the
    body has it, so `payload.read_body` fills its one buffer with no copy in between."""

    def __init__(self, reader: LengthReader, sock: socket.socket) -> None:
        super().__init__(reader)
        self._sock = sock

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.buf.tell():  # an earlier `read` holds bytes back: let it hand them out
            data = self.read(len(view))
            view[: len(data)] = data
            return len(data)
        reader: LengthReader = self.reader
        size = min(len(view), reader.length)
        if size <= 0:
            return 0
        held = reader.unreader.take_buffered()  # what came in with the headers
        if held:
            got = min(len(held), size)
            view[:got] = held[:got]
            if got < len(held):
                reader.unreader.unread(held[got:])
        else:
            got = self._sock.recv_into(view[:size])
        reader.length -= got
        return got


_PARSE_STATUS = (
    (http_errors.LimitRequestLine, 414),
    (http_errors.LimitRequestHeaders, 431),
    (http_errors.ExpectationFailed, 417),
)
"""gunicorn's own statuses for these; every other malformed request is a 400."""


def _parse_error(exc: http_errors.ParseException) -> ContainerError:
    status = next((code for kind, code in _PARSE_STATUS if isinstance(exc, kind)), 400)
    return ContainerError(
        f"The request is not valid HTTP/1.1: {exc}. Send a request line, headers with a "
        "Content-Length (or chunks), and the body.",
        status,
    )


def _error_response(error: ContainerError) -> bytes:
    body = error_document(error.message)
    return (
        f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


class FrontSyncWorker(SyncWorker):
    """A sync worker serving nginx's connections (`FrontSocket`), reading bodies with no copy."""

    def handle(self, listener: Any, client: socket.socket, addr: Any) -> None:
        super().handle(listener, FrontSocket.adopt(client), addr)

    def handle_request(self, listener: Any, req: Any, client: FrontSocket, addr: Any) -> Any:
        reader = req.body.reader
        if isinstance(reader, LengthReader):
            req.body = DirectBody(reader, client)
        try:
            return super().handle_request(listener, req, client, addr)
        finally:
            client.body_consumed = isinstance(reader, LengthReader) and reader.length == 0

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """Errors met before the app runs (malformed HTTP) as JSON sentences like the app's."""
        if isinstance(exc, http_errors.ParseException) and not isinstance(
            exc,
            (
                http_errors.ConfigurationProblem,  # these are faults on our side
                http_errors.InvalidResponseHeader,
                http_errors.InvalidResponseHeaderName,
            ),
        ):
            exc = _parse_error(exc)
        if isinstance(exc, ContainerError) and exc.status < 500:
            self.log.info("%d for %s: %s", exc.status, addr, exc.message)
            with contextlib.suppress(OSError):  # the client has gone: nothing to tell it
                client.sendall(_error_response(exc))
            return
        super().handle_error(req, client, addr, exc)
