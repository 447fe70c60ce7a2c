"""Helpers for tests of the real image: running commands, curl, and serving containers."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from bench.processes import free_port
from tests.support.docker import run
from tests.support.paths import LOCAL_TEST
from tests.support.waiting import wait_for_ping

IMAGE_NAME = "sagemaker-xgboost-byoc"
TEST_TAG = "test"
READY_TIMEOUT_S = 120
"""Upper bound on a server's start-up; a readiness deadline, not a speed assertion."""
DOCKER_POLL_S = 0.3
"""Between two looks through the docker CLI, each a process of its own on a busy machine."""


def opt_ml_copy(destination: Path, hyperparameters: str | None = None) -> Path:
    """A fresh copy of local_test/test_dir, optionally with other hyperparameters."""
    shutil.copytree(LOCAL_TEST / "test_dir", destination)
    if hyperparameters is not None:
        (destination / "input" / "config" / "hyperparameters.json").write_text(hyperparameters)
    return destination


def curl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """curl, as an operator would call the endpoint; returns body on stdout, status last."""
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "30", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def status_and_body(result: subprocess.CompletedProcess) -> tuple[int, str]:
    body, _, status = result.stdout.rpartition("\n")
    return int(status or 0), body


def container_running(name: str) -> bool:
    state = run(["docker", "inspect", "-f", "{{.State.Running}}", name], check=False)
    return state.stdout.strip() == "true"


def container_logs(name: str) -> str:
    logs = run(["docker", "logs", name], check=False)
    return f"container {name}'s log:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"


def wait_until_serving(name: str, port: int) -> None:
    """Until /ping answers 200; fail with the container's log if it exits or never answers."""
    wait_for_ping(
        f"http://127.0.0.1:{port}",
        READY_TIMEOUT_S,
        alive=lambda: container_running(name),
        context=lambda: container_logs(name),
        poll_s=DOCKER_POLL_S,
    )


@contextlib.contextmanager
def serving(
    image: str, name: str, model_dir: Path, *docker_args: str, port: int | None = None
) -> Iterator[int]:
    """Run `IMAGE serve` on the host network on a free port; yield the port once /ping is 200."""
    port = port or free_port()
    run(
        [
            "docker",
            "run",
            "--detach",
            "--name",
            name,
            "--network",
            "host",
            "-e",
            f"SAGEMAKER_BIND_TO_PORT={port}",
            "-v",
            f"{model_dir}:/opt/ml/model:ro",
            *docker_args,
            image,
            "serve",
        ]
    )
    wait_until_serving(name, port)
    yield port


def predictions_accuracy(body: str) -> tuple[int, float]:
    """How many predictions the CSV response has, and the share equal to the sample labels."""
    rows = (LOCAL_TEST / "payload" / "digits-test-labels.csv").read_text().split()
    labels = [row.split(",", 1)[0] for row in rows]  # label first, then the features
    predicted = [value for value in re.split(r"[,\s]+", body) if value]
    hits = sum(float(p) == float(label) for p, label in zip(predicted, labels, strict=False))
    return len(predicted), hits / max(len(labels), 1)
