"""`_kfold` cross-validation, as SageMaker Autopilot asks of the built-in algorithm.

The train and validation channels are joined and split into `_kfold` folds, `_num_cv_round`
times over on new folds (scikit-learn's `RepeatedStratifiedKFold` for classification,
`RepeatedKFold` otherwise, as the built-in uses, seeded with `seed` so a rerun makes the same
folds). One model is trained per fold on the other folds, written as `model/xgboost-model-N`
(N = 0 .. k·rounds-1), and predicts its held-out fold; those out-of-fold predictions go to
`output/data/predictions.csv`. Serving a folder of such models averages their predictions.

Where the built-in evaluates every fold's rounds on the whole train and validation channels
(rows the fold trained on), each fold here is scored, and early-stopped, on its held-out rows.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
import xgboost as xgb

from container.errors import ClientError
from container.settings import MODEL_FILENAME, Settings
from container.training import boosting, data_loading, python_metrics
from container.training.hyperparameters import Hyperparameters
from container.training.metrics import Score
from container.training.termination import MODEL_SAVE, PARSING, ROUNDS, StopRequest

if TYPE_CHECKING:
    from container.training.data_loading import Dataset
    from container.training.job import JobConfig

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.csv"
"""The built-in's name for the out-of-fold predictions, in `output/data` (SM_OUTPUT_DATA_DIR)."""


def model_name(index: int) -> str:
    """`xgboost-model-N`: the name the built-in gives the N-th fold's model."""
    return f"{MODEL_FILENAME}-{index}"


