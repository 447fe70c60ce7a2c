"""Data, `/opt/ml` trees and scoring shared by the distributed tests: hosts as processes
(tests/training/test_distributed_hosts.py) and as containers
(tests/container/test_container_distributed.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost as xgb
from sklearn.datasets import make_classification
from sklearn.metrics import accuracy_score, log_loss

from .opt_ml import Job, make_job

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


def csv_text(rows: np.ndarray) -> str:
    """Rows as CSV, 8 significant digits."""
    return "".join(",".join(f"{v:.8g}" for v in row) + "\n" for row in rows)


def build_opt_ml(
    root: Path,
    name: str,
    names: list[str],
    current: str,
    data: Data,
    distribution: str,
    hyperparameters: dict[str, str],
    interface: str,
) -> Job:
    """The `/opt/ml` tree at `root/name` as SageMaker lays it out for host `current` among
    `names`: ShardedByS3Key hands each host every n-th train file, else every host gets all."""
    index = sorted(names).index(current)
    train = {
        f"part-{number}.csv": csv_text(part)
        for number, part in enumerate(data.train_parts)
        if distribution == "FullyReplicated" or number % len(names) == index
    }
    channels = {
        "train": {"content_type": "text/csv", "distribution": distribution, "files": train},
        "validation": {
            "content_type": "text/csv",
            "files": {"validation.csv": csv_text(data.validation)},
        },
    }
    resources = {"current_host": current, "hosts": names, "network_interface_name": interface}
    return make_job(root, hyperparameters, channels, resources, name=name)


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
