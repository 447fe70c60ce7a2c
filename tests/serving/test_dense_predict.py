"""The one-call prediction path gives exactly `Booster.inplace_predict`'s numbers and shapes."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from container.serving.dense_predict import DensePredictor

from .helpers import OBJECTIVES, ROWS, train_booster


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
@pytest.mark.parametrize("rows", [1, 7, len(ROWS)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_same_predictions_as_inplace_predict(objective: str, rows: int, order: str) -> None:
    booster = train_booster(objective)
    features = np.asarray(ROWS[:rows], order=order)
    got = DensePredictor(booster)(features)
    expected = booster.inplace_predict(features, validate_features=False)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_multi_target_regression_keeps_one_column_per_target() -> None:
    labels = np.column_stack([np.nan_to_num(ROWS[:, 0]), np.nan_to_num(ROWS[:, 2])])
    booster = xgb.train(
        {"objective": "reg:squarederror", "tree_method": "hist", "nthread": 1},
        xgb.DMatrix(ROWS, labels),
        3,
    )
    got = DensePredictor(booster)(ROWS[:5])
    assert got.shape == (5, 2)
    np.testing.assert_array_equal(got, booster.inplace_predict(ROWS[:5]))


def test_answers_do_not_share_memory_between_calls() -> None:
    """XGBoost reuses its output buffer; each answer must be a copy that later calls leave be."""
    predict = DensePredictor(train_booster("binary:logistic"))
    first = predict(ROWS[:3])
    kept = first.copy()
    predict(ROWS[3:6])
    np.testing.assert_array_equal(first, kept)


def test_a_width_xgboost_refuses_raises_its_error() -> None:
    predict = DensePredictor(train_booster("binary:logistic"))
    with pytest.raises(xgb.core.XGBoostError):
        predict(np.ones((2, ROWS.shape[1] + 3), dtype=np.float32))
