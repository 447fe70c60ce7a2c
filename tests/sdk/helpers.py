"""Paths and names the SDK tests share."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from digits_data import DigitsSplit, write_digits_csv

from tests.support.paths import REPO

EXAMPLES = REPO / "examples"
DRIVERS = Path(__file__).resolve().parent / "drivers"
NETWORK = "sagemaker-local"
IMAGE = os.environ.get("XGB_IMAGE", "sagemaker-xgboost-byoc:latest")


__all__ = [
    "DRIVERS",
    "EXAMPLES",
    "IMAGE",
    "NETWORK",
    "REPO",
    "DigitsSplit",
    "SdkRun",
    "SdkVenvs",
    "write_digits_csv",
]


@dataclass(frozen=True)
class SdkVenvs:
    sdk2: Path
    sdk3: Path


@dataclass(frozen=True)
class SdkRun:
    """Where one test's SDK runs keep everything, and the environment they run with."""

    root: Path
    env: dict[str, str]

    def run(self, python: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        """Run a script under an SDK venv's Python; stdout and stderr together, as a user sees."""
        return subprocess.run(
            [str(python), *args],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
