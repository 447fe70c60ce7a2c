"""The built-in's Python-computed metrics: every value against scikit-learn on the same
predictions, as a function and in the round lines of the real `./train`; where each is refused;
early stopping and automatic model tuning on them."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from sklearn import metrics as skm

from container.errors import ClientError
from container.training.hyperparameters import parse_hyperparameters
from container.training.metrics import metric_definitions
from container.training.python_metrics import PYTHON_METRIC_NAMES, PythonMetrics
from tests.support.opt_ml import make_job
from tests.support.python_metrics import (
    BINARY_METRICS,
    JOBS,
    MULTICLASS_METRICS,
    REGRESSION_METRICS,
    SKLEARN,
    classes_from_margin,
    classification_data,
    expected_scores,
    job_rows,
    round_scores,
    sklearn_value,
)

from .helpers import csv_text


def test_every_metric_has_a_scikit_learn_reference_and_a_metric_definition() -> None:
    assert set(SKLEARN) == {*PYTHON_METRIC_NAMES, "mae"}
    names = {d["Name"] for d in metric_definitions()}
    assert {f"validation:{m}" for m in PYTHON_METRIC_NAMES} <= names
    assert {f"train:{m}" for m in PYTHON_METRIC_NAMES} <= names


# --- values against scikit-learn, on real models' predictions -----------------------------------


@pytest.mark.parametrize(
    ("objective", "classes", "names"),
    [
        ("binary:logistic", 2, BINARY_METRICS),
        ("binary:logitraw", 2, BINARY_METRICS),
        ("binary:hinge", 2, BINARY_METRICS),
        ("multi:softprob", 4, MULTICLASS_METRICS),
        ("multi:softmax", 4, MULTICLASS_METRICS),
    ],
    ids=["logistic", "logitraw", "hinge", "softprob", "softmax"],
)
@pytest.mark.parametrize("rounds", [1, 3, 20], ids=["1-round", "3-rounds", "20-rounds"])
def test_classification_metrics_equal_scikit_learn(
    objective: str, classes: int, names: tuple[str, ...], rounds: int
) -> None:
    x, y = classification_data(classes, seed=rounds)
    params = {"objective": objective, "max_depth": 2, "eta": 0.3, "nthread": 1}
    if classes > 2:
        params["num_class"] = classes
    dmatrix = xgb.DMatrix(x, label=y)
    booster = xgb.train(params, dmatrix, rounds)
    metrics = PythonMetrics(names, objective, classes if classes > 2 else None)
    margin = booster.predict(dmatrix, output_margin=True)
    got = dict(metrics(margin, dmatrix))
    predicted = classes_from_margin(margin)
    for name in names:
        assert got[name] == pytest.approx(sklearn_value(name, y, predicted), abs=1e-12), name


@pytest.mark.parametrize(
    ("truth", "predicted", "classes"),
    [
        ([0, 1, 2, 2, 1, 0], [0, 0, 0, 0, 0, 0], 4),  # one class predicted, class 3 nowhere
        ([0, 0, 1, 1, 1, 1], [3, 3, 1, 1, 0, 1], 4),  # class 3 predicted, never true
        ([2, 2, 2], [2, 2, 2], 3),  # one class only
        ([1, 1, 1, 1], [0, 0, 0, 0], 2),  # binary, class 1 never predicted
        ([0, 0, 0], [0, 0, 0], 2),  # binary, class 1 nowhere
    ],
    ids=["one-predicted", "predicted-not-true", "one-class", "no-positive-predicted", "all-zero"],
)
def test_absent_classes_count_as_scikit_learn_counts_them(
    truth: list[int], predicted: list[int], classes: int
) -> None:
    y = np.array(truth, dtype=float)
    if classes == 2:
        margin = np.where(np.array(predicted) == 1, 1.5, -1.5)
        objective, names = "binary:logistic", BINARY_METRICS
    else:
        margin = np.eye(classes)[predicted] * 2.0 - 1.0
        objective, names = "multi:softprob", MULTICLASS_METRICS
    dmatrix = xgb.DMatrix(np.zeros((len(y), 1)), label=y)
    got = dict(PythonMetrics(names, objective, classes)(margin, dmatrix))
    for name in names:
        expected = sklearn_value(name, y, np.array(predicted))
        assert got[name] == pytest.approx(expected, abs=1e-12), name


@pytest.mark.parametrize(
    ("objective", "label"),
    [
        ("reg:squarederror", lambda x: x @ [1.0, 2.0, -1.0, 0.5] + 100.0),
        ("reg:absoluteerror", lambda x: x @ [1.0, 2.0, -1.0, 0.5]),
        ("count:poisson", lambda x: np.round(np.exp(0.5 * x[:, 0]) * 3)),
        ("reg:gamma", lambda x: np.exp(0.3 * x[:, 1]) + 0.1),
        ("reg:logistic", lambda x: 1 / (1 + np.exp(-x[:, 0]))),
    ],
    ids=["squarederror", "absoluteerror", "poisson", "gamma", "logistic"],
)
def test_regression_metrics_equal_scikit_learn_on_the_served_prediction(
    objective: str, label: Callable[[np.ndarray], np.ndarray]
) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 4))
    y = label(x)
    dmatrix = xgb.DMatrix(x, label=y)
    booster = xgb.train({"objective": objective, "nthread": 1}, dmatrix, 8)
    metrics = PythonMetrics(REGRESSION_METRICS, objective)
    assert not metrics.output_margin
    prediction = booster.predict(dmatrix)  # what the model serves, on the label's scale
    got = dict(metrics(prediction, dmatrix))
    truth = dmatrix.get_label()
    for name in REGRESSION_METRICS:
        assert got[name] == pytest.approx(sklearn_value(name, truth, prediction), rel=1e-9)


def test_r2_of_constant_labels_is_scikit_learns() -> None:
    dmatrix = xgb.DMatrix(np.zeros((3, 1)), label=np.array([2.0, 2.0, 2.0]))
    metrics = PythonMetrics(("r2",), "reg:squarederror")
    for prediction in ([2.0, 2.0, 2.0], [2.0, 2.5, 2.0]):
        got = dict(metrics(np.array(prediction), dmatrix))["r2"]
        assert got == skm.r2_score(dmatrix.get_label(), prediction)


# --- where they make no sense ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hyperparameters", "expected"),
    [
        (
            {"objective": "reg:squarederror", "eval_metric": "f1"},
            "Metric 'f1' scores predicted classes and needs a classification objective",
        ),
        (
            {"objective": "reg:logistic", "eval_metric": "accuracy"},
            "but objective is 'reg:logistic'; for a regression objective use mse, r2",
        ),
        (
            {"objective": "multi:softprob", "num_class": 3, "eval_metric": "precision"},
            "use 'precision_macro' (averaged over classes) or the '_micro' variant",
        ),
        (
            {"objective": "multi:softmax", "num_class": 3, "eval_metric": "f1_binary"},
            "Metric 'f1_binary' is the score of class 1 of a binary problem; with "
            "'multi:softmax' use 'f1_macro'",
        ),
        (
            {"objective": "multi:softprob", "num_class": 3, "eval_metric": "r2"},
            "Metric 'r2' compares predictions with labels on the label's scale and needs a "
            "regression objective (reg:*, count:poisson), but objective is 'multi:softprob'",
        ),
        (
            {"objective": "binary:logistic", "eval_metric": "mse"},
            "for classification use accuracy, f1, logloss or auc.",
        ),
        (
            {"objective": "rank:ndcg", "_tuning_objective_metric": "validation:accuracy"},
            "Metric 'accuracy' scores predicted classes",
        ),
        (
            {
                "objective": "reg:quantileerror",
                "quantile_alpha": "[0.1, 0.9]",
                "eval_metric": "mse",
            },
            "Metric 'mse' scores one prediction per row, but quantile_alpha asks for 2",
        ),
        ({"eval_metric": "f1@0.3"}, "Metric 'f1@0.3' is refused: XGBoost would ignore"),
    ],
    ids=[
        "f1-regression",
        "accuracy-reg-logistic",
        "precision-multi",
        "f1-binary-multi",
        "r2-multi",
        "mse-binary",
        "tuning-accuracy-ranking",
        "mse-two-quantiles",
        "at-suffix",
    ],
)
def test_metric_that_makes_no_sense_is_refused_with_a_sentence(
    hyperparameters: dict, expected: str
) -> None:
    with pytest.raises(ClientError) as caught:
        parse_hyperparameters({"num_round": 1, **hyperparameters})
    assert expected in caught.value.message


@pytest.mark.parametrize(
    ("objective", "metric"),
    [
        ("binary:logistic", "f1"),
        ("binary:hinge", "precision"),
        ("multi:softprob", "recall_micro"),
        ("reg:tweedie", "r2"),
        ("count:poisson", "mse"),
        ("reg:absoluteerror", "mse"),
    ],
)
def test_metric_that_makes_sense_goes_to_python_not_to_xgboost(objective: str, metric: str) -> None:
    extra = {"num_class": 3} if objective.startswith("multi:") else {}
    hp = parse_hyperparameters(
        {"num_round": 1, "objective": objective, "eval_metric": f"rmse,{metric}", **extra}
    )
    assert hp.python_metrics == (metric,)
    assert hp.xgboost_params["eval_metric"] == ["rmse"]
    assert hp.watched_metric == metric


def test_only_python_metrics_leave_xgboost_its_default_metric() -> None:
    hp = parse_hyperparameters(
        {
            "num_round": 1,
            "objective": "binary:logistic",
            "_tuning_objective_metric": "validation:f1",
        }
    )
    assert "eval_metric" not in hp.xgboost_params
    assert (hp.python_metrics, hp.tuning_metric, hp.tuning_channel) == (("f1",), "f1", "validation")


# --- in the real job's round lines ---------------------------------------------------------------


def write_channels(rows: np.ndarray, cut: int) -> dict[str, dict]:
    return {
        "train": {"content_type": "text/csv", "files": {"d.csv": csv_text(rows[:cut], "%.10g")}},
        "validation": {
            "content_type": "text/csv",
            "files": {"d.csv": csv_text(rows[cut:], "%.10g")},
        },
    }


@pytest.mark.parametrize(("objective", "classes", "names"), JOBS, ids=[j[0] for j in JOBS])
def test_round_lines_print_scikit_learn_values_for_the_model(
    job_root: Path, objective: str, classes: int, names: tuple[str, ...]
) -> None:
    rows = job_rows(classes)
    hyperparameters = {
        "num_round": 6,
        "objective": objective,
        "max_depth": 3,
        "eval_metric": ",".join(names),
    }
    if classes > 2:
        hyperparameters["num_class"] = classes
    job = make_job(job_root, hyperparameters, write_channels(rows, 400))
    result = job.run()
    assert result.returncode == 0, result.stdout + result.stderr
    last = round_scores(result.stdout)[-1]
    for channel, part in (("train", rows[:400]), ("validation", rows[400:])):
        expected = expected_scores(job.model_file, part, objective, names)
        for name in names:
            # Printed with 5 decimals.
            assert last[f"{channel}-{name}"] == pytest.approx(expected[name], abs=6e-6), name


def test_fractional_binary_labels_fail_python_class_metrics_with_a_sentence(
    job_root: Path,
) -> None:
    rows = job_rows(2)
    rows[5, 0] = 0.3
    hyperparameters = {"num_round": 2, "objective": "binary:logistic", "eval_metric": "f1"}
    job = make_job(job_root, hyperparameters, write_channels(rows, 400))
    result = job.run()
    assert result.returncode == 1
    first_line = (job.failure or "").splitlines()[0]
    assert first_line == (
        "Metric 'f1' scores classes, but 1 row(s) have a label that is not a class of "
        "binary:logistic (whole numbers 0 .. 1); use logloss or error for fractional labels."
    )


# --- early stopping and automatic model tuning ------------------------------------------------


def early_stopping_job(job_root: Path, extra: dict) -> tuple[list[dict[str, float]], str]:
    rows = job_rows(2, seed=11, n=500)
    rows[:, 1:] += np.random.default_rng(1).normal(scale=2.0, size=rows[:, 1:].shape)
    hyperparameters = {
        "num_round": 60,
        "objective": "binary:logistic",
        "eta": 0.5,
        "max_depth": 6,
        "early_stopping_rounds": 4,
        **extra,
    }
    job = make_job(job_root, hyperparameters, write_channels(rows, 300))
    result = job.run()
    assert result.returncode == 0, result.stdout + result.stderr
    return round_scores(result.stdout), result.stdout


@pytest.mark.parametrize(
    ("extra", "watched", "best"),
    [
        ({"eval_metric": "logloss,f1"}, "validation-f1", max),
        ({"eval_metric": "f1,logloss"}, "validation-logloss", min),
        (
            {"eval_metric": "error,f1,auc", "_tuning_objective_metric": "validation:f1"},
            "validation-f1",
            max,
        ),
    ],
    ids=["last-eval-metric-f1", "last-eval-metric-logloss", "tuning-metric"],
)
def test_early_stopping_watches_the_builtins_metric_in_its_direction(
    job_root: Path, extra: dict, watched: str, best: Callable
) -> None:
    rounds, output = early_stopping_job(job_root, extra)
    values = [r[watched] for r in rounds]
    best_round = values.index(best(values))  # the first best, as XGBoost keeps it
    assert len(rounds) == best_round + 5, output[-2000:]
    assert f"keeping the best round {best_round} ({watched}=" in output


BUILTIN_REGEX = r".*\[[0-9]+\].*#011validation-{}:(\S+)"
"""The built-in algorithm's published metric-definition regex (`metrics.py` of
aws/sagemaker-xgboost-container), applied to CloudWatch's text, where a tab reads `#011`."""


