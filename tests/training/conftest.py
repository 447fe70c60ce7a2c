"""Fixtures for training tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.processes import free_port
from tests.support.distributed import HYPERPARAMETERS, Data, build_opt_ml, holdout_scores, make_data
from tests.support.local_cluster import LocalCluster, start_host, wait_all


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


@pytest.fixture(scope="module")
def single_host_scores(data: Data, tmp_path_factory: pytest.TempPathFactory) -> tuple[float, float]:
    """Held-out (logloss, accuracy) of the multi-host tests' data trained on one host."""
    job = build_opt_ml(
        tmp_path_factory.mktemp("single"),
        "host-algo-1",
        ["algo-1"],
        "algo-1",
        data,
        "FullyReplicated",
        HYPERPARAMETERS,
        "lo",
    )
    host = start_host(job.base, "algo-1", free_port(), {})
    assert wait_all([host]) == [0], host.output
    return holdout_scores(host.model_file, data)
