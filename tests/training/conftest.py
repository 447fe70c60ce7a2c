"""Fixtures for training tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.distributed import Data, make_data
from tests.support.local_cluster import LocalCluster


@pytest.fixture
def job_root(tmp_path: Path) -> Path:
    """A fresh folder under which a test builds its `/opt/ml` tree."""
    return tmp_path


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    """An empty offline wheel folder (XGB_WHEEL_DIR) for script-mode jobs."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def data() -> Data:
    """The multi-host tests' data: the train channel in files, validation, a held-out set."""
    return make_data()


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """Hosts as `./train` processes on this machine; every one still running is killed after."""
    hosts = LocalCluster(tmp_path)
    yield hosts
    hosts.stop_all()
