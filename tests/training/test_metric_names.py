"""Which metric names training accepts as written: the `@` arguments and trailing `-` that
XGBoost 3 reads, checked against the installed XGBoost, and the label-bound metrics and
`survival:aft` refused with a sentence before XGBoost's own check could fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from container.errors import ClientError
from container.training.hyperparameters import AT_RULE, parse_hyperparameters
from container.training.metrics import printed_name
from tests.support.opt_ml import make_job

from .helpers import binary_rows, csv_text


def printed_by_xgboost(metric: str, objective: str) -> str:
    """The metric name XGBoost prints after one round with `eval_metric=metric`."""
    return scored_by_xgboost(metric, objective)[0]


def scored_by_xgboost(metric: str, objective: str) -> tuple[str, float]:
    """The name XGBoost prints and the value it computes after one round."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] > 0).astype(float)
    dmatrix = xgb.DMatrix(x, label=y, qid=np.repeat(np.arange(6), 10))
    booster = xgb.Booster({"objective": objective, "eval_metric": metric}, [dmatrix])
    booster.update(dmatrix, 0)
    field = booster.eval_set([(dmatrix, "v")], 0).split("\t")[1]
    name, _, value = field.rpartition(":")
    return name.removeprefix("v-"), float(value)


ACCEPTED = [
    ("error@0.7", "binary:logistic"),
    ("error@0.70", "binary:logistic"),
    ("error@0.5", "binary:logistic"),
    ("error@1e-1", "binary:logistic"),
    ("ndcg@5", "rank:ndcg"),
    ("ndcg@5-", "rank:ndcg"),
    ("ndcg-", "rank:ndcg"),
    ("map@3", "rank:map"),
    ("map-", "rank:map"),
    ("pre@2", "rank:pairwise"),
    ("pre@2-", "rank:pairwise"),
    ("pre-", "rank:pairwise"),
    ("tweedie-nloglik@1.5", "reg:tweedie"),
    ("tweedie-nloglik@1.20", "reg:tweedie"),
]


@pytest.mark.parametrize(("metric", "objective"), ACCEPTED, ids=[m for m, _ in ACCEPTED])
def test_accepted_argument_is_read_by_xgboost(metric: str, objective: str) -> None:
    hp = parse_hyperparameters({"num_round": 1, "objective": objective, "eval_metric": metric})
    assert hp.xgboost_params["eval_metric"] == [metric]
    assert printed_by_xgboost(metric, objective) == printed_name(metric)


IGNORED = [
    ("auc@0.5", "binary:logistic"),
    ("aucpr@2", "binary:logistic"),
    ("logloss@1", "binary:logistic"),
    ("rmse@3", "reg:squarederror"),
    ("mae@1", "reg:squarederror"),
    ("poisson-nloglik@2", "count:poisson"),
    ("auc-", "binary:logistic"),
    ("rmse-", "reg:squarederror"),
]
MISREAD = [
    ("pre@x", "rank:pairwise", "pre"),
    ("ndcg@3.5", "rank:ndcg", "ndcg@3"),
    ("map@ 2", "rank:map", "map@2"),
    ("ndcg@3-x", "rank:ndcg", "ndcg@3"),
]
"""Each with the metric XGBoost computes instead."""


@pytest.mark.parametrize(
    ("metric", "objective", "effect"),
    [(m, o, "ignore") for m, o in IGNORED] + [(m, o, "misread") for m, o, _ in MISREAD],
    ids=[m for m, _ in IGNORED] + [m for m, _, _ in MISREAD],
)
def test_argument_xgboost_ignores_or_misreads_is_refused(
    metric: str, objective: str, effect: str
) -> None:
    # XGBoost itself takes the name, then prints another name or computes another metric.
    name, value = scored_by_xgboost(metric, objective)
    if effect == "ignore":
        assert name == metric.split("@")[0].removesuffix("-")
    else:
        reads_as = next(read for m, _, read in MISREAD if m == metric)
        assert value == scored_by_xgboost(reads_as, objective)[1]
    with pytest.raises(ClientError) as caught:
        parse_hyperparameters({"num_round": 1, "objective": objective, "eval_metric": metric})
    name = metric.split("@")[0].removesuffix("-")
    assert caught.value.message == (
        f"Metric '{metric}' is refused: XGBoost would {effect} what follows '{name}'. {AT_RULE}"
    )


@pytest.mark.parametrize(
    ("metric", "objective"),
    [("error@x", "binary:logistic"), ("error@", "binary:logistic"), ("error-", "binary:logistic")],
)
def test_argument_xgboost_fails_on_is_refused_first(metric: str, objective: str) -> None:
    with pytest.raises(xgb.core.XGBoostError, match="unable to parse the threshold"):
        printed_by_xgboost(metric, objective)
    with pytest.raises(ClientError, match="XGBoost would misread what follows 'error'"):
        parse_hyperparameters({"num_round": 1, "objective": objective, "eval_metric": metric})


