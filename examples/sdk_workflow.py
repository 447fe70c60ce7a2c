#!/usr/bin/env python3
"""An analyst's notebook flow against our XGBoost image, from the SageMaker Python SDK (v2).

Estimator -> fit -> deploy -> predict (CSV, then JSON and NPY for the same rows), then a batch
transform of a CSV file joined back to its rows. Runs in SageMaker local mode by default (Docker
on this machine, `file://` data, no AWS account); `--aws` runs the same calls on SageMaker.

    scripts/sdk-venvs.sh sdk2
    .venv-sdk2/bin/python examples/sdk_workflow.py --image-uri sagemaker-xgboost-byoc:latest
    .venv-sdk2/bin/python examples/sdk_workflow.py --aws --role ROLE_ARN --bucket BUCKET \\
        --image-uri ACCOUNT.dkr.ecr.REGION.amazonaws.com/sagemaker-xgboost-byoc:TAG
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import numpy as np
from sagemaker.deserializers import CSVDeserializer
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.local import LocalSession
from sagemaker.predictor import Predictor
from sagemaker.s3 import S3Downloader
from sagemaker.serializers import CSVSerializer, JSONSerializer, NumpySerializer
from sagemaker.session import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits_data import DigitsSplit, write_digits_csv
from example_hyperparameters import HYPERPARAMETERS

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


@dataclass(frozen=True)
class Target:
    """Where the jobs run: local mode (Docker here, file:// URIs) or SageMaker (ml.*, S3)."""

    session: Session
    image_uri: str
    role: str
    instance_type: str
    data_uri_prefix: str
    output_uri: str
    local: bool


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_target(image_uri: str, work_dir: Path) -> Target:
    """Local mode: the SDK runs our image with docker compose; data and outputs stay on disk."""
    session = LocalSession(sagemaker_config=TELEMETRY_OFF)
    containers = work_dir / "containers"
    containers.mkdir(parents=True, exist_ok=True)
    session.config = {
        "local": {
            "local_code": True,
            "container_root": str(containers),
            "serving_port": _free_port(),
        }
    }
    return Target(
        session=session,
        image_uri=image_uri,
        role=LOCAL_ROLE,
        instance_type="local",
        data_uri_prefix=f"file://{work_dir}",
        output_uri=f"file://{work_dir / 'output'}",
        local=True,
    )


def aws_target(args: argparse.Namespace) -> Target:
    """SageMaker: the same calls, with ml.* instances and S3 under s3://BUCKET/PREFIX."""
    boto_session = boto3.Session(region_name=args.region) if args.region else boto3.Session()
    session = Session(boto_session=boto_session, sagemaker_config=TELEMETRY_OFF)
    base = f"s3://{args.bucket}/{args.prefix}"
    return Target(
        session=session,
        image_uri=args.image_uri,
        role=args.role,
        instance_type=args.instance_type,
        data_uri_prefix=base,
        output_uri=f"{base}/output",
        local=False,
    )


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


def upload(target: Target, folder: Path, work_dir: Path) -> str:
    """The URI a channel reads `folder` from (uploaded to S3 on AWS)."""
    relative = folder.relative_to(work_dir).as_posix()
    if target.local:
        return f"file://{folder}"
    bucket, _, prefix = target.data_uri_prefix.removeprefix("s3://").partition("/")
    return target.session.upload_data(str(folder), bucket=bucket, key_prefix=f"{prefix}/{relative}")


class _Tee(io.TextIOBase):
    """Writes through to a stream and keeps a copy, to read metrics from the job log."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self._stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self._stream.write(text)
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


@contextlib.contextmanager
def captured_stdout() -> Iterator[_Tee]:
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        yield tee


def read_metrics(log: str) -> dict[str, float]:
    """The last value each metric definition matches in the job log (what SageMaker charts).

    Local mode prints the log's tabs as they are; CloudWatch, whose text the regexes are written
    for, shows each as `#011`.
    """
    cloudwatch_text = log.replace("\t", "#011")
    metrics = {}
    for definition in METRIC_DEFINITIONS:
        values = re.findall(definition["Regex"], cloudwatch_text)
        if values:
            metrics[definition["Name"]] = float(values[-1])
    return metrics


def train(target: Target, train_uri: str, validation_uri: str) -> tuple[Estimator, str]:
    """Fit the example hyperparameters; returns the estimator and the job log it printed."""
    estimator = Estimator(
        image_uri=target.image_uri,
        role=target.role,
        instance_count=1,
        instance_type=target.instance_type,
        output_path=target.output_uri,
        sagemaker_session=target.session,
        metric_definitions=METRIC_DEFINITIONS,
        base_job_name="xgboost-byoc-digits",
    )
    estimator.set_hyperparameters(**HYPERPARAMETERS)
    with captured_stdout() as log:
        estimator.fit(
            {
                "train": TrainingInput(train_uri, content_type="text/csv"),
                "validation": TrainingInput(validation_uri, content_type="text/csv"),
            }
        )
    return estimator, "".join(log.parts)


def as_labels(rows: list[list[str]]) -> np.ndarray:
    """CSVDeserializer rows (one prediction per line) to integer class labels."""
    return np.array([int(float(row[0])) for row in rows])


def predict_three_ways(predictor: Predictor, features: np.ndarray) -> dict[str, np.ndarray]:
    """The same rows sent as CSV, JSON and NPY; the answers are read back as CSV."""
    answers = {}
    for name, serializer in (
        ("csv", CSVSerializer()),
        ("json", JSONSerializer()),
        ("npy", NumpySerializer()),
    ):
        predictor.serializer = serializer
        answers[name] = as_labels(predictor.predict(features))
    predictor.serializer = CSVSerializer()
    return answers


def batch_transform(estimator: Estimator, target: Target, batch_uri: str) -> str:
    """Transform the CSV file line by line, several lines per request; returns its output text."""
    # Not under the training output_path: local mode serves the model from that folder.
    output_uri = f"{target.data_uri_prefix}/batch-output"
    transformer = estimator.transformer(
        instance_count=1,
        instance_type=target.instance_type,
        strategy="MultiRecord",
        # In batch mode the image ends every output line with "\n" already, so the responses are
        # concatenated as they are. "Line" adds another "\n" after each response (local mode
        # does so after every mini-batch), which shows up as blank lines.
        assemble_with=None,
        accept="text/csv",
        output_path=output_uri,
    )
    transformer.transform(
        batch_uri,
        content_type="text/csv",
        split_type="Line",
        wait=True,
        # logs=True asks CloudWatch for the job's logs, which fails without AWS credentials.
        logs=not target.local,
    )
    out_name = "digits-test.csv.out"
    if target.local:
        return (Path(output_uri.removeprefix("file://")) / out_name).read_text()
    return S3Downloader.read_file(f"{output_uri}/{out_name}", sagemaker_session=target.session)


def join_to_inputs(input_text: str, output_text: str) -> list[str]:
    """Each input line with its prediction appended, as SageMaker's join_source="Input" does."""
    inputs = input_text.splitlines()
    outputs = output_text.splitlines()
    if len(inputs) != len(outputs):
        raise RuntimeError(
            f"The batch transform returned {len(outputs)} lines for {len(inputs)} input lines; "
            "each input line must give exactly one output line."
        )
    return [f"{row},{prediction}" for row, prediction in zip(inputs, outputs, strict=True)]


def run(target: Target, work_dir: Path) -> dict:
    """The whole flow; returns what it measured."""
    data: DigitsSplit = write_digits_csv(work_dir / "data")
    train_uri = upload(target, data.train_dir, work_dir)
    validation_uri = upload(target, data.validation_dir, work_dir)
    batch_uri = upload(target, data.batch_dir, work_dir)

    seconds = {}
    started = time.monotonic()
    estimator, log = train(target, train_uri, validation_uri)
    seconds["fit"] = round(time.monotonic() - started, 1)
    metrics = read_metrics(log)
    print(f"Trained {estimator.latest_training_job.name}: model {estimator.model_data}")
    print(f"Metrics from the job log: {metrics}")

    started = time.monotonic()
    predictor = estimator.deploy(
        initial_instance_count=1,
        instance_type=target.instance_type,
        serializer=CSVSerializer(),
        deserializer=CSVDeserializer(),
        # Local mode returns only once /ping answers; waiting would add a fixed 30 s sleep.
        wait=not target.local,
    )
    try:
        answers = predict_three_ways(predictor, data.test_features)
    finally:
        predictor.delete_model()  # first: it finds the model through the endpoint's config
        predictor.delete_endpoint()
    seconds["deploy_predict_delete"] = round(time.monotonic() - started, 1)
    predictions = answers["csv"]
    accuracy = float(np.mean(predictions == data.test_labels))
    same = all(np.array_equal(predictions, other) for other in answers.values())
    print(f"Endpoint: CSV, JSON and NPY requests give the same predictions: {same}")
    print(f"Held-out accuracy: {accuracy:.4f} on {len(predictions)} rows")

    started = time.monotonic()
    output_text = batch_transform(estimator, target, batch_uri)
    seconds["transform"] = round(time.monotonic() - started, 1)
    joined = join_to_inputs(data.batch_file.read_text(), output_text)
    joined_file = work_dir / "batch-joined.csv"
    joined_file.write_text("\n".join(joined) + "\n")
    batch_predictions = np.array([int(float(line.rsplit(",", 1)[1])) for line in joined])
    agree = np.array_equal(batch_predictions, predictions)
    print(f"Batch transform: {len(joined)} lines in, {len(joined)} lines out -> {joined_file}")
    print(f"Batch transform agrees with the endpoint: {agree}")

    return {
        "training_job": estimator.latest_training_job.name,
        "model_data": estimator.model_data,
        "metrics": metrics,
        "accuracy": accuracy,
        "test_rows": len(predictions),
        "predictions": {name: labels.tolist() for name, labels in answers.items()},
        "serializers_agree": same,
        "batch_input_lines": len(data.batch_file.read_text().splitlines()),
        "batch_output_lines": len(output_text.splitlines()),
        "batch_output_ends_with_newline": output_text.endswith("\n"),
        "batch_predictions": batch_predictions.tolist(),
        "seconds": seconds,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-uri", help=f"image to run (local default {DEFAULT_LOCAL_IMAGE})")
    parser.add_argument("--work-dir", type=Path, help="where data and outputs go (default: temp)")
    parser.add_argument("--report", type=Path, help="write what was measured to this JSON file")
    aws = parser.add_argument_group("on AWS instead of local mode")
    aws.add_argument("--aws", action="store_true", help="run on SageMaker, not local mode")
    aws.add_argument("--role", help="SageMaker execution role ARN")
    aws.add_argument("--bucket", help="S3 bucket for data and outputs")
    aws.add_argument("--prefix", default="xgboost-byoc-digits", help="S3 key prefix")
    aws.add_argument("--region", help="AWS region (default: your AWS configuration)")
    aws.add_argument("--instance-type", default="ml.m5.large", help="training/hosting instance")
    args = parser.parse_args(argv)
    if args.aws:
        needed = {"--role": args.role, "--bucket": args.bucket, "--image-uri": args.image_uri}
        missing = [flag for flag, value in needed.items() if not value]
        if missing:
            parser.error(
                f"--aws needs {', '.join(missing)} (the image URI build_and_push.sh printed)"
            )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SDK v2 logs "will collect telemetry" on every call, even with TelemetryOptOut set.
    logging.getLogger("sagemaker.telemetry.telemetry_logging").setLevel(logging.WARNING)
    with contextlib.ExitStack() as stack:
        if args.work_dir:
            work_dir = args.work_dir.resolve()
        else:
            # Containers write root-owned files here, which a non-root user may not delete.
            temporary = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
            work_dir = Path(stack.enter_context(temporary)).resolve()
        work_dir.mkdir(parents=True, exist_ok=True)
        target = (
            aws_target(args)
            if args.aws
            else local_target(args.image_uri or DEFAULT_LOCAL_IMAGE, work_dir)
        )
        try:
            report = run(target, work_dir)
        finally:
            if target.local:
                remove_local_containers(work_dir / "containers")
        if args.report:
            args.report.write_text(json.dumps(report, indent=2))
        if not args.work_dir:
            print("(outputs were in a temporary folder; pass --work-dir DIR to keep them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
