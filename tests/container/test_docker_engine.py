"""scripts/docker-engine.sh is idempotent and stops only an engine it started."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.paths import REPO

ENGINE = str(REPO / "scripts" / "docker-engine.sh")


def engine(*args: str, state_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ENGINE, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "DOCKER_ENGINE_STATE_DIR": str(state_dir),
        },
    )


@pytest.mark.docker
def test_a_second_start_reuses_the_running_engine(docker_engine: None, tmp_path: Path) -> None:
    result = engine("start", state_dir=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "reused"
    assert not (tmp_path / "dockerd.pid").exists()


def test_stop_leaves_an_engine_it_did_not_start_alone(tmp_path: Path) -> None:
    result = engine("stop", state_dir=tmp_path)

    assert result.returncode == 0
    assert "not stopping: this script did not start the running engine" in result.stderr
    assert result.stdout.strip() == "not-ours"


def test_unknown_mode_ends_with_a_sentence(tmp_path: Path) -> None:
    result = engine("restart", state_dir=tmp_path)

    assert result.returncode == 1
    assert (
        result.stderr.strip() == "docker-engine: unknown mode 'restart'; use start, stop or tools."
    )
