"""Helpers for training tests: build a real `/opt/ml` tree in a temp folder and run `./train`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
LOCAL_TEST = REPO / "local_test"
PEER_DATA = REPO.parent / "shared" / "peer-data"


@dataclass
class Job:
    """An `/opt/ml`-shaped folder for one training run."""

    base: Path

    @property
    def model_file(self) -> Path:
        return self.base / "model" / "xgboost-model"

    @property
    def failure_file(self) -> Path:
        return self.base / "output" / "failure"

    @property
    def failure(self) -> str | None:
        return self.failure_file.read_text() if self.failure_file.exists() else None

    def channel_dir(self, name: str) -> Path:
        return self.base / "input" / "data" / name

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        env["SAGEMAKER_BASE_DIR"] = str(self.base)
        return env

    def run(self, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run the real `./train` as SageMaker would, and return its exit status and log."""
        return subprocess.run(
            [str(REPO / "train")],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> subprocess.Popen[str]:
        """Start `./train` in its own session, stdout (metric lines) piped."""
        return subprocess.Popen(
            [str(REPO / "train")],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def make_job(
    root: Path,
    hyperparameters: dict,
    channels: dict[str, dict],
    resources: dict | None = None,
) -> Job:
    """Write config files; `channels` maps a name to {'content_type': ..., 'files': {...}}.

    `files` maps a relative path to bytes, str or a source `Path` to copy.
    """
    base = root / "opt_ml"
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (base / "model").mkdir(exist_ok=True)
    (base / "output").mkdir()
    (config / "hyperparameters.json").write_text(
        json.dumps({key: str(value) for key, value in hyperparameters.items()})
    )
    data_config = {}
    for name, spec in channels.items():
        entry = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"}
        if spec.get("content_type"):
            entry["ContentType"] = spec["content_type"]
        data_config[name] = entry
        directory = base / "input" / "data" / name
        directory.mkdir(parents=True)
        for relative, content in spec.get("files", {}).items():
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copy(content, target)
            elif isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
    (config / "inputdataconfig.json").write_text(json.dumps(data_config))
    resources = resources or {"current_host": "node-7", "hosts": ["node-7"]}
    (config / "resourceconfig.json").write_text(json.dumps(resources))
    return Job(base)


def csv_text(matrix: np.ndarray, fmt: str = "%.6g") -> str:
    return "\n".join(",".join(fmt % v for v in row) for row in matrix) + "\n"


def regression_rows(n: int = 300, features: int = 5, seed: int = 0) -> np.ndarray:
    """Label first, then features; the label is a noisy linear function of them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    y = x @ np.arange(1, features + 1) + rng.normal(scale=0.1, size=n)
    return np.column_stack([y, x])


def binary_rows(n: int = 300, features: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    return np.column_stack([(x[:, 0] + x[:, 1] > 0).astype(float), x])


def write_tree(directory: Path, files: dict[str, bytes | str]) -> Path:
    """Write `files` (relative name → content) under `directory`, folders included."""
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return directory