def test_the_rule_lists_exactly_the_accepted_arguments() -> None:
    assert AT_RULE == (
        "Only error@T (T: the classification threshold), ndcg@N, map@N and pre@N (N >= 1: the "
        "top positions scored) and tweedie-nloglik@RHO (1 <= RHO < 2) take an @ argument, and "
        "only ndcg, map and pre (with or without @N) take a trailing '-'."
    )


def test_tweedie_nloglik_needs_its_variance_power() -> None:
    with pytest.raises(xgb.core.XGBoostError, match="tweedie-nloglik@rho"):
        printed_by_xgboost("tweedie-nloglik", "reg:tweedie")
    with pytest.raises(ClientError) as caught:
        parse_hyperparameters(
            {"num_round": 1, "objective": "reg:tweedie", "eval_metric": "tweedie-nloglik"}
        )
    assert caught.value.message == (
        "Metric 'tweedie-nloglik' needs its variance power: write tweedie-nloglik@RHO with "
        "1 <= RHO < 2, such as tweedie-nloglik@1.5."
    )
    with pytest.raises(ClientError, match="XGBoost would misread what follows"):
        parse_hyperparameters(
            {"num_round": 1, "objective": "reg:tweedie", "eval_metric": "tweedie-nloglik@2"}
        )


# --- label bounds -------------------------------------------------------------------------------

NO_BOUNDS = (
    "needs each row's label as an interval (a lower and an upper bound), which no channel "
    "format carries: use survival:cox for right-censored survival times (the label is the "
    "time, negative when censored) or a reg:* objective on the observed times."
)


@pytest.mark.parametrize(
    ("hyperparameters", "subject"),
    [
        ({"objective": "survival:aft"}, "Objective 'survival:aft'"),
        (
            {"objective": "survival:aft", "aft_loss_distribution": "logistic"},
            "Objective 'survival:aft'",
        ),
        ({"objective": "survival:cox", "eval_metric": "aft-nloglik"}, "Metric 'aft-nloglik'"),
        (
            {"eval_metric": "interval-regression-accuracy"},
            "Metric 'interval-regression-accuracy'",
        ),
    ],
    ids=["aft", "aft-distribution", "aft-nloglik", "interval-accuracy"],
)
def test_label_bound_objective_and_metrics_are_refused(hyperparameters: dict, subject: str) -> None:
    with pytest.raises(ClientError) as caught:
        parse_hyperparameters({"num_round": 1, **hyperparameters})
    assert caught.value.message == f"{subject} {NO_BOUNDS}"


@pytest.mark.parametrize(
    "hyperparameters",
    [
        {"objective": "survival:aft"},
        {"objective": "reg:squarederror", "eval_metric": "aft-nloglik"},
    ],
    ids=["objective", "metric"],
)
def test_survival_aft_job_fails_with_the_sentence_not_xgboosts_check(
    job_root: Path, hyperparameters: dict
) -> None:
    rows = binary_rows(60)
    job = make_job(
        job_root,
        {"num_round": 3, **hyperparameters},
        {"train": {"content_type": "text/csv", "files": {"d.csv": csv_text(rows)}}},
    )
    result = job.run()
    assert result.returncode == 1
    failure = job.failure or ""
    assert failure.splitlines()[0].endswith(NO_BOUNDS)
    for text in (failure, result.stdout, result.stderr):
        assert "labels_lower_bound_" not in text
        assert "Check failed" not in text


def test_early_stopping_finds_a_metric_under_the_name_xgboost_prints(job_root: Path) -> None:
    rows = binary_rows(300)
    job = make_job(
        job_root,
        {
            "num_round": 40,
            "objective": "binary:logistic",
            "eval_metric": "f1,error@0.70",  # f1, computed in Python, prints last
            "early_stopping_rounds": 2,
            "eta": 0.9,
        },
        {
            "train": {"content_type": "text/csv", "files": {"d.csv": csv_text(rows[:200])}},
            "validation": {"content_type": "text/csv", "files": {"d.csv": csv_text(rows[200:])}},
        },
    )
    result = job.run()
    assert result.returncode == 0, result.stdout + result.stderr
    rounds = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert all(line.split("\t")[-1].startswith("validation-f1:") for line in rounds)
    assert all("\tvalidation-error@0.7:" in line for line in rounds)
    # Watched: the last of eval_metric (the built-in's rule), found under its printed name.
    assert "(validation-error@0.7=" in result.stdout
