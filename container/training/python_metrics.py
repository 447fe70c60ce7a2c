"""The built-in algorithm's metrics that XGBoost lacks, computed in Python each round.

`accuracy`, `f1`, `precision_macro`, `mse`, `r2`, ... are what SageMaker's built-in XGBoost
computes with scikit-learn in a custom metric. Here each is reduced to sufficient statistics (a
confusion matrix for the classification metrics, sums for the regression ones) that are summed
over the hosts with XGBoost's collective, so a multi-host job reports the value over all rows,
not over the master's share. The values equal scikit-learn's on the same predictions.

What they are computed on, as the built-in does: classification metrics on the predicted class,
taken from XGBoost's raw margin (`margin > 0` for `binary:*`, the arg-max for `multi:*`);
regression metrics on the prediction the model serves (equal to the built-in's raw margin for
the identity-link objectives; for log- and logit-link objectives, the served prediction rather
than the built-in's margin, which would not be on the label's scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from container.errors import ClientError

if TYPE_CHECKING:
    import xgboost as xgb

    from container.training.hyperparameters import Hyperparameters

CLASSIFICATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "f1",
    "f1_binary",
    "f1_macro",
    "precision",
    "precision_macro",
    "precision_micro",
    "recall",
    "recall_macro",
    "recall_micro",
)
REGRESSION_METRICS = ("mse", "r2")
PYTHON_METRIC_NAMES = CLASSIFICATION_METRICS + REGRESSION_METRICS
BINARY_ONLY = ("f1_binary", "precision", "recall")
"""scikit-learn's `average='binary'`: the score of class 1, defined for two classes only."""
MAXIMIZED = (*CLASSIFICATION_METRICS, "r2")
"""Python metrics where bigger is better (every other one, `mse`, is minimised)."""

CLASSIFICATION_OBJECTIVES = (
    "binary:logistic",
    "binary:logitraw",
    "binary:hinge",
    "multi:softmax",
    "multi:softprob",
)
REGRESSION_OBJECTIVE_PREFIXES = ("reg:", "count:")


def objective_problem(metric: str, objective: str) -> str | None:
    """Why `metric` makes no sense with `objective` (a sentence), or None when it does."""
    if metric in CLASSIFICATION_METRICS:
        if objective not in CLASSIFICATION_OBJECTIVES:
            return (
                f"Metric '{metric}' scores predicted classes and needs a classification "
                f"objective ({', '.join(CLASSIFICATION_OBJECTIVES)}), but objective is "
                f"'{objective}'; for a regression objective use mse, r2, rmse or mae."
            )
        if metric in BINARY_ONLY and objective.startswith("multi:"):
            return (
                f"Metric '{metric}' is the score of class 1 of a binary problem; with "
                f"'{objective}' use '{_multiclass_variant(metric)}' (averaged over classes) "
                "or the '_micro' variant."
            )
    if metric in REGRESSION_METRICS and not objective.startswith(REGRESSION_OBJECTIVE_PREFIXES):
        return (
            f"Metric '{metric}' compares predictions with labels on the label's scale and needs "
            f"a regression objective (reg:*, count:poisson), but objective is '{objective}'; "
            "for classification use accuracy, f1, logloss or auc."
        )
    return None


def _multiclass_variant(metric: str) -> str:
    return "f1_macro" if metric == "f1_binary" else f"{metric}_macro"


