"""The Dockerfile passes hadolint; every shell script passes shellcheck."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO

SHELL_SCRIPTS = sorted(
    [
        *REPO.glob("*.sh"),
        *REPO.glob("scripts/*.sh"),
        *REPO.glob("docker/*.sh"),
        *REPO.glob("local_test/*.sh"),
        *(REPO / "tests" / "container" / "stand_ins").iterdir(),
        REPO / "train",
        REPO / "serve",
        REPO / ".ci" / "run",
    ]
)


@pytest.fixture(scope="module")
def shellcheck() -> str:
    """shellcheck, installed by scripts/docker-engine.sh's host tools when missing."""
    if not shutil.which("shellcheck"):
        subprocess.run(
            [str(REPO / "scripts" / "docker-engine.sh"), "tools"], check=True, timeout=600
        )
    found = shutil.which("shellcheck")
    assert found, "scripts/docker-engine.sh tools did not install shellcheck"
    return found


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_shell_script_passes_shellcheck(shellcheck: str, path: Path) -> None:
    result = subprocess.run([shellcheck, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
