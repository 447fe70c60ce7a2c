"""examples/pipeline.py: the training and scoring pipelines under the v2 SDK's LocalPipelineSession
against the built image, and their AWS definitions generated offline.

The local runs check what an execution did from its report and its files: every step's status,
evaluation.json's accuracy, the transform output against the same model's predictions made here
without any endpoint, and the joined rows against the input rows.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from .helpers import EXAMPLES, DigitsSplit, SdkRun, SdkVenvs

PIPELINE = str(EXAMPLES / "pipeline.py")
SCORING_STEPS = ["model-CreateModel", "transform", "join"]
IMAGE_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost-byoc:1.0"


def _run_local(
    sdk: SdkRun, python: Path, image: str, work: Path, name: str, *args: str
) -> tuple[int, str, dict]:
    """Run the example locally on `image` in `work`; its exit status, output and report."""
    report = sdk.root / f"{name}.json"
    argv = ["--report", str(report), "--local", "--image-uri", image, "--work-dir", str(work)]
    result = sdk.run(python, PIPELINE, *argv, *args, timeout=1200)
    assert report.is_file(), result.stdout[-6000:]
    return result.returncode, result.stdout, json.loads(report.read_text())


def _predict_without_endpoint(model_tar: Path, features_file: Path) -> list[int]:
    """The model's predictions for the rows, made here with XGBoost itself."""
    with tarfile.open(model_tar) as tar:
        member = tar.extractfile("xgboost-model")
        assert member is not None
        booster = xgb.Booster()
        booster.load_model(bytearray(member.read()))
    features = np.loadtxt(features_file, delimiter=",", ndmin=2)
    return booster.predict(xgb.DMatrix(features)).astype(int).tolist()


