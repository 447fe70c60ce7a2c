"""Per-round metric scores, and the regexes that read the round lines.

Each round prints `[12]<TAB>train-rmse:2.13450<TAB>validation-rmse:2.37790` to stdout, through
XGBoost's own `EvaluationMonitor` (see `boosting`). CloudWatch shows the tab as `#011`, which
is what SageMaker's `metric_definitions` regexes match
(`.*\\[[0-9]+\\].*#011validation-rmse:([-+0-9.eE]+)`).
"""

from __future__ import annotations

from dataclasses import dataclass

from container.training.hyperparameters import METRIC_NAMES

MAXIMIZE_PREFIXES = ("auc", "aucpr", "map", "ndcg", "pre", "interval-regression-accuracy")
"""Metrics where bigger is better (XGBoost's own list); every other metric is minimised."""


@dataclass(frozen=True)
class Score:
    """One `data-metric:value` entry of a round."""

    data: str
    metric: str
    value: float

    @property
    def key(self) -> str:
        return f"{self.data}-{self.metric}"


def parse_eval(text: str) -> list[Score]:
    """Read `Booster.eval_set`'s `[i]\\tdata-metric:value...` into scores."""
    scores = []
    for part in text.strip().split("\t")[1:]:
        name, _, value = part.rpartition(":")
        data, _, metric = name.partition("-")
        scores.append(Score(data=data, metric=metric, value=float(value)))
    return scores


def is_maximized(metric: str) -> bool:
    return metric.split("@")[0] in MAXIMIZE_PREFIXES


def metric_regex(channel: str, metric: str) -> str:
    """The `metric_definitions` regex for `channel:metric`.

    The built-in algorithm's `(\\S+)` would also swallow the `#011next-metric:...` after a
    value that is not last on its line; this one captures the number only.
    """
    return rf".*\[[0-9]+\].*#011{channel}-{metric}:([-+0-9.eE]+)"


def metric_definitions(channels: tuple[str, ...] = ("train", "validation")) -> list[dict]:
    """Every `{'Name': 'validation:rmse', 'Regex': ...}` pair for an `Estimator`."""
    return [
        {"Name": f"{channel}:{metric}", "Regex": metric_regex(channel, metric)}
        for channel in channels
        for metric in METRIC_NAMES
    ]
