"""Per-round metric scores, and the regexes that read the round lines.

Each round prints `[12]<TAB>train-rmse:2.13450<TAB>validation-rmse:2.37790` to stdout, through
XGBoost's own `EvaluationMonitor` (see `boosting`). CloudWatch shows the tab as `#011`, which
is what SageMaker's `metric_definitions` regexes match
(`.*\\[[0-9]+\\].*#011validation-rmse:([-+0-9.eE]+)`).
"""

from __future__ import annotations

from dataclasses import dataclass

from container.training.hyperparameters import METRIC_NAMES
from container.training.python_metrics import MAXIMIZED, PYTHON_METRIC_NAMES

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
    name = metric.split("@")[0]
    return name.removesuffix("-") in MAXIMIZE_PREFIXES or name in MAXIMIZED


def printed_name(metric: str) -> str:
    """The name XGBoost prints for `metric`: it writes numbers its own way (`error@0.70` prints
    as `error@0.7`, `error@0.5` as `error`)."""
    name, at, argument = metric.partition("@")
    if not at or name not in ("error", "tweedie-nloglik"):
        return metric
    value = float(argument)
    return name if name == "error" and value == 0.5 else f"{name}@{value:g}"


def order_round(scores: list[Score], last: str | None = None) -> list[Score]:
    """A round's scores as XGBoost's `EvaluationMonitor` lists them, data set by data set
    (`train`, then `validation`), with the metric `last` (the tuning metric) moved to the end of
    each: the built-in's published regexes end in `(\\S+)`, which reads a number only there."""
    datasets = list(dict.fromkeys(score.data for score in scores))
    key = printed_name(last) if last else None
    ordered = []
    for data in datasets:
        mine = [score for score in scores if score.data == data]
        ordered += [s for s in mine if s.metric != key] + [s for s in mine if s.metric == key]
    return ordered


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
        for metric in METRIC_NAMES + PYTHON_METRIC_NAMES
    ]
