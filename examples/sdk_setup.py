"""What the v2 SDK examples share: the digits estimator, its metrics, and local mode's set-up.

`sdk_workflow.py` (fit, deploy, transform) and `pipeline.py` (the same jobs as SageMaker
Pipelines) build the estimator and configure local mode here, so both run the same job the same
way.
"""

from __future__ import annotations

import logging
import socket
import subprocess
from pathlib import Path
from typing import TypeVar

import boto3
from example_hyperparameters import HYPERPARAMETERS
from sagemaker.estimator import Estimator
from sagemaker.session import Session

DEFAULT_LOCAL_IMAGE = "sagemaker-xgboost-byoc:latest"
LOCAL_ROLE = "arn:aws:iam::111111111111:role/local-mode-needs-no-role"

# The training log prints one line per round, `[9]<TAB>train-mlogloss:0.45<TAB>validation-...`,
# which CloudWatch shows with `#011` for the tab; the regexes are docs/training.md's (Metrics).
# XGBoost's default metric for multi:softmax is mlogloss; eval_metric=merror adds merror lines.
METRIC_DEFINITIONS = [
    {"Name": f"{channel}:{metric}", "Regex": rf".*\[[0-9]+\].*#011{channel}-{metric}:([-+0-9.eE]+)"}
    for metric in ("mlogloss", "merror")
    for channel in ("train", "validation")
]

# SDK defaults config that switches the SDK's telemetry calls off (they fail noisily offline).
TELEMETRY_OFF = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


def quiet_sdk_logging() -> None:
    """SDK v2 logs "will collect telemetry" on every call, even with TelemetryOptOut set."""
    logging.getLogger("sagemaker.telemetry.telemetry_logging").setLevel(logging.WARNING)


SessionType = TypeVar("SessionType", bound=Session)


def aws_session(session_class: type[SessionType], region: str | None) -> SessionType:
    """A `session_class` (Session, PipelineSession) on AWS in `region` (else boto3's default),
    telemetry off."""
    boto_session = boto3.Session(region_name=region) if region else boto3.Session()
    return session_class(boto_session=boto_session, sagemaker_config=TELEMETRY_OFF)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def configure_local_mode(session: Session, container_root: Path) -> None:
    """Local-mode settings on the session itself (never ~/.sagemaker), telemetry off.

    Containers get their folders under `container_root`, and a local endpoint or batch transform
    publishes on a free port instead of 8080.
    """
    container_root.mkdir(parents=True, exist_ok=True)
    session.sagemaker_config = TELEMETRY_OFF
    session.config = {
        "local": {
            "local_code": True,
            "container_root": str(container_root),
            "serving_port": free_port(),
        }
    }


def remove_local_containers(container_root: Path) -> None:
    """Remove the containers local mode leaves behind, and its network once nothing uses it."""
    listing = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--format",
            '{{.ID}} {{.Label "com.docker.compose.project.working_dir"}}',
        ],
        capture_output=True,
        text=True,
    )
    ours = [
        fields[0]
        for fields in (line.split(" ", 1) for line in listing.stdout.splitlines())
        if len(fields) == 2 and Path(fields[1]).is_relative_to(container_root)
    ]
    if ours:
        subprocess.run(["docker", "rm", "-f", *ours], capture_output=True)
    subprocess.run(["docker", "network", "rm", "sagemaker-local"], capture_output=True)


def digits_estimator(
    session: Session, image_uri: str, role: str, instance_type: object, output_path: object
) -> Estimator:
    """Our image with the example hyperparameters and metric definitions.

    `instance_type` and `output_path` may be pipeline variables (parameters, `Join`).
    """
    estimator = Estimator(
        image_uri=image_uri,
        role=role,
        instance_count=1,
        instance_type=instance_type,
        output_path=output_path,
        sagemaker_session=session,
        metric_definitions=METRIC_DEFINITIONS,
        base_job_name="xgboost-byoc-digits",
    )
    estimator.set_hyperparameters(**HYPERPARAMETERS)
    return estimator
