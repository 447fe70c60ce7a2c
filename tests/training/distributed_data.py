"""Data, `/opt/ml` trees and scoring shared by the distributed tests: hosts as processes here,
as containers in `tests/container/test_container_distributed.py`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost as xgb
from sklearn.datasets import make_classification
from sklearn.metrics import accuracy_score, log_loss

TRAIN_FILES = 6
HYPERPARAMETERS = {
    "objective": "binary:logistic",
    "num_round": "40",
    "max_depth": "4",
    "eta": "0.3",
    "eval_metric": "logloss",
    "seed": "7",
    # One thread per host: several hosts share this machine's cores.
    "nthread": "1",
}


@dataclass(frozen=True)
class Data:
    train_parts: list[np.ndarray]
    validation: np.ndarray
    holdout_x: np.ndarray
    holdout_y: np.ndarray


def make_data() -> Data:
    """Label-first rows: the train channel in `TRAIN_FILES` files, validation, a held-out set."""
    # 16,000 training rows: with much fewer, each host's quantile sketch (and so the model)
    # drifts from the single host's on its own, which is XGBoost's doing, not the split's.
    x, y = make_classification(
        n_samples=22000, n_features=10, n_informative=6, flip_y=0.05, random_state=11
    )
    rows = np.column_stack([y, x])
    train, validation, holdout = rows[:16000], rows[16000:18000], rows[18000:]
    return Data(
        train_parts=np.array_split(train, TRAIN_FILES),
        validation=validation,
        holdout_x=holdout[:, 1:],
        holdout_y=holdout[:, 0],
    )


def write_csv(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, rows, delimiter=",", fmt="%.8g")


def build_opt_ml(
    base: Path,
    names: list[str],
    current: str,
    data: Data,
    distribution: str,
    hyperparameters: dict[str, str],
    interface: str,
) -> None:
    """An `/opt/ml` tree as SageMaker lays it out for host `current` among `names`."""
    config = base / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": current, "hosts": names, "network_interface_name": interface})
    )
    channels = {
        "train": {"ContentType": "text/csv", "S3DistributionType": distribution},
        "validation": {"ContentType": "text/csv", "S3DistributionType": "FullyReplicated"},
    }
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    index = sorted(names).index(current)
    for number, part in enumerate(data.train_parts):
        # ShardedByS3Key: SageMaker hands each host every n-th object; else every host gets all.
        if distribution == "FullyReplicated" or number % len(names) == index:
            write_csv(base / "input" / "data" / "train" / f"part-{number}.csv", part)
    write_csv(base / "input" / "data" / "validation" / "validation.csv", data.validation)
    (base / "model").mkdir()
    (base / "output").mkdir()


def holdout_scores(model_file: Path, data: Data) -> tuple[float, float]:
    """Log loss and accuracy of a saved model on the held-out rows."""
    booster = xgb.Booster(model_file=bytearray(model_file.read_bytes()))
    probabilities = booster.predict(xgb.DMatrix(data.holdout_x))
    return (
        log_loss(data.holdout_y, probabilities),
        accuracy_score(data.holdout_y, probabilities > 0.5),
    )


def metric_lines(output: str) -> list[str]:
    """The per-round metric lines of a training log."""
    return [line for line in output.splitlines() if line.startswith("[") and "\ttrain-" in line]
