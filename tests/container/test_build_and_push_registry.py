"""build_and_push.sh --registry against a real local registry (Debian's docker-registry on
127.0.0.1): the image is pushed, pulled back, and the pulled image serves."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.processes import free_port
from tests.support.docker import run, script
from tests.support.waiting import wait_until

from .docker_helpers import IMAGE_NAME, curl, serving, status_and_body

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]

PUSH_TAG = "pushtest"


@pytest.fixture
def registry(tmp_path: Path, docker_engine: None) -> Iterator[str]:
    """A docker-registry on a free loopback port with its own config and storage."""
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (tmp_path / "registry.log").open("w")
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: status_and_body(curl(f"http://127.0.0.1:{port}/v2/"))[0] == 200,
            30,
            "200 from docker-registry's /v2/",
            alive=lambda: process.poll() is None,
            context=(tmp_path / "registry.log").read_text,
            poll_s=0.2,
        )
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def test_push_to_a_registry_then_pull_and_serve(
    registry: str, base_image: str, image: str, trained_opt_ml: Path, container_name
) -> None:
    remote = f"{registry}/{IMAGE_NAME}"
    try:
        pushed = script(
            "build_and_push.sh",
            "--registry",
            registry,
            "--tag",
            PUSH_TAG,
            "--base-image",
            base_image,
            IMAGE_NAME,
            timeout=900,
        )
        assert pushed == f"{remote}:{PUSH_TAG}"
        tags = curl(f"http://{registry}/v2/{IMAGE_NAME}/tags/list").stdout
        assert PUSH_TAG in tags and "latest" in tags

        # Forget the local copies, then pull back what the registry holds.
        run(["docker", "rmi", f"{remote}:{PUSH_TAG}", f"{remote}:latest"])
        run(["docker", "pull", f"{remote}:{PUSH_TAG}"], timeout=300)

        with serving(
            f"{remote}:{PUSH_TAG}", container_name("pulled"), trained_opt_ml / "model"
        ) as port:
            status, _ = status_and_body(curl(f"http://127.0.0.1:{port}/ping"))
        assert status == 200
    finally:
        subprocess.run(
            [
                "docker",
                "rmi",
                f"{remote}:{PUSH_TAG}",
                f"{remote}:latest",
                f"{IMAGE_NAME}:{PUSH_TAG}",
            ],
            capture_output=True,
            timeout=120,
        )
