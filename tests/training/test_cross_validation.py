"""`_kfold` / `_num_cv_round`: a real `./train` job writes `xgboost-model-0 .. k·r-1` and the
out-of-fold predictions, and a real `./serve` of that folder answers the mean of the models.

The expected numbers are recomputed here from the job's own files: the folds scikit-learn makes
with the job's seed, each saved model's predictions on the rows it held out.
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

from container.errors import ClientError, ModelLoadError
from container.serving.model_loading import load_model
from container.training.hyperparameters import parse_hyperparameters
from tests.support.opt_ml import Job, make_job
from tests.support.server import Server, predict_csv

from .helpers import binary_rows, csv_text, regression_rows

pytestmark = pytest.mark.slow


def as_written(rows: np.ndarray) -> np.ndarray:
    """The rows as the job reads them back from `csv_text`'s 6 significant digits."""
    return np.loadtxt(io.StringIO(csv_text(rows)), delimiter=",")


ROWS = as_written(binary_rows(240, 5, seed=11))
TRAIN, VALIDATION = ROWS[:180], ROWS[180:]


def load_booster(path: Path) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(bytearray(path.read_bytes()))
    return booster


def fold_models(job: Job) -> list[xgb.Booster]:
    names = sorted(p.name for p in (job.base / "model").iterdir())
    count = len(names)
    assert names == sorted(f"xgboost-model-{i}" for i in range(count))
    return [load_booster(job.base / "model" / f"xgboost-model-{i}") for i in range(count)]


def predictions_csv(job: Job) -> np.ndarray:
    return np.loadtxt(job.base / "output" / "data" / "predictions.csv", delimiter=",", ndmin=2)


def run_ok(job: Job) -> str:
    result = job.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert job.failure is None
    return result.stdout


@pytest.fixture(scope="module")
def binary_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Job, str]:
    job = make_job(
        tmp_path_factory.mktemp("kfold"),
        {
            "num_round": 6,
            "objective": "binary:logistic",
            "eval_metric": "logloss",
            "max_depth": 3,
            "seed": 5,
            "_kfold": 3,
            "_num_cv_round": 2,
        },
        {
            "train": {"content_type": "text/csv", "files": {"a.csv": csv_text(TRAIN)}},
            "validation": {"content_type": "text/csv", "files": {"v.csv": csv_text(VALIDATION)}},
        },
    )
    return job, run_ok(job)


def test_kfold_job_writes_k_times_r_models_and_out_of_fold_predictions(
    binary_job: tuple[Job, str],
) -> None:
    job, _ = binary_job
    models = fold_models(job)
    assert len(models) == 3 * 2
    assert not job.model_file.exists()  # the built-in writes only the fold models

    # The train and validation rows, joined in that order, split as the built-in splits them.
    label, features = ROWS[:, 0], ROWS[:, 1:]
    splitter = RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=5)
    probability = np.zeros((len(ROWS), 2))
    for index, (_, held_out) in enumerate(splitter.split(features, label)):
        probability[held_out, index // 3] = models[index].predict(xgb.DMatrix(features[held_out]))
    table = predictions_csv(job)
    assert table.shape == (len(ROWS), 3)  # label, mean probability, most frequent label
    np.testing.assert_allclose(table[:, 0], label)
    np.testing.assert_allclose(table[:, 1], probability.mean(axis=1), atol=2e-6)
    votes = (probability > 0.5).astype(int)
    agreed = votes[:, 0] == votes[:, 1]
    np.testing.assert_array_equal(table[agreed, 2], votes[agreed, 0])
    np.testing.assert_array_equal(table[~agreed, 2], 0)  # a tie goes to the smaller label


def test_last_metric_line_is_the_mean_over_folds_of_the_held_out_score(
    binary_job: tuple[Job, str],
) -> None:
    job, stdout = binary_job
    models = fold_models(job)
    label, features = ROWS[:, 0], ROWS[:, 1:]
    splitter = RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=5)
    held_out_logloss = []
    for model, (_, held_out) in zip(models, splitter.split(features, label), strict=True):
        matrix = xgb.DMatrix(features[held_out], label[held_out])
        held_out_logloss.append(float(model.eval(matrix).split(":")[1]))
    last = [line for line in stdout.splitlines() if re.match(r"\[\d+\]\t", line)][-1]
    # The built-in's metric-definition regex, on the line as CloudWatch shows it.
    match = re.search(r".*\[[0-9]+\].*#011validation-logloss:(\S+)", last.replace("\t", "#011"))
    assert last.startswith("[6]\t") and match
    assert float(match.group(1)) == pytest.approx(np.mean(held_out_logloss), abs=1e-5)


