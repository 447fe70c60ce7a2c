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
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
from pipeline_steps.join_predictions import join_lines
from sdk_setup import (
    DEFAULT_LOCAL_IMAGE,
    LOCAL_ROLE,
    METRIC_DEFINITIONS,
    TELEMETRY_OFF,
    aws_session,
    configure_local_mode,
    digits_estimator,
    quiet_sdk_logging,
    remove_local_containers,
)


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


def local_target(image_uri: str, work_dir: Path) -> Target:
    """Local mode: the SDK runs our image with docker compose; data and outputs stay on disk."""
    session = LocalSession(sagemaker_config=TELEMETRY_OFF)
    configure_local_mode(session, work_dir / "containers")
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
    session = aws_session(Session, args.region)
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
    estimator = digits_estimator(
        target.session, target.image_uri, target.role, target.instance_type, target.output_uri
    )
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
    joined = join_lines(data.batch_file.read_text(), output_text)
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
    quiet_sdk_logging()
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
