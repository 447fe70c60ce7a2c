"""Fixtures for running the real SageMaker Python SDKs in local mode against the built image.

Each SDK runs in its own virtualenv (scripts/sdk-venvs.sh) as a subprocess, with a temporary
HOME (so `~/.sagemaker/config.yaml` is ours, not the user's), telemetry switched off, a region
set, no credentials, and any AWS API call pointed at a closed loopback port. Every container and
the `sagemaker-local` network the SDK creates are removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.processes import free_port
from tests.support.paths import REPO

from .helpers import IMAGE, NETWORK, DigitsSplit, SdkRun, SdkVenvs, write_digits_csv

VENV_TIMEOUT_S = 1200


def _missing(reason: str) -> None:
    """Skip on a developer machine; in CI a missing prerequisite is a failure."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=120, check=check
    )


@pytest.fixture(scope="session")
def image(docker_engine: None) -> str:
    """The image the SDK runs, built from this checkout by `make image` (which also tags
    `latest`); Docker's layer cache makes it quick when the container tests built it already."""
    if (
        shutil.which("docker-compose") is None
        and _docker("compose", "version", check=False).returncode != 0
    ):
        _missing("SDK local mode needs docker compose: apt-get install docker-compose")
    build = subprocess.run(
        ["make", "image"], cwd=REPO, capture_output=True, text=True, timeout=1200
    )
    if build.returncode != 0 or _docker("image", "inspect", IMAGE, check=False).returncode:
        _missing(f"`make image` could not build {IMAGE}:\n{build.stderr[-2000:]}")
    return IMAGE


@pytest.fixture(scope="session")
def sdk_pythons() -> SdkVenvs:
    """The two SDK virtualenvs' interpreters, created (or found up to date) by the script."""
    result = subprocess.run(
        [str(REPO / "scripts" / "sdk-venvs.sh")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=VENV_TIMEOUT_S,
    )
    if result.returncode != 0:
        _missing(f"scripts/sdk-venvs.sh could not create the SDK venvs:\n{result.stderr[-2000:]}")
    return SdkVenvs(sdk2=REPO / ".venv-sdk2/bin/python", sdk3=REPO / ".venv-sdk3/bin/python")


@pytest.fixture(scope="session")
def sagemaker_local_network(docker_engine: None) -> Iterator[None]:
    """Remove the `sagemaker-local` network at the end if these tests created it."""
    existed = _docker("network", "inspect", NETWORK, check=False).returncode == 0
    yield
    if not existed:
        _docker("network", "rm", NETWORK, check=False)


def _remove_containers_under(root: Path) -> list[str]:
    """`docker rm -f` every compose container whose project folder lies under `root`."""
    listing = _docker(
        "ps",
        "-a",
        "--filter",
        "label=com.docker.compose.project.working_dir",
        "--format",
        '{{.ID}}\t{{.Label "com.docker.compose.project.working_dir"}}',
        check=False,
    )
    ours = [
        line.split("\t", 1)[0]
        for line in listing.stdout.splitlines()
        if "\t" in line and Path(line.split("\t", 1)[1]).is_relative_to(root)
    ]
    if ours:
        _docker("rm", "-f", *ours, check=False)
    return ours


@pytest.fixture
def sdk_env(tmp_path: Path) -> SdkRun:
    """A temp HOME with the local-mode config, telemetry off, no credentials; no Docker needed."""
    home = tmp_path / "home"
    (home / ".sagemaker").mkdir(parents=True)
    containers = tmp_path / "containers"
    containers.mkdir()
    local_config = {
        "local": {
            "local_code": True,
            "container_root": str(containers),
            "serving_port": free_port(),
        }
    }
    (home / ".sagemaker" / "config.yaml").write_text(json.dumps(local_config))
    defaults = home / "sdk-defaults.yaml"
    defaults.write_text(
        json.dumps(
            {
                "SchemaVersion": "1.0",
                "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
            }
        )
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "SAGEMAKER_", "SM_"))
    }
    env.update(
        HOME=str(home),
        SAGEMAKER_USER_CONFIG_OVERRIDE=str(defaults),
        SAGEMAKER_ADMIN_CONFIG_OVERRIDE=str(defaults),
        AWS_DEFAULT_REGION="us-east-1",
        # No credentials, no instance metadata lookups, and any AWS call fails on loopback.
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        PYTHONUNBUFFERED="1",
        SAGEMAKER_SUPPRESS_V2_WARNING="1",
    )
    return SdkRun(root=tmp_path, env=env)


@pytest.fixture
def sdk_run(sdk_env: SdkRun, image: str, sagemaker_local_network: None) -> Iterator[SdkRun]:
    """`sdk_env` with the built image; the containers the SDK made are removed at teardown."""
    yield sdk_env
    _remove_containers_under(sdk_env.root)


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> DigitsSplit:
    """The digits CSV channels, written once for the driver scripts."""
    return write_digits_csv(tmp_path_factory.mktemp("digits"))