def test_serving_the_fold_folder_answers_the_mean_of_the_models(
    binary_job: tuple[Job, str], serve: Callable[..., Server]
) -> None:
    job, _ = binary_job
    models = fold_models(job)
    rows = ROWS[:25, 1:].astype(np.float32)
    expected = np.mean([model.predict(xgb.DMatrix(rows)) for model in models], axis=0)
    libsvm = "".join(
        " ".join(["0"] + [f"{i}:{v:.9g}" for i, v in enumerate(row)]) + "\n" for row in rows
    ).encode()
    server = serve(job.base)
    for content_type, body in (
        ("text/csv", csv_text(rows, "%.9g").encode()),
        ("text/libsvm", libsvm),
    ):
        np.testing.assert_allclose(predict_csv(server, content_type, body), expected, rtol=1e-5)
    assert "Serving the mean of 6 cross-validation models" in server.log.read_text()


def test_regression_without_validation_channel_and_early_stopping(tmp_path: Path) -> None:
    rows = as_written(regression_rows(150, 4, seed=2))
    job = make_job(
        tmp_path,
        {"num_round": 40, "_kfold": 5, "early_stopping_rounds": 3, "eta": 0.5, "seed": 1},
        {"train": {"content_type": "text/csv", "files": {"a.csv": csv_text(rows)}}},
    )
    run_ok(job)
    models = fold_models(job)
    assert len(models) == 5
    mean = np.zeros(len(rows))
    folds = RepeatedKFold(n_splits=5, n_repeats=1, random_state=1).split(rows)
    for model, (_, held_out) in zip(models, folds, strict=True):
        mean[held_out] = model.predict(xgb.DMatrix(rows[held_out, 1:]))
    table = predictions_csv(job)
    assert table.shape == (len(rows), 2)  # label, mean prediction
    np.testing.assert_allclose(table[:, 0], rows[:, 0], atol=1e-5)
    np.testing.assert_allclose(table[:, 1], mean, atol=2e-6)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"num_round": 5, "_num_cv_round": 2},
            "Hyperparameter '_num_cv_round' repeats a k-fold cross-validation, but '_kfold' is "
            "not set",
        ),
        ({"num_round": 5, "_kfold": 1}, "'_kfold'=1 is invalid: it must satisfy 2 <= _kfold."),
        (
            {"num_round": 5, "_kfold": 3, "_num_cv_round": 0},
            "'_num_cv_round'=0 is invalid: it must satisfy 1 <= _num_cv_round.",
        ),
        (
            {"num_round": 5, "_kfold": 3, "objective": "rank:ndcg"},
            "would cut the query groups that objective 'rank:ndcg' ranks within",
        ),
    ],
    ids=["rounds-without-kfold", "one-fold", "zero-rounds", "ranking"],
)
def test_bad_settings_are_refused_with_a_sentence(raw: dict, message: str) -> None:
    with pytest.raises(ClientError, match=re.escape(message)):
        parse_hyperparameters(raw)


@pytest.mark.parametrize(
    ("rows", "resources", "message"),
    [
        (
            regression_rows(3, 2),
            None,
            "Hyperparameter '_kfold'=5 cannot split the 3 rows: Cannot have number of splits",
        ),
        (
            regression_rows(50, 2),
            {"current_host": "algo-1", "hosts": ["algo-1", "algo-2"]},
            "Hyperparameter '_kfold' runs on one instance, but the job has 2",
        ),
    ],
    ids=["fewer-rows-than-folds", "two-hosts"],
)
def test_jobs_kfold_cannot_run_fail_with_a_sentence(
    tmp_path: Path, rows: np.ndarray, resources: dict | None, message: str
) -> None:
    job = make_job(
        tmp_path,
        {"num_round": 3, "_kfold": 5},
        {"train": {"content_type": "text/csv", "files": {"a.csv": csv_text(rows)}}},
        resources,
    )
    result = job.run()
    assert result.returncode == 1
    assert job.failure is not None and job.failure.startswith(message)


