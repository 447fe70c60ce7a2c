"""Predict and select what to return: the built-in algorithm's output keys, per objective.

`SAGEMAKER_INFERENCE_OUTPUT` (validated at start-up) or a request's custom attribute
`inference_output=...` picks keys such as `predicted_label` and `probabilities`; without either,
the answer is the booster's prediction under the key `score`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from container.errors import BadRequest
from container.serving.dense_predict import DensePredictor
from container.serving.model_loading import LoadedModel

SCORE = "score"
PREDICTED_LABEL = "predicted_label"
LABELS = "labels"
PROBABILITY = "probability"
PROBABILITIES = "probabilities"
RAW_SCORE = "raw_score"
RAW_SCORES = "raw_scores"
PREDICTED_SCORE = "predicted_score"
OUTPUT_KEYS = (
    PREDICTED_LABEL,
    LABELS,
    PROBABILITY,
    PROBABILITIES,
    RAW_SCORE,
    RAW_SCORES,
    PREDICTED_SCORE,
)
_CLASSIFIER_KEYS = (PREDICTED_LABEL, LABELS, RAW_SCORE, RAW_SCORES)
_PROBABILISTIC_KEYS = (PREDICTED_LABEL, LABELS, PROBABILITY, PROBABILITIES, RAW_SCORE, RAW_SCORES)
KEYS_BY_OBJECTIVE: dict[str, tuple[str, ...]] = {
    "binary:logistic": _PROBABILISTIC_KEYS,
    "multi:softprob": _PROBABILISTIC_KEYS,
    "binary:logitraw": _CLASSIFIER_KEYS,
    "binary:hinge": _CLASSIFIER_KEYS,
    "multi:softmax": _CLASSIFIER_KEYS,
}
"""Keys each classification objective answers; every other objective answers predicted_score."""

Features = np.ndarray | scipy.sparse.csr_matrix


@dataclass(frozen=True)
class Output:
    """Predictions as named columns, each an array with one entry (or one row) per input row.

    `selected` is False for the default `score` answer: a 2-D score (multi:softprob) is then
    written as plain values, while a selected list-valued key is written as one list per row.
    """

    columns: tuple[tuple[str, np.ndarray], ...]
    selected: bool

    @property
    def num_rows(self) -> int:
        return len(self.columns[0][1])


def valid_keys(objective: str) -> tuple[str, ...]:
    """The output keys `objective` can answer."""
    return KEYS_BY_OBJECTIVE.get(objective, (PREDICTED_SCORE,))


def parse_output_keys(raw: str | tuple[str, ...], objective: str, source: str) -> tuple[str, ...]:
    """Validate output keys for `objective`; raise `BadRequest` naming `source` if they don't fit.

    `raw` is a comma-separated string or a tuple of keys; an empty selection means `score`.
    """
    keys = raw if isinstance(raw, tuple) else tuple(raw.split(","))
    keys = tuple(dict.fromkeys(k.strip().lower() for k in keys if k.strip()))
    unknown = [k for k in keys if k not in OUTPUT_KEYS]
    if unknown:
        raise BadRequest(
            f"{source}: unknown output key(s) {', '.join(unknown)}; "
            f"the keys are {', '.join(OUTPUT_KEYS)}."
        )
    allowed = valid_keys(objective)
    unfit = [k for k in keys if k not in allowed]
    if unfit:
        raise BadRequest(
            f"{source}: {', '.join(unfit)} cannot be computed for a model with objective "
            f"{objective}; it answers {', '.join(allowed)}."
        )
    return keys


class Predictor:
    """Runs the booster on a feature matrix and shapes the answer into output columns."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self._dense = [DensePredictor(booster) for booster in model.boosters]

    def predict(self, features: Features) -> np.ndarray:
        """The booster's predictions for `features` (float32 rows or CSR); 400 on wrong width."""
        expected = self.model.num_features
        if isinstance(features, scipy.sparse.csr_matrix):
            features = self._fit_sparse(features, expected)
        elif features.shape[1] != expected:
            raise BadRequest(
                f"Each row must have {expected} features (the model was trained on {expected}); "
                f"got {features.shape[1]}. Send the features only, without the label column."
            )
        else:
            bad = np.isinf(features)
            if bad.any():
                row, column = (int(i) + 1 for i in np.argwhere(bad)[0])
                raise BadRequest(
                    f"Row {row}, column {column} is infinite; send a finite number, or leave the "
                    "field empty (or nan) for a missing value."
                )
            return _mean([predict(features) for predict in self._dense])
        return _mean(
            [b.inplace_predict(features, validate_features=False) for b in self.model.boosters]
        )

    def predict_other(self, data: object) -> np.ndarray:
        """Predictions for what a user's input_fn returned: an `xgb.DMatrix` or a DataFrame."""
        import xgboost as xgb

        if isinstance(data, xgb.DMatrix):
            return _mean([booster.predict(data) for booster in self.model.boosters])
        return _mean([booster.inplace_predict(data) for booster in self.model.boosters])

    @staticmethod
    def _fit_sparse(features: scipy.sparse.csr_matrix, expected: int) -> scipy.sparse.csr_matrix:
        """Widen sparse rows to the model's width (absent trailing indices are missing values)."""
        if features.shape[1] > expected:
            raise BadRequest(
                f"Feature index {features.shape[1] - 1} is out of range: the model has {expected} "
                f"features, so indices run from 0 to {expected - 1}."
            )
        bad = np.flatnonzero(np.isinf(features.data))
        if bad.size:
            row = int(np.searchsorted(features.indptr, bad[0], side="right"))
            raise BadRequest(
                f"Row {row}, index {int(features.indices[bad[0]])} is infinite; send a finite "
                "number, or leave the index out for a missing value."
            )
        if features.shape[1] < expected:
            features = scipy.sparse.csr_matrix(
                (features.data, features.indices, features.indptr),
                shape=(features.shape[0], expected),
            )
        return features

    def output(self, raw: np.ndarray, keys: tuple[str, ...]) -> Output:
        """Shape raw predictions into the columns for `keys` (`score` when `keys` is empty)."""
        if not keys:
            return Output(((SCORE, raw),), selected=False)
        return Output(tuple((key, self._column(key, raw)) for key in keys), selected=True)

    def _column(self, key: str, raw: np.ndarray) -> np.ndarray:
        objective = self.model.objective
        n = len(raw)
        if key == PREDICTED_SCORE:
            return raw
        if objective == "multi:softprob":
            if key == PREDICTED_LABEL:
                return raw.argmax(axis=1)
            if key == LABELS:
                return np.broadcast_to(np.arange(raw.shape[1]), raw.shape)
            if key in (PROBABILITY, RAW_SCORE):
                return raw.max(axis=1)
            return raw  # probabilities, raw_scores
        if key == LABELS:
            classes = max(self.model.num_class, 2) if objective == "multi:softmax" else 2
            return np.broadcast_to(np.arange(classes), (n, classes))
        if key == PREDICTED_LABEL:
            if objective == "binary:logistic":
                return (raw > 0.5).astype(np.int64)
            if objective == "binary:logitraw":
                return (raw > 0).astype(np.int64)
            return raw.astype(np.int64)  # binary:hinge and multi:softmax predict the class
        if key in (PROBABILITY, RAW_SCORE):
            return raw
        # probabilities, raw_scores: [1 - p, p], as the built-in algorithm answers
        return np.stack([1.0 - raw, raw], axis=1)


def _mean(predictions: list[np.ndarray]) -> np.ndarray:
    """One model's predictions as they are; a cross-validation ensemble's averaged, as the
    built-in averages them (the objective's outputs: probabilities, not margins)."""
    return predictions[0] if len(predictions) == 1 else np.mean(predictions, axis=0)