@pytest.mark.parametrize("eval_metric", [None, "auc,f1,logloss", "f1,accuracy,auc"])
def test_tuning_on_validation_f1_is_read_by_the_builtins_regex(
    job_root: Path, eval_metric: str | None
) -> None:
    rows = job_rows(2)
    hyperparameters = {
        "num_round": 5,
        "objective": "binary:logistic",
        "_tuning_objective_metric": "validation:f1",
    }
    if eval_metric:
        hyperparameters["eval_metric"] = eval_metric
    job = make_job(job_root, hyperparameters, write_channels(rows, 400))
    result = job.run()
    assert result.returncode == 0, result.stdout + result.stderr
    cloudwatch = [line.replace("\t", "#011") for line in result.stdout.splitlines()]
    builtin = re.compile(BUILTIN_REGEX.format("f1"))
    ours = re.compile(
        next(d["Regex"] for d in metric_definitions() if d["Name"] == "validation:f1")
    )
    read = [float(m.group(1)) for m in map(builtin.match, cloudwatch) if m]
    assert [float(m.group(1)) for m in map(ours.match, cloudwatch) if m] == read
    assert read == [r["validation-f1"] for r in round_scores(result.stdout)]
    assert len(read) == 5
    expected = expected_scores(job.model_file, rows[400:], "binary:logistic", ("f1",))
    assert read[-1] == pytest.approx(expected["f1"], abs=6e-6)
