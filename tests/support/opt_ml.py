"""The one builder of `/opt/ml` trees as SageMaker lays them out, and `./train` run on them.

Every test that trains (a process here, a container, a cluster of either) builds its tree with
`make_job`; script-mode jobs add the user's code with `script_mode_job`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .paths import REPO


@dataclass
class OptMlTree:
    """An `/opt/ml`-shaped folder: where a training run reads its input and leaves its results."""

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


@dataclass
class Job(OptMlTree):
    """An `/opt/ml` tree that the real `./train` runs on, on this machine."""

    def env(self, **extra: str) -> dict[str, str]:
        """The caller's environment, this venv first on PATH, `/opt/ml` here; `extra` on top."""
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        env["SAGEMAKER_BASE_DIR"] = str(self.base)
        return env | extra

    def run(self, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
        """Run the real `./train` as SageMaker would, with `env` added to `self.env()`, and
        return its exit status and log."""
        return subprocess.run(
            [str(REPO / "train")],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, **env: str) -> subprocess.Popen[str]:
        """Start `./train` in its own session, stdout (metric lines) piped."""
        return subprocess.Popen(
            [str(REPO / "train")],
            env=self.env(**env),
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
    *,
    name: str = "opt_ml",
) -> Job:
    """Write the tree at `root/name`: config files, channels, empty `model/` and `output/`.

    `channels` maps a name to {'content_type': ..., 'distribution': ..., 'files': {...}}, all
    optional; `distribution` is the S3DistributionType (FullyReplicated by default). `files`
    maps a relative path to bytes, str or a source `Path` to copy. Hyperparameter values are
    written as strings, as SageMaker does.
    """
    base = root / name
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (base / "model").mkdir(exist_ok=True)
    (base / "output").mkdir()
    (config / "hyperparameters.json").write_text(
        json.dumps({key: str(value) for key, value in hyperparameters.items()})
    )
    data_config = {}
    for channel, spec in channels.items():
        entry = {
            "TrainingInputMode": "File",
            "S3DistributionType": spec.get("distribution", "FullyReplicated"),
        }
        if spec.get("content_type"):
            entry["ContentType"] = spec["content_type"]
        data_config[channel] = entry
        directory = base / "input" / "data" / channel
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


def script_mode_job(
    root: Path,
    hyperparameters: dict,
    channels: dict[str, dict],
    *,
    code: Path | None = None,
    script: str | None = None,
    resources: dict | None = None,
) -> Job:
    """A `make_job` tree whose `/opt/ml/code` holds the user's code, as SDK local mode mounts
    it: a copy of the folder `code`, or `script` as `train.py`."""
    job = make_job(root, hyperparameters, channels, resources)
    target = job.base / "code"
    if code is not None:
        shutil.copytree(code, target, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        target.mkdir()
        (target / "train.py").write_text(script or "")
    return job