def _fold_dir(root: Path, names: list[str]) -> Path:
    model_dir = root / "model"
    model_dir.mkdir()
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(ROWS[:, 1:], ROWS[:, 0]), 2)
    for name in names:
        (model_dir / name).write_bytes(bytes(booster.save_raw("json")))
    return model_dir


def test_a_missing_fold_model_is_named(tmp_path: Path) -> None:
    model_dir = _fold_dir(tmp_path, ["xgboost-model-0", "xgboost-model-2"])
    with pytest.raises(ModelLoadError, match=r"but xgboost-model-1 is missing"):
        load_model(model_dir)


def test_a_pickled_fold_model_is_refused(tmp_path: Path) -> None:
    model_dir = _fold_dir(tmp_path, ["xgboost-model-0"])
    (model_dir / "xgboost-model-1").write_bytes(pickle.dumps({"not": "a booster"}))
    with pytest.raises(ModelLoadError, match=r"xgboost-model-1 is a Python pickle"):
        load_model(model_dir)


def test_xgboost_model_wins_and_fold_files_beside_it_are_ignored(tmp_path: Path) -> None:
    model_dir = _fold_dir(tmp_path, ["xgboost-model", "xgboost-model-0", "xgboost-model-1"])
    loaded = load_model(model_dir)
    assert loaded.ensemble == () and len(loaded.boosters) == 1


def test_multiclass_out_of_fold_columns_are_the_probability_and_label_of_the_held_out_model(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(8)
    features = rng.normal(size=(150, 3))
    label = np.digitize(features[:, 0] + features[:, 1], [-0.7, 0.7]).astype(float)
    rows = as_written(np.column_stack([label, features]))
    job = make_job(
        tmp_path,
        {"num_round": 4, "objective": "multi:softprob", "num_class": 3, "_kfold": 3},
        {"train": {"content_type": "text/csv", "files": {"a.csv": csv_text(rows)}}},
    )
    run_ok(job)
    models = fold_models(job)
    probabilities = np.zeros((len(rows), 3))
    splitter = RepeatedStratifiedKFold(n_splits=3, n_repeats=1, random_state=0)
    for model, (_, held_out) in zip(models, splitter.split(rows, rows[:, 0]), strict=True):
        probabilities[held_out] = model.predict(xgb.DMatrix(rows[held_out, 1:]))
    table = predictions_csv(job)
    np.testing.assert_allclose(table[:, 0], rows[:, 0])
    np.testing.assert_allclose(table[:, 1], probabilities.max(axis=1), atol=2e-6)
    np.testing.assert_array_equal(table[:, 2], probabilities.argmax(axis=1))


def test_python_tuning_metric_is_the_mean_of_each_folds_held_out_score(tmp_path: Path) -> None:
    """Autopilot tunes a k-fold job on the built-in's Python metrics (`validation:f1`)."""
    from sklearn.metrics import f1_score

    job = make_job(
        tmp_path,
        {
            "num_round": 4,
            "objective": "binary:logistic",
            "max_depth": 3,
            "seed": 5,
            "_kfold": 3,
            "_tuning_objective_metric": "validation:f1",
        },
        {"train": {"content_type": "text/csv", "files": {"a.csv": csv_text(ROWS)}}},
    )
    stdout = run_ok(job)
    models = fold_models(job)
    label, features = ROWS[:, 0], ROWS[:, 1:]
    splitter = RepeatedStratifiedKFold(n_splits=3, n_repeats=1, random_state=5)
    held_out_f1 = [
        f1_score(label[rows], model.predict(xgb.DMatrix(features[rows])) > 0.5, average="macro")
        for model, (_, rows) in zip(models, splitter.split(features, label), strict=True)
    ]
    last = [line for line in stdout.splitlines() if re.match(r"\[\d+\]\t", line)][-1]
    match = re.search(r".*\[[0-9]+\].*#011validation-f1:(\S+)", last.replace("\t", "#011"))
    assert last.startswith("[4]\t") and match, last
    assert float(match.group(1)) == pytest.approx(np.mean(held_out_f1), abs=1e-5)
