"""scikit-learn's value of each of the built-in's Python metrics, and the round lines of a
training log read back: the references of the single-host and multi-host metric tests."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xgboost as xgb
from sklearn import metrics as skm

from container.training.python_metrics import CLASSIFICATION_METRICS

SKLEARN: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": skm.accuracy_score,
    "balanced_accuracy": skm.balanced_accuracy_score,
    "f1": lambda y, p: skm.f1_score(y, p, average="macro"),
    "f1_binary": lambda y, p: skm.f1_score(y, p, average="binary"),
    "f1_macro": lambda y, p: skm.f1_score(y, p, average="macro"),
    "precision": skm.precision_score,
    "precision_macro": lambda y, p: skm.precision_score(y, p, average="macro"),
    "precision_micro": lambda y, p: skm.precision_score(y, p, average="micro"),
    "recall": skm.recall_score,
    "recall_macro": lambda y, p: skm.recall_score(y, p, average="macro"),
    "recall_micro": lambda y, p: skm.recall_score(y, p, average="micro"),
    "mse": skm.mean_squared_error,
    "mae": skm.mean_absolute_error,  # XGBoost's own metric, the same value as the built-in's
    "r2": skm.r2_score,
}
"""scikit-learn's definition of each metric, with its defaults (as the built-in calls it)."""

BINARY_METRICS = CLASSIFICATION_METRICS
MULTICLASS_METRICS = tuple(
    m for m in CLASSIFICATION_METRICS if m not in ("f1_binary", "precision", "recall")
)
REGRESSION_METRICS = ("mse", "r2")
ROUND_LINE = re.compile(r"^\[(\d+)\]\t")


def sklearn_value(name: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    """In float64, as the container sums (scikit-learn would keep XGBoost's float32)."""
    truth, predicted = np.asarray(truth, np.float64), np.asarray(predicted, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero-division and absent-class warnings: values hold
        return float(SKLEARN[name](truth, predicted))


def classes_from_margin(margin: np.ndarray) -> np.ndarray:
    """The built-in's rule: arg-max of the margins, or margin > 0 for one output."""
    return np.argmax(margin, axis=1) if margin.ndim == 2 else (margin > 0).astype(int)


def classification_data(classes: int, seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    score = x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.8, size=n)
    edges = np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])
    return x, np.digitize(score, edges).astype(float)


def round_scores(output: str) -> list[dict[str, float]]:
    """Each round line of a training log as {'validation-f1': 0.9, ...}."""
    rounds = []
    for line in output.splitlines():
        if ROUND_LINE.match(line):
            fields = line.split("\t")[1:]
            rounds.append({k: float(v) for k, _, v in (f.rpartition(":") for f in fields)})
    return rounds


JOBS = [
    ("binary:logistic", 2, BINARY_METRICS),
    ("multi:softmax", 3, MULTICLASS_METRICS),
    ("reg:squarederror", 0, ("mse", "mae", "r2")),
    ("count:poisson", 0, ("mse", "mae", "r2")),
]


def job_rows(classes: int, seed: int = 3, n: int = 600) -> np.ndarray:
    if classes:
        x, y = classification_data(classes, seed, n)
    else:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, 4))
        y = np.round(np.exp(0.4 * x[:, 0] + 0.2 * x[:, 1]) * 4)
    return np.column_stack([y, x])


def expected_scores(
    model_file: Path, rows: np.ndarray, objective: str, names: tuple[str, ...]
) -> dict[str, float]:
    """scikit-learn's value of each metric for the saved model on `rows` (label first)."""
    booster = xgb.Booster(model_file=bytearray(model_file.read_bytes()))
    dmatrix = xgb.DMatrix(rows[:, 1:])
    if objective.startswith(("binary:", "multi:")):
        predicted = classes_from_margin(booster.predict(dmatrix, output_margin=True))
    else:
        predicted = booster.predict(dmatrix)
    return {name: sklearn_value(name, rows[:, 0], predicted) for name in names}
