"""The hyperparameter table: conversion, aliases, validation messages, dependencies."""

from __future__ import annotations

import json

import example_hyperparameters
import numpy as np
import pytest
import xgboost as xgb

from container.errors import ClientError
from container.training.hyperparameters import (
    ALIASES,
    PARAMS,
    PARAMS_BY_NAME,
    parse_hyperparameters,
)

SAGEMAKER_EXAMPLE = example_hyperparameters.HYPERPARAMETERS


def decoded(raw: dict[str, str]) -> dict:
    """What sagemaker-training's read_hyperparameters hands over: JSON-decoded when it parses."""
    out = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def test_sagemaker_example_parses_with_silent_as_deprecated_verbosity() -> None:
    hp = parse_hyperparameters(decoded({k: str(v) for k, v in SAGEMAKER_EXAMPLE.items()}))
    assert hp.num_round == 10
    assert hp.xgboost_params["objective"] == "multi:softmax"
    assert hp.xgboost_params["num_class"] == 10
    assert hp.xgboost_params["max_depth"] == 5
    assert hp.xgboost_params["eta"] == 0.2
    assert hp.xgboost_params["verbosity"] == 1
    assert "silent" not in hp.xgboost_params
    assert any("'silent' is deprecated" in w for w in hp.warnings)


def test_json_encoded_string_values_work() -> None:
    raw = {"objective": '"binary:logistic"', "num_round": '"5"', "eval_metric": '["auc","logloss"]'}
    hp = parse_hyperparameters(decoded(raw))
    assert hp.objective == "binary:logistic"
    assert hp.num_round == 5
    assert hp.xgboost_params["eval_metric"] == ["auc", "logloss"]


def test_aliases_map_to_canonical_names() -> None:
    hp = parse_hyperparameters(
        {"num_round": 3, "learning_rate": "0.1", "reg_lambda": 2, "reg_alpha": "0.5"}
    )
    assert hp.xgboost_params["eta"] == 0.1
    assert hp.xgboost_params["lambda"] == 2.0
    assert hp.xgboost_params["alpha"] == 0.5


def test_sagemaker_keys_are_ignored() -> None:
    hp = parse_hyperparameters(
        {"num_round": 1, "sagemaker_program": "x.py", "sagemaker_region": '"eu-west-1"'}
    )
    assert not any(key.startswith("sagemaker_") for key in hp.xgboost_params)


def test_xgboost_2_and_3_additions_are_accepted() -> None:
    hp = parse_hyperparameters(
        {
            "num_round": 2,
            "objective": "reg:quantileerror",
            "quantile_alpha": "[0.1, 0.5, 0.9]",
            "device": "cpu",
            "multi_strategy": "multi_output_tree",
            "max_cat_to_onehot": 4,
        }
    )
    assert hp.xgboost_params["quantile_alpha"] == [0.1, 0.5, 0.9]
    assert hp.xgboost_params["multi_strategy"] == "multi_output_tree"
    ranking = parse_hyperparameters(
        {"num_round": 2, "objective": "rank:ndcg", "lambdarank_pair_method": "topk"}
    )
    assert ranking.xgboost_params["lambdarank_pair_method"] == "topk"


def test_constraints_are_passed_in_xgboost_syntax() -> None:
    hp = parse_hyperparameters(
        {
            "num_round": 1,
            "monotone_constraints": "(1,0,-1)",
            "interaction_constraints": "[[0,1],[2]]",
        }
    )
    assert hp.xgboost_params["monotone_constraints"] == "(1,0,-1)"
    assert hp.xgboost_params["interaction_constraints"] == "[[0, 1], [2]]"


def test_tuning_objective_metric_adds_the_metric() -> None:
    hp = parse_hyperparameters(
        {
            "num_round": 1,
            "objective": "binary:logistic",
            "_tuning_objective_metric": "validation:auc",
        }
    )
    assert hp.xgboost_params["eval_metric"] == ["auc"]


def test_reg_linear_is_read_as_squarederror() -> None:
    hp = parse_hyperparameters({"num_round": 1, "objective": "reg:linear"})
    assert hp.objective == "reg:squarederror"


