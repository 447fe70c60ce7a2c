"""Helpers for tests of the real image: running commands, curl, and serving containers."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCAL_TEST = REPO / "local_test"
IMAGE_NAME = "sagemaker-xgboost-byoc"
TEST_TAG = "test"
READY_TIMEOUT_S = 120
"""Upper bound on a server's start-up; a readiness deadline, not a speed assertion."""
SCRIPT_MODE_WHEELS = REPO / ".cache" / "script-mode-wheels"
SKLEARN_CLOSURE = ("scikit-learn", "joblib", "threadpoolctl", "narwhals", "cloudpickle")
"""scikit-learn and what it needs beyond the image's numpy and scipy, at the host venv's
versions (the same lock as the image)."""


def script_mode_wheels() -> Path:
    """The wheels the script-mode example's `requirements.txt` installs in the image: pip inside
    these containers cannot reach PyPI, so they are downloaded once on the host (kept between
    runs in `.cache/`) and mounted or copied in."""
    pins = [f"{name}=={metadata.version(name)}" for name in SKLEARN_CLOSURE]
    wheels = SCRIPT_MODE_WHEELS
    if not all(any(wheels.glob(f"{pin.split('==')[0].replace('-', '_')}-*")) for pin in pins):
        wheels.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download"),
                *("--no-deps", "--only-binary=:all:", "--dest", str(wheels), *pins),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"pip download failed:\n{result.stderr[-3000:]}"
    return wheels


def run(cmd: list[str], timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command, capture its output; on failure show it in the test report."""
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result


def script(name: str, *args: str, timeout: float = 900, log: Path | None = None) -> str:
    """Run a project script; return the last line of its stdout (its result)."""
    result = subprocess.run(
        [str(REPO / name), *args], capture_output=True, text=True, timeout=timeout
    )
    if log is not None:
        log.write_text(result.stderr)
    if result.returncode != 0:
        pytest.fail(f"{name} {' '.join(args)} exited {result.returncode}:\n{result.stderr[-6000:]}")
    lines = result.stdout.strip().splitlines()
    assert lines, f"{name} printed nothing on stdout"
    return lines[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def wait_until_serving(name: str, port: int) -> None:
    """Poll /ping until 200; fail with the container's log if it exits or never answers."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        status, _ = status_and_body(curl(f"http://127.0.0.1:{port}/ping"))
        if status == 200:
            return
        state = run(["docker", "inspect", "-f", "{{.State.Running}}", name], check=False)
        if state.stdout.strip() != "true":
            logs = run(["docker", "logs", name], check=False)
            pytest.fail(f"container {name} exited before serving:\n{logs.stdout}{logs.stderr}")
        time.sleep(0.5)
    logs = run(["docker", "logs", name], check=False)
    pytest.fail(
        f"container {name} did not answer /ping:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
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
