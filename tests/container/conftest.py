"""Fixtures for tests against the real image under a real Docker engine.

The session's `docker_engine` (tests/conftest.py) starts the engine, installing it when missing,
and stops it at the end only if it started it. It builds the image once per run through
build_and_push.sh --no-push, FROM scripts/base-image.sh's base (the pinned public image, or a
local Debian image when no registry answers); Docker's layer cache makes later runs quick.
Containers get names from `container_name`, run on the host network, and are removed by name.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.docker import run, script
from tests.support.paths import LOCAL_TEST

from .docker_helpers import IMAGE_NAME, TEST_TAG, opt_ml_copy


@pytest.fixture(scope="session")
def base_image(docker_engine: None) -> str:
    return script("scripts/base-image.sh", timeout=600)


@pytest.fixture(scope="session")
def image(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The image, built once per run (the layer cache makes a rebuild quick)."""
    log = tmp_path_factory.mktemp("build") / "build.log"
    ref = script(
        "build_and_push.sh",
        "--no-push",
        "--tag",
        TEST_TAG,
        "--base-image",
        base_image,
        IMAGE_NAME,
        timeout=900,
        log=log,
    )
    assert ref == f"{IMAGE_NAME}:{TEST_TAG}"
    return ref


@pytest.fixture
def container_name(request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """Make unique container names for a test; remove those containers afterwards."""
    names: list[str] = []

    def make(purpose: str) -> str:
        name = f"xgb-byoc-test-{purpose}-{uuid.uuid4().hex[:8]}"
        names.append(name)
        return name

    yield make
    for name in names:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def trained_opt_ml(image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An /opt/ml tree after `docker run -v ...:/opt/ml IMAGE train` (shared by several tests)."""
    opt_ml = opt_ml_copy(tmp_path_factory.mktemp("trained") / "opt_ml")
    name = f"xgb-byoc-test-train-{uuid.uuid4().hex[:8]}"
    try:
        result = run(
            ["docker", "run", "--name", name, "-v", f"{opt_ml}:/opt/ml", image, "train"],
            timeout=600,
            check=False,
        )
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
    assert result.returncode == 0, (
        f"training failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    )
    return opt_ml


@pytest.fixture(scope="session")
def payload() -> Path:
    return LOCAL_TEST / "payload" / "digits-test.csv"