def test_every_name_in_the_table_is_known_to_xgboost() -> None:
    """Each parameter we pass on is one XGBoost accepts (it warns about unknown ones)."""
    rows = xgb.DMatrix(np.arange(20.0).reshape(10, 2), label=np.arange(10.0))
    text = xgb.train({"tree_method": "hist"}, rows, 1).save_config()
    container_only = {p.name for p in PARAMS if not p.to_xgboost}
    passed = set(PARAMS_BY_NAME) - container_only
    # Parameters that only appear in the config once their booster/objective is chosen.
    conditional = {
        "sample_type", "normalize_type", "rate_drop", "one_drop", "skip_drop",
        "feature_selector", "top_k", "updater", "num_class", "eval_metric",
        "tweedie_variance_power", "huber_slope", "quantile_alpha", "aft_loss_distribution",
        "aft_loss_distribution_scale", "lambdarank_pair_method",
        "lambdarank_num_pair_per_sample", "lambdarank_normalization",
        "lambdarank_score_normalization", "lambdarank_unbiased", "lambdarank_bias_norm",
        "ndcg_exp_gain", "nthread", "verbosity", "device", "max_cat_threshold",
        "disable_default_eval_metric", "validate_parameters", "booster", "objective",
        "seed_per_iteration", "seed",
    }  # fmt: skip
    missing = [name for name in sorted(passed - conditional) if f'"{name}"' not in text]
    assert missing == []
    assert set(ALIASES) >= {"learning_rate", "min_split_loss", "reg_lambda", "reg_alpha"}


FAILURES = [
    ("missing num_round", {}, "Missing required hyperparameter: num_round."),
    (
        "misspelt key",
        {"num_round": 1, "max_dept": 3},
        "Unknown hyperparameter 'max_dept'. Did you mean 'max_depth'?",
    ),
    (
        "not an integer",
        {"num_round": "ten"},
        "Hyperparameter 'num_round'='ten' is invalid: expected an integer.",
    ),
    (
        "out of range",
        {"num_round": 1, "eta": 1.5},
        "Hyperparameter 'eta'=1.5 is invalid: it must satisfy 0 <= eta <= 1.",
    ),
    (
        "open interval",
        {"num_round": 1, "subsample": 0},
        "Hyperparameter 'subsample'=0 is invalid: it must satisfy 0 < subsample <= 1.",
    ),
    (
        "bad choice with suggestion",
        {"num_round": 1, "objective": "multi:softmx", "num_class": 3},
        "Hyperparameter 'objective'='multi:softmx' is invalid: allowed values are",
    ),
    (
        "multi without num_class",
        {"num_round": 1, "objective": "multi:softprob"},
        "Hyperparameter 'num_class' is required when objective is 'multi:softprob'",
    ),
    (
        "num_class without multi",
        {"num_round": 1, "num_class": 3},
        "Hyperparameter 'num_class' only applies to multi:softmax and multi:softprob",
    ),
    (
        "unknown metric",
        {"num_round": 1, "eval_metric": "rmsee"},
        "Hyperparameter 'eval_metric' has unknown metric 'rmsee'. Did you mean 'rmse'?",
    ),
    (
        "auc on regression",
        {"num_round": 1, "eval_metric": "auc"},
        "Metric 'auc' needs a classification or ranking objective",
    ),
    (
        "bad monotone constraint",
        {"num_round": 1, "monotone_constraints": "(1,2)"},
        "each constraint must be -1, 0 or 1",
    ),
    (
        "gpu device on a cpu image",
        {"num_round": 1, "device": "cuda"},
        "Hyperparameter 'device'='cuda' is invalid: allowed values are cpu.",
    ),
    (
        "quantile_alpha without quantile objective",
        {"num_round": 1, "quantile_alpha": 0.5},
        "'quantile_alpha' only applies to objective 'reg:quantileerror'",
    ),
    (
        "boolean where an integer is needed",
        {"num_round": True},
        "expected an integer, not a boolean",
    ),
    (
        "bad tuning metric",
        {"num_round": 1, "_tuning_objective_metric": "test:rmse"},
        "expected 'validation:METRIC' or 'train:METRIC'",
    ),
]


@pytest.mark.parametrize(
    ("raw", "message"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
def test_invalid_hyperparameters_name_key_value_and_what_is_allowed(
    raw: dict, message: str
) -> None:
    with pytest.raises(ClientError) as caught:
        parse_hyperparameters(raw)
    assert message in caught.value.message
    assert caught.value.status == 400


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ClientError) as caught:
        parse_hyperparameters({"eta": "fast", "colsample_bytre": 1})
    message = caught.value.message
    assert "'eta'='fast'" in message
    assert "Did you mean 'colsample_bytree'?" in message
    assert "Missing required hyperparameter: num_round." in message