@dataclass(frozen=True)
class PythonMetrics:
    """XGBoost's `custom_metric`: `(predictions, DMatrix) → [(name, value), ...]`.

    Every host must call it for the same data sets in the same order (each call is one
    collective step when training on several hosts), as `Booster.eval_set` does."""

    names: tuple[str, ...]
    objective: str
    num_class: int | None = None

    @property
    def output_margin(self) -> bool:
        """Classes come from the raw margin; regression metrics use the served prediction."""
        return self.objective in CLASSIFICATION_OBJECTIVES

    @property
    def classes(self) -> int:
        return self.num_class if self.objective.startswith("multi:") and self.num_class else 2

    def __call__(self, predictions: np.ndarray, dmatrix: xgb.DMatrix) -> list[tuple[str, float]]:
        label = np.asarray(dmatrix.get_label(), dtype=np.float64)
        if self.output_margin:
            confusion = _sum_over_hosts(self._confusion(predictions, label))
            return [(name, _classification_score(name, confusion, self)) for name in self.names]
        totals = _sum_over_hosts(_regression_sums(predictions, label))
        return [(name, _regression_score(name, totals)) for name in self.names]

    def _confusion(self, margins: np.ndarray, label: np.ndarray) -> np.ndarray:
        """The k×k confusion counts (rows: true class) then the count of non-class labels."""
        k = self.classes
        predicted = (
            np.argmax(margins, axis=1)
            if margins.ndim == 2
            else (np.asarray(margins) > 0.0).astype(np.int64)
        )
        whole = (label == np.floor(label)) & (label >= 0) & (label < k)
        truth = label[whole].astype(np.int64)
        counts = np.bincount(truth * k + predicted[whole], minlength=k * k).astype(np.float64)
        return np.append(counts, float(np.count_nonzero(~whole)))


def _sum_over_hosts(values: np.ndarray) -> np.ndarray:
    """Sum `values` over every host of a distributed job; unchanged on one host."""
    from xgboost import collective

    if not collective.is_distributed():
        return values
    return np.asarray(collective.allreduce(values, collective.Op.SUM), dtype=np.float64)


def _classification_score(name: str, totals: np.ndarray, metrics: PythonMetrics) -> float:
    k = metrics.classes
    if totals[-1]:
        raise ClientError(
            f"Metric '{name}' scores classes, but {int(totals[-1])} row(s) have a label that is "
            f"not a class of {metrics.objective} (whole numbers 0 .. {k - 1}); use logloss or "
            "error for fractional labels."
        )
    confusion = totals[:-1].reshape(k, k)
    total = confusion.sum()
    if total == 0:
        return 0.0
    hits = np.diag(confusion)
    actual, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    present = (actual + predicted) > 0  # scikit-learn's labels: seen as truth or prediction
    if name == "accuracy" or name.endswith("_micro"):
        return float(hits.sum() / total)
    if name == "balanced_accuracy":
        return float(np.mean(hits[actual > 0] / actual[actual > 0]))
    kind, _, average = name.partition("_")
    if kind == "precision":
        per_class = _ratio(hits, predicted)
    elif kind == "recall":
        per_class = _ratio(hits, actual)
    else:
        per_class = _ratio(2 * hits, actual + predicted)
    if average == "binary" or (not average and kind != "f1"):
        return float(per_class[1])
    return float(np.mean(per_class[present]))  # macro: `f1`, as the built-in defines it


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Per class; 0 where the denominator is 0 (scikit-learn's `zero_division` default)."""
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, 0.0)


def _regression_sums(predictions: np.ndarray, label: np.ndarray) -> np.ndarray:
    """n, Σy, Σ(y - local mean)², n·(local mean)², Σ(y - p)²: enough for mse and r2 over hosts
    without the cancellation of Σy² - n·mean²."""
    prediction = np.asarray(predictions, dtype=np.float64).ravel()
    n = float(label.size)
    if not n:
        return np.zeros(5)
    mean = label.mean()
    residual = label - prediction
    return np.array(
        [n, label.sum(), np.sum((label - mean) ** 2), n * mean * mean, residual @ residual]
    )


def _regression_score(name: str, totals: np.ndarray) -> float:
    n, total, within, scaled_means, squared_error = totals
    if n == 0:
        return 0.0
    if name == "mse":
        return float(squared_error / n)
    spread = within + scaled_means - total * total / n  # Σ(y - overall mean)²
    if spread <= 1e-12 * (within + scaled_means):  # every label equal, up to rounding
        return 1.0 if squared_error == 0 else 0.0  # scikit-learn's force_finite
    return float(1.0 - squared_error / spread)


def for_job(hyperparameters: Hyperparameters) -> PythonMetrics | None:
    """The Python metrics the job's `eval_metric` and tuning metric ask for, if any."""
    if not hyperparameters.python_metrics:
        return None
    return PythonMetrics(
        names=hyperparameters.python_metrics,
        objective=hyperparameters.objective,
        num_class=hyperparameters.num_class,
    )