def run(
    settings: Settings,
    config: JobConfig,
    hyperparameters: Hyperparameters,
    has_validation: bool,
    stop: StopRequest,
) -> None:
    """Cross-validate on train (+ validation); write the fold models and their predictions."""
    assert hyperparameters.kfold is not None
    hosts = config.resources.get("hosts") or []
    if len(hosts) > 1:
        raise ClientError(
            f"Hyperparameter '_kfold' runs on one instance, but the job has {len(hosts)}: "
            "set the instance count to 1, or remove _kfold to train one model on all hosts."
        )
    _warn_about_checkpoints(settings)
    stop.enter(
        PARSING, "channels 'train' and 'validation'" if has_validation else "channel 'train'"
    )
    rows = _load(settings, config.input_data, hyperparameters, has_validation)
    matrix = data_loading.to_dmatrix(rows, hyperparameters, sliceable=True, stop=stop)
    label = rows.label
    del rows
    kfold, repeats = hyperparameters.kfold, hyperparameters.num_cv_round
    logger.info(
        "Cross-validation: %d round(s) of %d-fold cross-validation on %d rows.",
        repeats,
        kfold,
        len(label),
    )
    predictions = OutOfFoldPredictions(label, repeats, hyperparameters.objective)
    stop.enter(ROUNDS, f"{kfold * repeats} fold models")
    models: list[xgb.Booster] = []
    scores: list[list[Score]] = []
    for index, (train_rows, held_out) in enumerate(_folds(label, hyperparameters)):
        logger.info(
            "Cross-validation fold %d of %d (round %d): %d rows to train, %d held out.",
            index % kfold + 1,
            kfold,
            index // kfold + 1,
            len(train_rows),
            len(held_out),
        )
        model, final = _train_fold(matrix, train_rows, held_out, hyperparameters, stop)
        predictions.record(held_out, model.predict(matrix.slice(held_out)))
        models.append(model)
        scores.append(final)
        if len(models) % kfold == 0:
            logger.info("Cross-validation round %d: mean over its folds.", len(models) // kfold)
            _print_mean(hyperparameters.num_round, scores[-kfold:])
    if repeats > 1:
        logger.info("Cross-validation: mean over all %d rounds.", repeats)
        _print_mean(hyperparameters.num_round, scores)
    stop.enter(MODEL_SAVE, f"{len(models)} fold models")
    _save(models, predictions, settings)
    stop.outcome = f"the {len(models)} fold models and the out-of-fold predictions were written"


def _warn_about_checkpoints(settings: Settings) -> None:
    from container.training.job import checkpoint_dir

    directory = checkpoint_dir(settings)
    if directory is not None:
        logger.warning(
            "A k-fold job neither writes nor resumes checkpoints: %s is left as it is.", directory
        )


def _load(
    settings: Settings,
    channels: Mapping[str, Any],
    hyperparameters: Hyperparameters,
    has_validation: bool,
) -> Dataset:
    """The train channel's rows, then the validation channel's, checked as training checks them."""
    loaded = []
    for channel in ("train", "validation") if has_validation else ("train",):
        dataset = data_loading.load_channel(
            channel,
            settings.paths.channel_dir(channel),
            channels.get(channel, {}),
            hyperparameters.csv_weights,
        )
        data_loading.check_labels(dataset, hyperparameters)
        loaded.append(dataset)
    if len(loaded) == 1:
        return loaded[0]
    train, validation = loaded
    data_loading.match_width(validation, train)
    return _join(train, validation)


def _join(train: Dataset, validation: Dataset) -> Dataset:
    """One dataset of both channels' rows, train's first (the built-in reads both as one)."""
    if (train.weight is None) != (validation.weight is None):
        raise ClientError(
            "With '_kfold' the train and validation channels are joined, but only one of them "
            "has instance weights: give both channels weights, or neither."
        )
    if train.is_sparse != validation.is_sparse:
        raise ClientError(
            "With '_kfold' the train and validation channels are joined, but one is sparse "
            f"({data_loading.LIBSVM} or sparse RecordIO) and the other dense: give both "
            "channels the same format."
        )
    if train.is_sparse:
        features: pa.Table | sp.csr_matrix = sp.vstack(
            [train.features, validation.features], format="csr"
        )
    else:
        other = validation.features.rename_columns(train.features.column_names)
        features = pa.concat_tables([train.features, other.cast(train.features.schema)])
    return replace(
        train,
        channel="train+validation",
        features=features,
        label=np.concatenate([train.label, validation.label]),
        weight=None if train.weight is None else np.concatenate([train.weight, validation.weight]),
        files=train.files + validation.files,
        bytes_read=train.bytes_read + validation.bytes_read,
    )


def is_classification(hyperparameters: Hyperparameters) -> bool:
    """The built-in's rule: stratified folds and class votes for binary:* and multi:*."""
    return hyperparameters.objective.startswith(("binary:", "multi:"))


def _folds(
    label: np.ndarray, hyperparameters: Hyperparameters
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(training rows, held-out rows) for every fold of every round, round after round."""
    _allow_scikit_learn()
    from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

    kfold, repeats = hyperparameters.kfold, hyperparameters.num_cv_round
    seed = int(hyperparameters.xgboost_params.get("seed", 0)) % 2**32
    stratified = is_classification(hyperparameters)
    kind = RepeatedStratifiedKFold if stratified else RepeatedKFold
    splitter = kind(n_splits=kfold, n_repeats=repeats, random_state=seed)
    try:
        # Every split is made before the first fold trains, so bad settings fail at once.
        splits = list(splitter.split(np.zeros(len(label)), label if stratified else None))
    except ValueError as exc:
        raise ClientError(
            f"Hyperparameter '_kfold'={kfold} cannot split the {len(label)} rows: {exc}"
        ) from None
    yield from splits


def _allow_scikit_learn() -> None:
    """Algorithm mode hides scikit-learn from xgboost (job.keep_scikit_learn_out); the folds
    are scikit-learn's, so let it be imported again."""
    if "sklearn" in sys.modules and sys.modules["sklearn"] is None:
        del sys.modules["sklearn"]


def _train_fold(
    matrix: xgb.DMatrix,
    train_rows: np.ndarray,
    held_out: np.ndarray,
    hyperparameters: Hyperparameters,
    stop: StopRequest,
) -> tuple[xgb.Booster, list[Score]]:
    """Train one fold's model; return it (cut at its best round) and its final scores."""
    dtrain, dvalid = matrix.slice(train_rows), matrix.slice(held_out)
    evals = [(dtrain, "train"), (dvalid, "validation")]
    booster = xgb.Booster(hyperparameters.xgboost_params, [dtrain, dvalid])
    rounds = hyperparameters.early_stopping_rounds
    metrics = python_metrics.for_job(hyperparameters)
    try:
        result = boosting.boost(
            booster,
            dtrain,
            evals,
            num_round=hyperparameters.num_round,
            start_round=0,
            monitor=boosting.round_monitor(),
            stop=stop,
            early_stopping=(
                boosting.EarlyStopping(rounds, hyperparameters.watched_metric) if rounds else None
            ),
            python_metrics=metrics,
            last_metric=hyperparameters.tuning_metric,
        )
    except xgb.core.XGBoostError as exc:
        raise ClientError(f"XGBoost stopped training: {data_loading.first_line(exc)}") from None
    model = boosting.keep_best(result)
    final = boosting.evaluate(model, evals, result.rounds, metrics, hyperparameters.tuning_metric)
    return model, final


def _print_mean(num_round: int, scores: list[list[Score]]) -> None:
    """The built-in's summary line: `[num_round]`, then each metric's mean over the folds.

    It is the last metric line of the job, so it is the value automatic model tuning reads.
    """
    if not scores or not scores[0]:
        return
    means = [
        Score(first.data, first.metric, float(np.mean([fold[i].value for fold in scores])))
        for i, first in enumerate(scores[0])
    ]
    boosting.round_monitor().after_iteration(None, num_round, boosting.evals_log(means))


def _save(models: list[xgb.Booster], predictions: OutOfFoldPredictions, settings: Settings) -> None:
    from container.training.job import save_model

    for index, model in enumerate(models):
        save_model(model, settings.paths.model_dir / model_name(index))
    path = settings.paths.output_data_dir / PREDICTIONS_FILE
    predictions.write(path)
    logger.info("Wrote the out-of-fold predictions of %d rows to %s.", predictions.rows, path)


class OutOfFoldPredictions:
    """Each row's predictions from the models that held it out, one per cross-validation round.

    Written as the built-in writes `predictions.csv` (no header, `%f`): the label, then the
    mean prediction over the rounds; for classification the mean probability (of the predicted
    class) and the most frequent predicted label. Where the built-in takes `p > 0.5` as the
    label for every single-column classifier, labels here follow each objective as serving's
    `predicted_label` does (a margin above 0 for binary:logitraw, the class for multi:softmax).
    """

    def __init__(self, label: np.ndarray, repeats: int, objective: str) -> None:
        self.label = label
        self.repeats = repeats
        self.objective = objective
        self.classification = objective.startswith(("binary:", "multi:"))
        self.rows = len(label)
        self.seen = np.zeros(self.rows, dtype=np.int64)
        self.values: np.ndarray | None = None
        self.labels = np.full((self.rows, repeats), np.nan)

    def record(self, rows: np.ndarray, predictions: np.ndarray) -> None:
        """Keep the predictions for `rows` from the model that held them out."""
        repeat = self.seen[rows]
        if np.any(repeat >= self.repeats):
            raise RuntimeError("a row was held out more often than there are rounds")
        if self.classification:
            labels, predictions = _label_and_probability(self.objective, predictions)
            self.labels[rows, repeat] = labels
        if self.values is None:
            self.values = np.full((self.rows, self.repeats, *predictions.shape[1:]), np.nan)
        self.values[rows, repeat] = predictions
        self.seen[rows] += 1

    def table(self) -> np.ndarray:
        """One line per row: label, mean prediction(s) [, most frequent label]."""
        if self.values is None or np.any(self.seen != self.repeats):
            raise RuntimeError("some rows lack a held-out prediction for every round")
        mean = self.values.mean(axis=1).reshape(self.rows, -1)
        columns = [self.label.reshape(-1, 1), mean]
        if self.classification:
            from scipy import stats

            columns.append(stats.mode(self.labels, axis=1, keepdims=True).mode)
        return np.hstack(columns)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(path, self.table(), delimiter=",", fmt="%f")


def _label_and_probability(
    objective: str, predictions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The predicted class and the score for it, per row."""
    if predictions.ndim > 1:  # multi:softprob: one probability per class
        labels = predictions.argmax(axis=1)
        return labels, predictions[np.arange(len(labels)), labels]
    if objective == "binary:logistic":
        return (predictions > 0.5).astype(np.int64), predictions
    if objective == "binary:logitraw":
        return (predictions > 0).astype(np.int64), predictions
    return predictions, predictions  # binary:hinge and multi:softmax predict the class
