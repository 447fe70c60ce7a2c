"""Fixtures every test folder shares; their code lives in `tests/support/`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The support modules' own asserts report their values as a test's do.
pytest.register_assert_rewrite("tests.support")

from tests.support import docker  # noqa: E402
from tests.support.server import Server, start_serve  # noqa: E402


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """`serve(base_dir, **env)`: the real `./serve` on a free 127.0.0.1 port, in its own
    session, once /ping answers 200. Every server it started is killed at teardown."""
    started: list[Server] = []

    def start(base_dir: Path, **env: str) -> Server:
        server = start_serve(base_dir, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[None]:
    """A running Docker engine; stopped at the end only if this session started it."""
    started = docker.start_engine()
    yield
    if started:
        docker.stop_engine()
