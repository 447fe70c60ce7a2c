"""Every `/opt/ml` path and `SAGEMAKER_*` setting, computed once from the environment.

This is the only module that reads `os.environ`. `SAGEMAKER_BASE_DIR` moves `/opt/ml`, so the
same code runs in the image, on a laptop and in tests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BASE_DIR = "/opt/ml"
MODEL_FILENAME = "xgboost-model"
DEFAULT_MAX_COLUMNS = 100_000
"""Features a request row, and the model serving it, may have (`XGB_SERVER_MAX_COLUMNS`)."""
"""The model file name shared by training and serving (the built-in algorithm's name)."""

REALTIME_MAX_PAYLOAD_MB = 6
"""SageMaker's payload limit for real-time endpoints."""
MB = 1024 * 1024

_TRUE = {"1", "true", "yes", "on"}


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer; set it to a whole number.") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be a positive integer.")
    return value


@dataclass(frozen=True)
class Paths:
    """The `/opt/ml` tree, rooted anywhere."""

    base_dir: Path

    @property
    def input_config_dir(self) -> Path:
        return self.base_dir / "input" / "config"

    @property
    def hyperparameters_file(self) -> Path:
        return self.input_config_dir / "hyperparameters.json"

    @property
    def input_data_config_file(self) -> Path:
        return self.input_config_dir / "inputdataconfig.json"

    @property
    def resource_config_file(self) -> Path:
        return self.input_config_dir / "resourceconfig.json"

    @property
    def checkpoint_config_file(self) -> Path:
        return self.input_config_dir / "checkpointconfig.json"

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "input" / "data"

    def channel_dir(self, channel: str) -> Path:
        return self.data_dir / channel

    @property
    def model_dir(self) -> Path:
        return self.base_dir / "model"

    @property
    def model_file(self) -> Path:
        return self.model_dir / MODEL_FILENAME

    @property
    def models_dir(self) -> Path:
        """Where SageMaker extracts each model of a multi-model endpoint (`models/<name>/model`)."""
        return self.base_dir / "models"

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.output_dir / "data"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @property
    def checkpoint_dir(self) -> Path:
        return self.base_dir / "checkpoints"

    @property
    def code_dir(self) -> Path:
        return self.base_dir / "code"


