"""What the built image is: its metadata, the dispatcher, and what is not in its final layer."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.docker import run
from tests.support.paths import REPO

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def config(image: str) -> dict:
    return json.loads(run(["docker", "image", "inspect", image]).stdout)[0]["Config"]


def test_sagemaker_metadata(config: dict) -> None:
    assert config["Labels"]["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    assert config["Entrypoint"] == ["/usr/local/bin/entrypoint.sh"]
    assert config["Cmd"] == ["train"]
    assert config["User"] in ("", "root"), "SageMaker expects the image to run as root"
    assert config["WorkingDir"] == "/opt/program"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_unknown_command_is_refused_with_a_sentence(image: str, container_name) -> None:
    result = run(["docker", "run", "--name", container_name("cmd"), image, "bogus"], check=False)

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Unknown command 'bogus': run the image with 'train' or 'serve' (no argument trains)."
    )


def test_dispatcher_calls_our_entrypoints_not_sagemaker_trainings(
    image: str, container_name
) -> None:
    """sagemaker-training puts its own `train` on PATH; the dispatcher must not depend on PATH."""
    result = run(
        [
            "docker",
            "run",
            "--name",
            container_name("which"),
            "--entrypoint",
            "sh",
            image,
            "-c",
            "command -v train; cat /usr/local/bin/entrypoint.sh",
        ]
    )
    assert result.stdout.splitlines()[0] == "/opt/venv/bin/train"
    assert "exec /opt/program/train" in result.stdout
    assert "exec /opt/program/serve" in result.stdout


def test_final_layer_has_no_compiler_caches_or_wheels(image: str, container_name) -> None:
    probe = r"""
import importlib.util, json, os, shutil
found = [t for t in ("gcc", "cc", "c++", "make") if shutil.which(t)]
found += [p for p in ("/tmp/wheels", "/root/.cache/pip", "/wheels") if os.path.exists(p)]
found += ["apt lists"] if os.listdir("/var/lib/apt/lists") else []
found += [f for f in os.listdir("/var/cache/apt/archives") if f.endswith(".deb")]
found += [m for m in ("setuptools", "wheel") if importlib.util.find_spec(m)]
found += [os.path.join(d, f) for d, _, fs in os.walk("/") if not d.startswith(("/proc", "/sys"))
          for f in fs if f.endswith(".whl") or (f.endswith(".tar.gz") and "site-packages" not in d)]
print(json.dumps(found))
"""
    result = run(
        [
            "docker",
            "run",
            "--name",
            container_name("probe"),
            "--entrypoint",
            "python3",
            image,
            "-c",
            probe,
        ]
    )
    assert json.loads(result.stdout) == []


def test_installed_packages_are_consistent_and_locked(image: str, container_name) -> None:
    check = run(
        ["docker", "run", "--name", container_name("pip"), "--entrypoint", "pip", image, "check"]
    )
    assert "No broken requirements found" in check.stdout
    freeze = run(
        [
            "docker",
            "run",
            "--name",
            container_name("freeze"),
            "--entrypoint",
            "pip",
            image,
            "freeze",
            "--all",
        ]
    )

    def pins(text: str) -> set[str]:
        lines = (line.strip() for line in text.splitlines())
        return {re.sub(r"[-_.]+", "-", line.lower()) for line in lines if "==" in line}

    assert pins(freeze.stdout) == pins((REPO / "requirements.lock").read_text())


def test_no_secrets_in_history_or_environment(image: str, config: dict) -> None:
    history = run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image]).stdout
    text = history + "\n".join(config["Env"])
    for marker in ("AWS_SECRET", "AWS_ACCESS_KEY", "AWS_SESSION_TOKEN", "PASSWORD", "TOKEN="):
        assert marker not in text.upper()


def test_default_base_image_is_pinned_by_digest() -> None:
    line = next(
        line
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.startswith("ARG BASE_IMAGE=")
    )
    assert re.fullmatch(
        r"ARG BASE_IMAGE=python:3\.11[\w.-]*-slim-bookworm@sha256:[0-9a-f]{64}", line
    )
