"""The gunicorn internals the worker uses are checked against one gunicorn version."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

import gunicorn
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import Unreader

from container.serving.worker import GUNICORN_VERSION

REPO = Path(__file__).resolve().parents[2]


def test_installed_gunicorn_is_the_one_the_worker_was_written_for() -> None:
    """Fails on any other gunicorn: re-check `DirectBody` and the early close, then move
    `GUNICORN_VERSION` and pyproject.toml's pin together."""
    assert gunicorn.__version__ == GUNICORN_VERSION
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"gunicorn=={GUNICORN_VERSION}" in dependencies


def test_the_private_attributes_used_are_there() -> None:
    """What `DirectBody` reads and writes: a body's `buf` and `reader`, a length reader's
    `length` and `unreader`, an unreader's `take_buffered` and `unread`."""
    assert "self.buf" in inspect.getsource(Body.__init__)
    assert "self.reader" in inspect.getsource(Body.__init__)
    assert "self.length" in inspect.getsource(LengthReader.__init__)
    assert "self.unreader" in inspect.getsource(LengthReader.__init__)
    assert callable(Unreader.take_buffered) and callable(Unreader.unread)
