"""The two scripts the pipelines' processing steps run in our image, run here on real files:
evaluate.py on a real XGBoost model and the digits rows, join_predictions.py on transform-like
outputs. The same scripts run in the container in tests/sdk/test_sdk_pipelines.py."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from .helpers import EXAMPLES, DigitsSplit

STEPS = EXAMPLES / "pipeline_steps"


def _run(script: str, *args: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(STEPS / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _features(rows: list[list[float]]) -> str:
    return "".join(",".join(f"{value:g}" for value in row) + "\n" for row in rows)


def test_join_appends_each_prediction_to_its_input_row(tmp_path: Path):
    features, predictions, joined = tmp_path / "in", tmp_path / "out", tmp_path / "joined"
    (features / "day").mkdir(parents=True)
    (predictions / "day").mkdir(parents=True)
    (features / "day/a.csv").write_text(_features([[1, 2.5], [3, 4], [0, 0]]))
    (predictions / "day/a.csv.out").write_text("7\n1\n0\n")

    result = _run("join_predictions.py", features, predictions, joined)

    assert result.returncode == 0, result.stderr
    assert (joined / "day/a.csv").read_text() == "1,2.5,7\n3,4,1\n0,0,0\n"
    assert "Joined day/a.csv: 3 rows" in result.stdout


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (
            {"a.csv.out": "7\n"},
            "a.csv: The batch transform returned 1 lines for 2 input lines; each input line must "
            "give exactly one output line.",
        ),
        ({}, "No transform output"),
    ],
    ids=["line-count-differs", "output-file-missing"],
)
def test_join_fails_with_a_sentence(tmp_path: Path, outputs: dict[str, str], message: str):
    features, predictions, joined = tmp_path / "in", tmp_path / "out", tmp_path / "joined"
    features.mkdir()
    predictions.mkdir()
    (features / "a.csv").write_text(_features([[1, 2], [3, 4]]))
    for name, text in outputs.items():
        (predictions / name).write_text(text)

    result = _run("join_predictions.py", features, predictions, joined)

    assert result.returncode == 1
    assert result.stderr.startswith("Join failed: ")
    assert message in result.stderr
    assert not joined.exists()


def test_evaluate_writes_the_accuracy_of_the_model(tmp_path: Path, digits: DigitsSplit):
    train = np.loadtxt(next(digits.train_dir.iterdir()), delimiter=",")
    params = {"objective": "multi:softmax", "num_class": 10, "max_depth": 3}
    booster = xgb.train(params, xgb.DMatrix(train[:, 1:], label=train[:, 0]), 5)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    booster.save_model(tmp_path / "xgboost-model.json")
    with tarfile.open(model_dir / "model.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "xgboost-model.json", arcname="xgboost-model")

    result = _run("evaluate.py", model_dir, digits.test_dir, tmp_path / "evaluation")

    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "evaluation/evaluation.json").read_text())
    predictions = booster.predict(xgb.DMatrix(digits.test_features)).astype(int)
    expected = round(float(np.mean(predictions == digits.test_labels)), 4)
    assert report == {"metrics": {"accuracy": {"value": expected}}, "rows": 180}
    assert f"Accuracy {expected:.4f} on 180 rows" in result.stdout