def _local(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


def _assert_scored(report: dict, features_file: Path, model_tar: Path) -> None:
    """One prediction line per input line, in order, equal to the model's own predictions; the
    joined file is each input row followed by its prediction."""
    inputs = features_file.read_text().splitlines()
    predictions_file = _local(report["predictions_uri"]) / f"{features_file.name}.out"
    predictions = predictions_file.read_text().splitlines()
    assert len(predictions) == len(inputs)
    expected = _predict_without_endpoint(model_tar, features_file)
    assert [int(float(line)) for line in predictions] == expected
    joined = (_local(report["joined_uri"]) / features_file.name).read_text().splitlines()
    assert joined == [f"{row},{label}" for row, label in zip(inputs, predictions, strict=True)]


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_training_pipeline_trains_gates_and_scores(
    sdk_run: SdkRun, sdk_pythons: SdkVenvs, image: str
):
    work = sdk_run.root / "work"
    status, output, report = _run_local(sdk_run, sdk_pythons.sdk2, image, work, "training")
    assert status == 0, output[-6000:]
    assert report["status"] == "Succeeded", report
    steps = report["steps"]
    assert list(steps) == ["train", "evaluate", "check-accuracy", *SCORING_STEPS], steps
    assert all(step["status"] == "Succeeded" for step in steps.values()), steps

    # evaluation.json, read by the condition as a PropertyFile.
    assert report["evaluation"]["rows"] == 180
    assert report["accuracy"] >= 0.9, report
    assert f"Held-out accuracy: {report['accuracy']:.4f}" in output

    model_tar = _local(report["model_data"])
    assert model_tar.name == "model.tar.gz"
    _assert_scored(report, work / "data/batch/digits-test.csv", model_tar)
    assert f"Joined rows (features, then prediction): {report['joined_uri']}" in output
    print(f"local training pipeline: {report['seconds']} s")


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_training_pipeline_below_threshold_ends_in_the_fail_step(
    sdk_run: SdkRun, sdk_pythons: SdkVenvs, image: str
):
    work = sdk_run.root / "work"
    status, output, report = _run_local(
        sdk_run, sdk_pythons.sdk2, image, work, "failing", "--min-accuracy", "1.01"
    )
    assert status != 0, output[-6000:]
    assert report["status"] == "Failed"
    steps = report["steps"]
    assert list(steps) == ["train", "evaluate", "check-accuracy", "accuracy-too-low"], steps
    sentence = (
        f"Held-out accuracy {report['accuracy']} is below the required 1.01: "
        "no model was created and nothing was scored."
    )
    assert steps["accuracy-too-low"] == {"status": "Failed", "failure": sentence}
    assert sentence in report["failure_reason"]
    assert sentence in output
    # No model was created and nothing was transformed or joined.
    assert not set(SCORING_STEPS) & set(steps)
    assert "predictions_uri" not in report and "joined_uri" not in report
    execution = work / "pipelines/training" / report["execution_id"]
    assert sorted(path.name for path in execution.iterdir()) == ["model"]


def _digits_model(digits: DigitsSplit, folder: Path) -> Path:
    """A model.tar.gz trained here with the example's hyperparameters, as `train` writes it."""
    from example_hyperparameters import HYPERPARAMETERS

    rows = np.loadtxt(next(digits.train_dir.iterdir()), delimiter=",")
    params = {k: v for k, v in HYPERPARAMETERS.items() if k not in ("num_round", "silent")}
    booster = xgb.train(
        params, xgb.DMatrix(rows[:, 1:], label=rows[:, 0]), HYPERPARAMETERS["num_round"]
    )
    folder.mkdir(parents=True)
    booster.save_model(folder / "xgboost-model.json")
    model_tar = folder / "model.tar.gz"
    with tarfile.open(model_tar, "w:gz") as tar:
        tar.add(folder / "xgboost-model.json", arcname="xgboost-model")
    return model_tar


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_scoring_pipeline_writes_each_run_under_its_own_prefix(
    sdk_run: SdkRun, sdk_pythons: SdkVenvs, image: str, digits: DigitsSplit
):
    model_tar = _digits_model(digits, sdk_run.root / "model")
    work = sdk_run.root / "work"
    reports = {}
    for run_id in ("2026-12-01", "2026-12-02"):
        status, output, report = _run_local(
            sdk_run,
            sdk_pythons.sdk2,
            image,
            work,
            run_id,
            "--pipeline",
            "scoring",
            "--run-id",
            run_id,
            "--model-data",
            f"file://{model_tar}",
            "--input-uri",
            f"file://{digits.batch_dir}",
        )
        assert status == 0, output[-6000:]
        assert list(report["steps"]) == SCORING_STEPS
        assert all(step["status"] == "Succeeded" for step in report["steps"].values())
        prefix = work / "pipelines/scoring" / run_id / report["execution_id"]
        assert _local(report["predictions_uri"]) == prefix / "predictions"
        assert _local(report["joined_uri"]) == prefix / "joined"
        _assert_scored(report, digits.batch_file, model_tar)
        reports[run_id] = report
    assert sorted(path.name for path in (work / "pipelines/scoring").iterdir()) == sorted(reports)


def _steps_by_name(steps: list[dict]) -> dict[str, dict]:
    """Every step of a definition, the condition's branches included."""
    found = {}
    for step in steps:
        found[step["Name"]] = step
        if step["Type"] == "Condition":
            found.update(_steps_by_name(step["Arguments"]["IfSteps"]))
            found.update(_steps_by_name(step["Arguments"]["ElseSteps"]))
    return found


def _references(value: object) -> set[str]:
    """The steps a definition fragment reads from (`Get: Steps.NAME...`, JsonGet's step)."""
    found = set()
    if isinstance(value, dict):
        get = value.get("Get")
        if isinstance(get, str) and get.startswith("Steps."):
            found.add(get.split(".")[1])
        if "Std:JsonGet" in value:
            found.add(value["Std:JsonGet"]["PropertyFile"]["Get"].split(".")[1])
        for item in value.values():
            found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def _images(step: dict) -> list[str]:
    arguments = step["Arguments"]
    if step["Type"] == "Training":
        return [arguments["AlgorithmSpecification"]["TrainingImage"]]
    if step["Type"] == "Processing":
        return [arguments["AppSpecification"]["ImageUri"]]
    if step["Type"] == "Model":
        return [arguments["PrimaryContainer"]["Image"]]
    return []


@pytest.mark.slow
def test_aws_definitions_are_built_offline(sdk_env: SdkRun, sdk_pythons: SdkVenvs):
    """`--aws --definitions-dir` builds both pipelines with a PipelineSession and no credentials;
    every AWS endpoint points at a closed loopback port, so any AWS call would fail the run."""
    out = sdk_env.root / "definitions"
    role = "arn:aws:iam::123456789012:role/pipelines"
    scheduler_role = "arn:aws:iam::123456789012:role/scheduler"
    result = sdk_env.run(
        sdk_pythons.sdk2,
        PIPELINE,
        "--aws",
        "--role",
        role,
        "--bucket",
        "example-bucket",
        "--image-uri",
        IMAGE_URI,
        "--model-data",
        "s3://example-bucket/models/model.tar.gz",
        "--schedule",
        "cron(0 3 * * ? *)",
        "--scheduler-role",
        scheduler_role,
        "--definitions-dir",
        str(out),
    )
    assert result.returncode == 0, result.stdout[-6000:]

    training = json.loads((out / "xgboost-byoc-digits-training.json").read_text())
    steps = _steps_by_name(training["Steps"])
    assert [step["Name"] for step in training["Steps"]] == ["train", "evaluate", "check-accuracy"]
    # What each step reads from other steps (a condition: its conditions, not its branches).
    reads = {
        name: _references(step["Arguments"].get("Conditions", step["Arguments"]))
        for name, step in steps.items()
    }
    assert reads == {
        "train": set(),
        "evaluate": {"train"},
        "check-accuracy": {"evaluate"},
        "model-CreateModel": {"train"},
        "transform": {"model-CreateModel"},
        "join": {"transform"},
        "accuracy-too-low": {"evaluate"},
    }
    condition = steps["check-accuracy"]["Arguments"]
    assert [s["Name"] for s in condition["IfSteps"]] == SCORING_STEPS
    assert [s["Name"] for s in condition["ElseSteps"]] == ["accuracy-too-low"]
    (gate,) = condition["Conditions"]
    assert gate["Type"] == "GreaterThanOrEqualTo"
    assert gate["LeftValue"]["Std:JsonGet"]["Path"] == "metrics.accuracy.value"
    assert gate["RightValue"] == {"Get": "Parameters.MinAccuracy"}
    assert steps["evaluate"]["PropertyFiles"] == [
        {
            "PropertyFileName": "evaluation",
            "OutputName": "evaluation",
            "FilePath": "evaluation.json",
        }
    ]
    transform = steps["transform"]["Arguments"]
    assert transform["BatchStrategy"] == "MultiRecord"
    assert transform["TransformInput"]["SplitType"] == "Line"
    train = steps["train"]["Arguments"]
    assert train["HyperParameters"]["num_round"] == "10"
    assert {m["Name"] for m in train["AlgorithmSpecification"]["MetricDefinitions"]} >= {
        "validation:mlogloss"
    }

    scoring = json.loads((out / "xgboost-byoc-digits-scoring.json").read_text())
    assert [step["Name"] for step in scoring["Steps"]] == SCORING_STEPS
    defaults = {p["Name"]: p.get("DefaultValue") for p in scoring["Parameters"]}
    assert defaults["ModelDataUri"] == "s3://example-bucket/models/model.tar.gz"
    assert defaults["RunId"] == "scheduled"
    output = json.dumps(_steps_by_name(scoring["Steps"])["transform"]["Arguments"])
    assert '"Parameters.RunId"' in output and '"Execution.PipelineExecutionId"' in output

    for definition in (training, scoring):
        for step in _steps_by_name(definition["Steps"]).values():
            if step["Type"] in ("Training", "Processing", "Model"):
                assert _images(step) == [IMAGE_URI], step["Name"]
            if step["Type"] == "Processing":
                entrypoint = step["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
                assert entrypoint[0] == "python3", step["Name"]

    schedule = json.loads((out / "schedule.json").read_text())
    assert schedule == {
        "Name": "xgboost-byoc-digits-scoring-schedule",
        "ScheduleExpression": "cron(0 3 * * ? *)",
        "State": "ENABLED",
        "Pipeline": "xgboost-byoc-digits-scoring",
        "RoleArn": scheduler_role,
    }


AWS_ARGS = ["--aws", "--role", "r", "--bucket", "b", "--image-uri", "i"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--local", "--pipeline", "scoring"], "--pipeline scoring needs --model-data"),
        (
            [*AWS_ARGS, "--schedule", "daily"],
            "--schedule needs --model-data",
        ),
        (
            [*AWS_ARGS, "--model-data", "s3://m", "--schedule", "daily"],
            "Schedule 'daily' is not an EventBridge Scheduler expression",
        ),
        (["--aws", "--bucket", "b"], "--aws needs --role, --image-uri"),
    ],
    ids=["scoring-without-model", "schedule-without-model", "bad-schedule", "aws-without-role"],
)
def test_command_line_mistakes_get_a_sentence(
    sdk_env: SdkRun, sdk_pythons: SdkVenvs, args: list[str], message: str
):
    result = sdk_env.run(sdk_pythons.sdk2, PIPELINE, *args)
    assert result.returncode == 2
    assert message in result.stdout