@dataclass(frozen=True)
class ServingSettings:
    """What `serve` reads from `SAGEMAKER_*` variables."""

    port: int
    workers: int
    timeout_s: int
    default_accept: str
    inference_output: tuple[str, ...]
    batch: bool
    max_payload_bytes: int
    """The largest request body: `SAGEMAKER_MAX_PAYLOAD_IN_MB` in batch mode, else the built-in
    algorithm's `MAX_CONTENT_LENGTH` (bytes), else SageMaker's 6 MB real-time limit."""
    max_rows: int
    max_columns: int
    program: str | None
    read_timeout_s: int = 30
    """Seconds a client has to send a whole request (`XGB_SERVER_READ_TIMEOUT_S`); then 408."""
    host: str = "0.0.0.0"
    """The address `serve` binds (`XGB_SERVER_HOST`; tests use 127.0.0.1)."""
    multi_model: bool = False
    """`SAGEMAKER_MULTI_MODEL=true`: serve SageMaker's multi-model contract (`/models`)."""
    model_memory_mb: int | None = None
    """`XGB_SERVER_MODEL_MEMORY_MB`: the memory loaded models may take, all workers together;
    None derives it from the container's memory limit (`model_memory.py`)."""

    @property
    def max_payload_mb(self) -> int:
        """The payload limit in whole MB (at least 1), as `/execution-parameters` reports it."""
        return max(1, self.max_payload_bytes // MB)


@dataclass(frozen=True)
class DistributedSettings:
    """How training hosts find and wait for each other (`XGB_*` variables, SageMaker defaults)."""

    tracker_port: int = 9099
    """The port XGBoost's tracker listens on, on the first host in sorted order."""
    resolve_timeout_s: int = 600
    """How long a host retries resolving its peers' names (SageMaker brings DNS up late)."""
    collective_timeout_s: int = 600
    """How long a host waits for its peers to join, or at any one collective step."""


@dataclass(frozen=True)
class Settings:
    """Everything the container needs from its environment, read once."""

    paths: Paths
    serving: ServingSettings
    cpu_count: int
    program: str | None
    distributed: DistributedSettings = DistributedSettings()
    submit_directory: str | None = None
    """`SAGEMAKER_SUBMIT_DIRECTORY`: where the user's code is (a folder, tarball or s3 URI)."""
    wheel_dir: Path | None = None
    """`XGB_WHEEL_DIR`: install a script's requirements.txt from this folder only, offline."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `environ` (the process environment by default)."""
        env = os.environ if environ is None else environ
        cpu_count = os.cpu_count() or 1
        batch = env.get("SAGEMAKER_BATCH", "").strip().lower() in _TRUE
        if batch and env.get("SAGEMAKER_MAX_PAYLOAD_IN_MB", "").strip():
            max_payload = _int(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", REALTIME_MAX_PAYLOAD_MB) * MB
        else:
            max_payload = _int(env, "MAX_CONTENT_LENGTH", REALTIME_MAX_PAYLOAD_MB * MB)
        output_keys = env.get("SAGEMAKER_INFERENCE_OUTPUT", "")
        program = env.get("SAGEMAKER_PROGRAM", "").strip() or None
        timeout_s = _int(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 60)
        serving = ServingSettings(
            port=_int(env, "SAGEMAKER_BIND_TO_PORT", 8080),
            workers=_int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", cpu_count),
            timeout_s=timeout_s,
            default_accept=env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "").strip()
            or "text/csv",
            inference_output=tuple(k.strip() for k in output_keys.split(",") if k.strip()),
            batch=batch,
            max_payload_bytes=max_payload,
            max_rows=_int(env, "XGB_SERVER_MAX_ROWS", 1_000_000),
            max_columns=_int(env, "XGB_SERVER_MAX_COLUMNS", DEFAULT_MAX_COLUMNS),
            program=program,
            host=env.get("XGB_SERVER_HOST", "").strip() or "0.0.0.0",
            # Below the worker timeout, so a slow client gets its 408 before gunicorn kills.
            read_timeout_s=_int(env, "XGB_SERVER_READ_TIMEOUT_S", max(1, timeout_s // 2)),
            multi_model=env.get("SAGEMAKER_MULTI_MODEL", "").strip().lower() in _TRUE,
            model_memory_mb=(
                _int(env, "XGB_SERVER_MODEL_MEMORY_MB", 1)
                if env.get("XGB_SERVER_MODEL_MEMORY_MB", "").strip()
                else None
            ),
        )
        distributed = DistributedSettings(
            tracker_port=_int(env, "XGB_TRACKER_PORT", DistributedSettings.tracker_port),
            resolve_timeout_s=_int(
                env, "XGB_HOST_RESOLVE_TIMEOUT_S", DistributedSettings.resolve_timeout_s
            ),
            collective_timeout_s=_int(
                env, "XGB_COLLECTIVE_TIMEOUT_S", DistributedSettings.collective_timeout_s
            ),
        )
        base = Path(env.get("SAGEMAKER_BASE_DIR", "").strip() or DEFAULT_BASE_DIR)
        return cls(
            paths=Paths(base),
            serving=serving,
            cpu_count=cpu_count,
            program=program,
            distributed=distributed,
            submit_directory=env.get("SAGEMAKER_SUBMIT_DIRECTORY", "").strip() or None,
            wheel_dir=Path(wheels) if (wheels := env.get("XGB_WHEEL_DIR", "").strip()) else None,
        )


def export_base_dir(settings: Settings) -> None:
    """Point `sagemaker-training` at our base dir; call before importing it (it reads at import)."""
    os.environ["SAGEMAKER_BASE_DIR"] = str(settings.paths.base_dir)
