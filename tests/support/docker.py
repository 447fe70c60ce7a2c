"""The Docker engine and the commands the image tests and SDK tests share."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from .paths import REPO

SCRIPT_MODE_WHEELS = REPO / ".cache" / "script-mode-wheels"
SKLEARN_CLOSURE = ("scikit-learn", "joblib", "threadpoolctl", "narwhals", "cloudpickle")
"""scikit-learn and what it needs beyond the image's numpy and scipy, at the host venv's
versions (the same lock as the image)."""


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


def start_engine() -> bool:
    """Start the Docker engine if it is not running (scripts/docker-engine.sh, which installs it
    when missing); whether this call started it. Fails the test when it cannot."""
    return script("scripts/docker-engine.sh", "start", timeout=600) == "started"


def stop_engine() -> None:
    script("scripts/docker-engine.sh", "stop", timeout=120)


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
