"""The worker's client socket on a real 127.0.0.1 TCP connection: the response is corked."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from container.serving.worker import FrontSocket


@pytest.fixture
def connection() -> Iterator[tuple[FrontSocket, socket.socket]]:
    """(server side adopted as the worker adopts it, client side) of one TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=10)
        accepted, _ = listener.accept()
        server = FrontSocket.adopt(accepted)
        try:
            yield server, client
        finally:
            server.close()
            client.close()


def _corked(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK)


def test_response_is_corked_from_its_first_write_and_all_of_it_arrives(connection) -> None:
    server, client = connection
    server.send(b"HTTP/1.1 100 Continue\r\n\r\n")  # gunicorn's interim answer: never held
    assert _corked(server) == 0
    server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
    assert _corked(server) == 1
    server.sendall(b"0.5\n")
    server.shutdown(socket.SHUT_WR)  # gunicorn's close: the held segment leaves with the FIN
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    assert received == (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n0.5\n"
    )
