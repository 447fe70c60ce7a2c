"""The analyst's SDK workflow against the built image, in SageMaker local mode, with the real SDKs.

v2 (`sagemaker[local]<3`): examples/sdk_workflow.py end to end (fit, deploy, predict with CSV,
JSON and NPY, batch transform) and a failing job. v3 (`sagemaker` 3.x): ModelTrainer's local
container training, which runs the image with no argument.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pytest

from .helpers import DRIVERS, EXAMPLES, DigitsSplit, SdkRun, SdkVenvs

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]


def _tar_member(archive: Path, name: str) -> str:
    with tarfile.open(archive) as tar:
        member = tar.extractfile(name)
        assert member is not None, f"{name} is not a file in {archive}"
        return member.read().decode()


def test_example_trains_serves_and_transforms(sdk_run: SdkRun, sdk_pythons: SdkVenvs, image: str):
    work = sdk_run.root / "work"
    report_file = sdk_run.root / "report.json"
    result = sdk_run.run(
        sdk_pythons.sdk2,
        str(EXAMPLES / "sdk_workflow.py"),
        "--image-uri",
        image,
        "--work-dir",
        str(work),
        "--report",
        str(report_file),
    )
    assert result.returncode == 0, result.stdout[-6000:]
    report = json.loads(report_file.read_text())

    assert report["accuracy"] >= 0.9, report
    assert f"Held-out accuracy: {report['accuracy']:.4f}" in result.stdout
    assert report["serializers_agree"] is True
    predictions = report["predictions"]
    assert predictions["csv"] == predictions["json"] == predictions["npy"]
    assert len(predictions["csv"]) == report["test_rows"]

    # The metric definitions read the per-round lines of the real job log.
    assert set(report["metrics"]) == {"train:mlogloss", "validation:mlogloss"}, report
    assert 0 < report["metrics"]["validation:mlogloss"] < 1.0

    # One output line per input line, in order: the batch rows agree with the endpoint's.
    assert report["batch_output_lines"] == report["batch_input_lines"] == report["test_rows"]
    assert report["batch_output_ends_with_newline"] is True
    assert report["batch_predictions"] == predictions["csv"]
    joined = (work / "batch-joined.csv").read_text().splitlines()
    inputs = (work / "data/batch/digits-test.csv").read_text().splitlines()
    assert [line.rsplit(",", 1)[0] for line in joined] == inputs

    # Local mode wrote the artifacts where output_path pointed.
    model_tar = Path(report["model_data"].removeprefix("file://"))
    with tarfile.open(model_tar) as tar:
        assert "xgboost-model" in tar.getnames()


def test_failing_job_shows_our_failure_sentence(
    sdk_run: SdkRun, sdk_pythons: SdkVenvs, image: str, digits: DigitsSplit
):
    output = sdk_run.root / "output"
    result = sdk_run.run(
        sdk_pythons.sdk2,
        str(DRIVERS / "v2_failing_job.py"),
        image,
        str(digits.train_dir),
        str(output),
    )
    assert result.returncode == 0, result.stdout[-6000:]
    assert "TELEMETRY OPT-OUT: True" in result.stdout
    # In local mode the SDK's exception only says the container exited...
    raised = re.search(r"^SDK RAISED: (.*)$", result.stdout, re.MULTILINE)
    assert raised is not None, result.stdout[-6000:]
    assert "exited with code" in raised.group(1)

    # ...so our sentence must be in output.tar.gz's `failure` file and in the job log.
    failure = _tar_member(output / "output.tar.gz", "failure")
    sentence = failure.splitlines()[0].strip()
    assert "max_dept" in sentence, failure
    assert "max_depth" in sentence, f"no suggestion of the closest name: {failure}"
    log = result.stdout[: raised.start()]
    assert sentence in log.replace("\r\n", "\n"), log[-6000:]


def test_v3_model_trainer_runs_the_image_with_no_argument(
    sdk_run: SdkRun, sdk_pythons: SdkVenvs, image: str, digits: DigitsSplit
):
    root = sdk_run.root / "v3"
    root.mkdir()
    result = sdk_run.run(
        sdk_pythons.sdk3,
        str(DRIVERS / "v3_model_trainer.py"),
        image,
        str(digits.train_dir),
        str(digits.validation_dir),
        str(root),
    )
    assert result.returncode == 0, result.stdout[-6000:]

    services = re.search(r"^COMPOSE SERVICES: (.*)$", result.stdout, re.MULTILINE)
    assert services is not None, result.stdout[-6000:]
    (service,) = json.loads(services.group(1)).values()
    assert service["image"] == image
    assert "command" not in service and "entrypoint" not in service, service

    model_tar = root / "compressed_artifacts" / "model.tar.gz"
    with tarfile.open(model_tar) as tar:
        assert "xgboost-model" in tar.getnames()
    assert re.search(r"validation-mlogloss:[0-9.]+", result.stdout), result.stdout[-6000:]
    # v3 announces telemetry unless the SDK defaults config opted out.
    assert "will collect telemetry" not in result.stdout
