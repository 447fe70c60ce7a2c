"""Every hyperparameter the container accepts, declared once, and their parsing and validation.

Values arrive as `sagemaker-training`'s `read_hyperparameters` leaves them: JSON-decoded where
they were valid JSON (`"10"` → 10, `"\\"multi:softmax\\""` → `multi:softmax`, `"[1, 2]"` → a
list) and strings otherwise. `parse_hyperparameters` turns them into a `Hyperparameters` object:
the parameters handed to XGBoost plus the few the container itself uses (`num_round`, ...).
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from container.errors import ClientError
from container.training.python_metrics import PYTHON_METRIC_NAMES, objective_problem

logger = logging.getLogger(__name__)


class Kind(Enum):
    """How a value is read from its string (or JSON-decoded) form."""

    INT = "an integer"
    FLOAT = "a number"
    BOOL = "true or false"
    CHOICE = "one of the listed values"
    STRING = "a string"
    STRING_LIST = "a comma-separated list or a JSON list of names"
    FLOAT_LIST = "a number or a JSON list of numbers"
    INT_TUPLE = "a tuple of integers such as (1,0,-1)"
    NESTED_INT_LIST = "a JSON list of lists of feature indices such as [[0,1],[2,3]]"


@dataclass(frozen=True)
class Range:
    """A closed or half-open interval; `None` bounds are unbounded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (
            self.high is not None and (value >= self.high if self.high_open else value > self.high)
        )

    def describe(self, name: str) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{_num(self.low)} {'<' if self.low_open else '<='} ")
        parts.append(name)
        if self.high is not None:
            parts.append(f" {'<' if self.high_open else '<='} {_num(self.high)}")
        return "".join(parts)


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its name, how to read it, what is allowed, where it goes."""

    name: str
    kind: Kind
    range: Range | None = None
    choices: tuple[str, ...] = ()
    default: Any = None
    aliases: tuple[str, ...] = ()
    to_xgboost: bool = True
    """False for the container's own settings (`num_round`, `csv_weights`, ...)."""
    deprecated: str | None = None
    """When set, the parameter is accepted, logged with this advice and not passed on."""
    required: bool = False


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_NONNEG = Range(0)
_UNIT = Range(0, 1)
_UNIT_OPEN_LOW = Range(0, 1, low_open=True)
_POSITIVE_INT = Range(1)
MAX_NUM_ROUND = 1_000_000
"""`num_round`'s upper bound. The built-in algorithm sets none (its tuning range stops at 4,000);
a million rounds already takes days on small data, and a bound stops a typo such as `1e30` from
running until the job's time limit."""
SHOWN_CHARACTERS = 80
"""How much of a key or value an error message quotes: a 10 MB key must not make a 10 MB line."""

OBJECTIVES = (
    "reg:squarederror",
    "reg:squaredlogerror",
    "reg:logistic",
    "reg:pseudohubererror",
    "reg:absoluteerror",
    "reg:quantileerror",
    "reg:gamma",
    "reg:tweedie",
    "reg:linear",
    "binary:logistic",
    "binary:logitraw",
    "binary:hinge",
    "count:poisson",
    "survival:cox",
    "survival:aft",
    "multi:softmax",
    "multi:softprob",
    "rank:ndcg",
    "rank:map",
    "rank:pairwise",
)

METRIC_NAMES = (
    "rmse",
    "rmsle",
    "mae",
    "mape",
    "mphe",
    "logloss",
    "error",
    "merror",
    "mlogloss",
    "auc",
    "aucpr",
    "pre",
    "ndcg",
    "map",
    "poisson-nloglik",
    "gamma-nloglik",
    "cox-nloglik",
    "gamma-deviance",
    "tweedie-nloglik",
    "quantile",
)
"""XGBoost's own metrics that training accepts."""
LABEL_BOUND_METRICS = ("aft-nloglik", "interval-regression-accuracy")
"""XGBoost metrics that need label bounds, which no channel format carries: refused."""
ALL_METRIC_NAMES = METRIC_NAMES + PYTHON_METRIC_NAMES
RANK_METRICS = ("ndcg", "map", "pre")
AT_RULE = (
    "Only error@T (T: the classification threshold), ndcg@N, map@N and pre@N (N >= 1: the "
    "top positions scored) and tweedie-nloglik@RHO (1 <= RHO < 2) take an @ argument, and only "
    "ndcg, map and pre (with or without @N) take a trailing '-'."
)
NO_LABEL_BOUNDS = (
    "needs each row's label as an interval (a lower and an upper bound), which no channel "
    "format carries: use survival:cox for right-censored survival times (the label is the "
    "time, negative when censored) or a reg:* objective on the observed times."
)

PARAMS: tuple[Param, ...] = (
    # The container's own settings.
    Param("num_round", Kind.INT, Range(1, MAX_NUM_ROUND), required=True, to_xgboost=False),
    Param("csv_weights", Kind.INT, Range(0, 1), default=0, to_xgboost=False),
    Param("early_stopping_rounds", Kind.INT, _POSITIVE_INT, to_xgboost=False),
    Param("checkpoint_frequency", Kind.INT, _POSITIVE_INT, default=10, to_xgboost=False),
    Param("checkpoints_to_keep", Kind.INT, _POSITIVE_INT, default=3, to_xgboost=False),
    Param("save_model_on_termination", Kind.BOOL, default=False, to_xgboost=False),
    Param("_tuning_objective_metric", Kind.STRING, to_xgboost=False),
    Param("_kfold", Kind.INT, Range(2), to_xgboost=False),
    Param("_num_cv_round", Kind.INT, _POSITIVE_INT, to_xgboost=False),
    Param(
        "external_memory",
        Kind.CHOICE,
        choices=("auto", "true", "false"),
        default="auto",
        to_xgboost=False,
    ),
    # General.
    Param("booster", Kind.CHOICE, choices=("gbtree", "gblinear", "dart")),
    Param("verbosity", Kind.INT, Range(0, 3)),
    Param("nthread", Kind.INT, _POSITIVE_INT),
    Param("device", Kind.CHOICE, choices=("cpu",)),
    Param("disable_default_eval_metric", Kind.BOOL),
    Param("validate_parameters", Kind.BOOL),
    # Tree booster.
    Param("eta", Kind.FLOAT, _UNIT, aliases=("learning_rate",)),
    Param("gamma", Kind.FLOAT, _NONNEG, aliases=("min_split_loss",)),
    Param("max_depth", Kind.INT, _NONNEG),
    Param("min_child_weight", Kind.FLOAT, _NONNEG),
    Param("max_delta_step", Kind.FLOAT, _NONNEG),
    Param("subsample", Kind.FLOAT, _UNIT_OPEN_LOW),
    Param("sampling_method", Kind.CHOICE, choices=("uniform", "gradient_based")),
    Param("colsample_bytree", Kind.FLOAT, _UNIT_OPEN_LOW),
    Param("colsample_bylevel", Kind.FLOAT, _UNIT_OPEN_LOW),
    Param("colsample_bynode", Kind.FLOAT, _UNIT_OPEN_LOW),
    Param("lambda", Kind.FLOAT, _NONNEG, aliases=("reg_lambda",)),
    Param("alpha", Kind.FLOAT, _NONNEG, aliases=("reg_alpha",)),
    Param("tree_method", Kind.CHOICE, choices=("auto", "exact", "approx", "hist")),
    Param("scale_pos_weight", Kind.FLOAT, Range(0, low_open=True)),
    Param("updater", Kind.STRING_LIST),
    Param("refresh_leaf", Kind.INT, Range(0, 1)),
    Param("process_type", Kind.CHOICE, choices=("default", "update")),
    Param("grow_policy", Kind.CHOICE, choices=("depthwise", "lossguide")),
    Param("max_leaves", Kind.INT, _NONNEG),
    Param("max_bin", Kind.INT, Range(2)),
    Param("num_parallel_tree", Kind.INT, _POSITIVE_INT),
    Param("monotone_constraints", Kind.INT_TUPLE),
    Param("interaction_constraints", Kind.NESTED_INT_LIST),
    Param("multi_strategy", Kind.CHOICE, choices=("one_output_per_tree", "multi_output_tree")),
    Param("max_cat_to_onehot", Kind.INT, _POSITIVE_INT),
    Param("max_cat_threshold", Kind.INT, _POSITIVE_INT),
    Param("max_cached_hist_node", Kind.INT, _POSITIVE_INT),
    # Dart booster.
    Param("sample_type", Kind.CHOICE, choices=("uniform", "weighted")),
    Param("normalize_type", Kind.CHOICE, choices=("tree", "forest")),
    Param("rate_drop", Kind.FLOAT, _UNIT),
    Param("one_drop", Kind.INT, Range(0, 1)),
    Param("skip_drop", Kind.FLOAT, _UNIT),
    # Linear booster.
    Param(
        "feature_selector",
        Kind.CHOICE,
        choices=("cyclic", "shuffle", "random", "greedy", "thrifty"),
    ),
    Param("top_k", Kind.INT, _NONNEG),
    # Learning task.
    Param("objective", Kind.CHOICE, choices=OBJECTIVES, default="reg:squarederror"),
    Param("num_class", Kind.INT, Range(2)),
    Param("base_score", Kind.FLOAT),
    Param("eval_metric", Kind.STRING_LIST),
    Param("seed", Kind.INT, Range(-(2**31), 2**31 - 1), default=0, aliases=("random_state",)),
    Param("seed_per_iteration", Kind.BOOL, default=True),
    Param("tweedie_variance_power", Kind.FLOAT, Range(1, 2, low_open=True, high_open=True)),
    Param("huber_slope", Kind.FLOAT, Range(0, low_open=True)),
    Param("quantile_alpha", Kind.FLOAT_LIST, Range(0, 1, low_open=True, high_open=True)),
    Param("aft_loss_distribution", Kind.CHOICE, choices=("normal", "logistic", "extreme")),
    Param("aft_loss_distribution_scale", Kind.FLOAT, Range(0, low_open=True)),
    Param("lambdarank_pair_method", Kind.CHOICE, choices=("mean", "topk")),
    Param("lambdarank_num_pair_per_sample", Kind.INT, _POSITIVE_INT),
    Param("lambdarank_normalization", Kind.BOOL),
    Param("lambdarank_score_normalization", Kind.BOOL),
    Param("lambdarank_unbiased", Kind.BOOL),
    Param("lambdarank_bias_norm", Kind.FLOAT, _NONNEG),
    Param("ndcg_exp_gain", Kind.BOOL),
    # Accepted for compatibility with the built-in algorithm; XGBoost 2+ removed them.
    Param("silent", Kind.INT, Range(0, 1), to_xgboost=False, deprecated="use 'verbosity'"),
    Param("sketch_eps", Kind.FLOAT, to_xgboost=False, deprecated="XGBoost 2 uses max_bin"),
    Param("predictor", Kind.STRING, to_xgboost=False, deprecated="XGBoost 2 chooses itself"),
    Param("dsplit", Kind.STRING, to_xgboost=False, deprecated="XGBoost 2 removed it"),
    Param("lambda_bias", Kind.FLOAT, to_xgboost=False, deprecated="XGBoost 2 removed it"),
    Param("prob_buffer_row", Kind.FLOAT, to_xgboost=False, deprecated="XGBoost 2 removed it"),
    Param(
        "single_precision_histogram",
        Kind.BOOL,
        to_xgboost=False,
        deprecated="XGBoost 2 always uses it",
    ),
    Param(
        "deterministic_histogram",
        Kind.BOOL,
        to_xgboost=False,
        deprecated="XGBoost 2 always uses it",
    ),
)

PARAMS_BY_NAME: dict[str, Param] = {p.name: p for p in PARAMS}
ALIASES: dict[str, str] = {alias: p.name for p in PARAMS for alias in p.aliases}
IGNORED_PREFIX = "sagemaker_"
"""The SDK's own keys (`sagemaker_program`, `sagemaker_region`, ...): not ours, never errors."""


@dataclass(frozen=True)
class Hyperparameters:
    """Validated hyperparameters: XGBoost's `params` plus the container's own settings."""

    xgboost_params: dict[str, Any]
    num_round: int
    csv_weights: bool = False
    early_stopping_rounds: int | None = None
    checkpoint_frequency: int = 10
    checkpoints_to_keep: int = 3
    save_model_on_termination: bool = False
    tuning_channel: str | None = None
    """`validation` or `train` when automatic model tuning watches a metric there."""
    kfold: int | None = None
    """`_kfold`: train this many models by cross-validation (SageMaker Autopilot sets it)."""
    num_cv_round: int = 1
    """`_num_cv_round`: how many times the cross-validation is repeated on new folds."""
    external_memory: str = "auto"
    """`auto`, `true` or `false`: train from an on-disk cache when the data would not fit in
    memory, always, or never (`container.training.external_memory` has the rule)."""
    tuning_metric: str | None = None
    """The metric automatic model tuning reads (`f1` of `validation:f1`); printed last."""
    watched_metric: str | None = None
    """What early stopping watches, as the built-in picks it: the tuning metric, else the last
    of `eval_metric`, else (None) the last metric XGBoost prints."""
    python_metrics: tuple[str, ...] = ()
    """Metrics of `eval_metric` computed in Python (`container.training.python_metrics`)."""
    warnings: tuple[str, ...] = field(default=())

    @property
    def objective(self) -> str:
        return str(self.xgboost_params.get("objective", "reg:squarederror"))

    @property
    def num_class(self) -> int | None:
        value = self.xgboost_params.get("num_class")
        return int(value) if value is not None else None

    @property
    def uses_quantile_matrix(self) -> bool:
        """Whether training can ingest into a `QuantileDMatrix` (the `hist` tree method)."""
        booster = self.xgboost_params.get("booster", "gbtree")
        method = self.xgboost_params.get("tree_method", "auto")
        return booster != "gblinear" and method in ("auto", "hist")


class _Invalid(Exception):
    """One value that cannot be read; turned into a sentence naming the key."""


def parse_hyperparameters(raw: Mapping[str, Any]) -> Hyperparameters:
    """Convert and validate `raw` (as read from hyperparameters.json); raise `ClientError`."""
    errors: list[str] = []
    warnings: list[str] = []
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith(IGNORED_PREFIX):
            continue
        name = ALIASES.get(key, key)
        param = PARAMS_BY_NAME.get(name)
        if param is None:
            errors.append(_unknown_key_message(key))
            continue
        if name in values:
            errors.append(f"Hyperparameter '{key}' is given twice (also as an alias of '{name}').")
            continue
        try:
            values[name] = convert(param, value)
        except _Invalid as exc:
            errors.append(f"Hyperparameter '{key}'={_show(value)} is invalid: {exc}")
    for param in PARAMS:
        if param.required and param.name not in values:
            errors.append(f"Missing required hyperparameter: {param.name}.")
    if not errors:
        errors.extend(_check_dependencies(values, warnings))
    if errors:
        raise ClientError(" ".join(errors))
    return _build(values, warnings)


def convert(param: Param, value: Any) -> Any:
    """Read one value per its kind and check it against the allowed range or choices."""
    converted = _CONVERTERS[param.kind](value)
    if param.kind is Kind.CHOICE and converted not in param.choices:
        suggestion = _closest(str(converted), param.choices)
        raise _Invalid(f"allowed values are {', '.join(param.choices)}.{suggestion}")
    if param.range is not None:
        numbers = converted if isinstance(converted, list) else [converted]
        for number in numbers:
            if not param.range.contains(number):
                raise _Invalid(f"it must satisfy {param.range.describe(param.name)}.")
    return converted


def _show(value: Any) -> str:
    """A value as a message quotes it: repr'd (control characters escaped), cut when long."""
    return _shorten(repr(value) if isinstance(value, str) else json.dumps(value))


def _shorten(text: str) -> str:
    if len(text) <= SHOWN_CHARACTERS:
        return text
    return f"{text[:SHOWN_CHARACTERS]}... ({len(text):,} characters)"


def _closest(word: str, candidates: tuple[str, ...] | list[str]) -> str:
    match = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" Did you mean '{match[0]}'?" if match else ""


def _unknown_key_message(key: str) -> str:
    names = [*PARAMS_BY_NAME, *ALIASES]
    too_long = len(key) > SHOWN_CHARACTERS  # no name is that long: nothing to suggest
    suggestion = "" if too_long else _closest(key, names)
    shown = _shorten(repr(key))
    return (
        f"Unknown hyperparameter {shown}.{suggestion} "
        "docs/hyperparameters.md lists every accepted hyperparameter."
    )


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Invalid("expected an integer, not a boolean.")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if number.is_integer():
                return int(number)
    raise _Invalid("expected an integer.")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise _Invalid("expected a number, not a boolean.")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _Invalid("expected a number.") from None
    else:
        raise _Invalid("expected a number.")
    if not math.isfinite(number):
        raise _Invalid("expected a finite number.")
    return number


_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Invalid("expected true or false.")


def _to_string(value: Any) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise _Invalid("expected a non-empty string.")


def _to_string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise _Invalid("expected a comma-separated list or a JSON list.") from None
        else:
            value = text.split(",")
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    raise _Invalid("expected a comma-separated list or a JSON list of names.")


def _to_float_list(value: Any) -> float | list[float]:
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise _Invalid("expected a number or a JSON list of numbers.") from None
    if isinstance(value, list):
        if not value:
            raise _Invalid("expected at least one number.")
        return [_to_float(v) for v in value]
    return _to_float(value)


def _to_int_tuple(value: Any) -> list[int]:
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "([" and text[-1:] in ")]":
            text = text[1:-1]
        parts = [p for p in text.split(",") if p.strip()]
        value = parts
    if not isinstance(value, list | tuple) or not value:
        raise _Invalid("expected a tuple of -1, 0 and 1 such as (1,0,-1).")
    numbers = [_to_int(v) for v in value]
    if any(n not in (-1, 0, 1) for n in numbers):
        raise _Invalid("each constraint must be -1, 0 or 1, as in (1,0,-1).")
    return numbers


def _to_nested_int_list(value: Any) -> list[list[int]]:
    if isinstance(value, str):
        try:
            value = json.loads(value.strip())
        except ValueError:
            raise _Invalid("expected a JSON list of lists such as [[0,1],[2,3]].") from None
    if (
        isinstance(value, list)
        and value
        and all(isinstance(group, list) and group for group in value)
    ):
        groups = [[_to_int(i) for i in group] for group in value]
        if all(i >= 0 for group in groups for i in group):
            return groups
    raise _Invalid("expected a JSON list of lists of feature indices such as [[0,1],[2,3]].")


def _to_choice(value: Any) -> str:
    if isinstance(value, bool):  # `"true"` arrives JSON-decoded
        return "true" if value else "false"
    if isinstance(value, str):
        return value.strip()
    raise _Invalid("expected a string.")


_CONVERTERS: dict[Kind, Callable[[Any], Any]] = {
    Kind.INT: _to_int,
    Kind.FLOAT: _to_float,
    Kind.BOOL: _to_bool,
    Kind.CHOICE: _to_choice,
    Kind.STRING: _to_string,
    Kind.STRING_LIST: _to_string_list,
    Kind.FLOAT_LIST: _to_float_list,
    Kind.INT_TUPLE: _to_int_tuple,
    Kind.NESTED_INT_LIST: _to_nested_int_list,
}


def _check_metric(metric: str, key: str = "eval_metric") -> str | None:
    """A sentence when XGBoost or the Python metrics would not read `metric` as written."""
    name, at, argument = metric.partition("@")
    known = (*ALL_METRIC_NAMES, *LABEL_BOUND_METRICS)
    minus = argument.endswith("-") if at else (name.endswith("-") and name[:-1] in known)
    if minus:
        name, argument = (name, argument[:-1]) if at else (name[:-1], argument)
    if name in LABEL_BOUND_METRICS:
        return f"Metric '{metric}' {NO_LABEL_BOUNDS}"
    if name not in ALL_METRIC_NAMES:
        suggestion = _closest(name, ALL_METRIC_NAMES)
        return (
            f"Hyperparameter '{key}' has unknown metric '{metric}'.{suggestion} "
            f"Allowed: {', '.join(ALL_METRIC_NAMES)}. {AT_RULE}"
        )
    if (minus and name not in RANK_METRICS) or (at and not _reads_argument(name, argument)):
        effect = "misread" if name in ("error", "tweedie-nloglik", *RANK_METRICS) else "ignore"
        return (
            f"Metric '{metric}' is refused: XGBoost would {effect} what follows '{name}'. "
            + AT_RULE
        )
    if name == "tweedie-nloglik" and not at:
        return (
            "Metric 'tweedie-nloglik' needs its variance power: write tweedie-nloglik@RHO with "
            "1 <= RHO < 2, such as tweedie-nloglik@1.5."
        )
    return None


def _reads_argument(name: str, argument: str) -> bool:
    """Whether XGBoost 3 parses `name@argument` as meant (checked against its metric code)."""
    if name in RANK_METRICS:
        return re.fullmatch(r"[1-9][0-9]*", argument) is not None
    if name not in ("error", "tweedie-nloglik"):
        return False
    try:
        number = float(argument)
    except ValueError:
        return False
    return math.isfinite(number) and (name == "error" or 1 <= number < 2)


def _objective_problem(metric: str, objective: str, values: dict[str, Any]) -> str | None:
    """A sentence when `metric` makes no sense with the objective."""
    name = metric.split("@")[0]
    if name in ("auc", "aucpr") and not objective.startswith(("binary:", "rank:", "multi:")):
        return (
            f"Metric '{metric}' needs a classification or ranking objective "
            f"(binary:*, multi:*, rank:*), but objective is '{objective}'."
        )
    problem = objective_problem(name, objective)
    if problem is None and name in PYTHON_METRIC_NAMES:
        alphas = values.get("quantile_alpha")
        if isinstance(alphas, list) and len(alphas) > 1:
            problem = (
                f"Metric '{metric}' scores one prediction per row, but quantile_alpha asks for "
                f"{len(alphas)}: use quantile as the metric or give one quantile_alpha."
            )
    return problem


def _check_dependencies(values: dict[str, Any], warnings: list[str]) -> list[str]:
    """Rules that involve more than one hyperparameter; returns error sentences."""
    errors: list[str] = []
    objective = values.get("objective", "reg:squarederror")
    if values.get("external_memory") == "true":
        method = values.get("tree_method", "auto")
        if values.get("booster") == "gblinear" or method not in ("auto", "hist"):
            errors.append(
                "Hyperparameter 'external_memory'=true needs tree_method hist (or auto) and a "
                "tree booster: XGBoost's external-memory matrix holds histogram bins."
            )
        if "_kfold" in values:
            errors.append(
                "Hyperparameter 'external_memory'=true cannot be used with '_kfold': "
                "cross-validation slices a matrix held in memory."
            )
    if objective.startswith("multi:") and "num_class" not in values:
        errors.append(
            f"Hyperparameter 'num_class' is required when objective is '{objective}': "
            "set it to the number of classes (labels are 0 .. num_class-1)."
        )
    if "num_class" in values and not objective.startswith("multi:"):
        errors.append(
            f"Hyperparameter 'num_class' only applies to multi:softmax and multi:softprob, "
            f"but objective is '{objective}': remove num_class or change the objective."
        )
    if "quantile_alpha" in values and objective != "reg:quantileerror":
        errors.append(
            "Hyperparameter 'quantile_alpha' only applies to objective 'reg:quantileerror'."
        )
    rank_keys = sorted(k for k in values if k.startswith("lambdarank_") or k == "ndcg_exp_gain")
    if rank_keys and not objective.startswith("rank:"):
        errors.append(
            f"Hyperparameter '{rank_keys[0]}' only applies to rank:* objectives, "
            f"but objective is '{objective}'."
        )
    if objective == "survival:aft":
        errors.append(f"Objective 'survival:aft' {NO_LABEL_BOUNDS}")
    for metric in values.get("eval_metric", []):
        problem = _check_metric(metric) or _objective_problem(metric, objective, values)
        if problem:
            errors.append(problem)
    for key in ("monotone_constraints", "interaction_constraints"):
        if key in values and values.get("booster") == "gblinear":
            errors.append(f"Hyperparameter '{key}' needs a tree booster, not gblinear.")
    tuning = values.get("_tuning_objective_metric")
    if tuning is not None:
        channel, _, metric = tuning.partition(":")
        if channel not in ("train", "validation") or not metric:
            errors.append(
                f"Hyperparameter '_tuning_objective_metric'={tuning!r} is invalid: expected "
                "'validation:METRIC' or 'train:METRIC' with an XGBoost metric such as "
                "'validation:rmse'."
            )
        else:
            problem = _check_metric(metric, "_tuning_objective_metric") or _objective_problem(
                metric, objective, values
            )
            if problem:
                errors.append(problem)
    errors.extend(_check_cross_validation(values, objective))
    if values.get("silent") is not None:
        warnings.append(
            "Hyperparameter 'silent' is deprecated: use 'verbosity' (0 silent .. 3 debug); "
            f"silent={values['silent']} is read as verbosity={0 if values['silent'] else 1}."
        )
    if objective == "reg:linear":
        warnings.append("Objective 'reg:linear' is deprecated: using 'reg:squarederror'.")
    return list(dict.fromkeys(errors))  # a tuning metric also in eval_metric is told once


def _check_cross_validation(values: dict[str, Any], objective: str) -> list[str]:
    """`_num_cv_round` repeats a `_kfold` cross-validation; ranking groups cannot be split."""
    if "_num_cv_round" in values and "_kfold" not in values:
        return [
            "Hyperparameter '_num_cv_round' repeats a k-fold cross-validation, but '_kfold' is "
            "not set: set _kfold (2 or more) or remove _num_cv_round."
        ]
    if "_kfold" in values and objective.startswith("rank:"):
        return [
            f"Hyperparameter '_kfold' splits rows into folds at random, which would cut the "
            f"query groups that objective '{objective}' ranks within: remove _kfold."
        ]
    return []


def _build(values: dict[str, Any], warnings: list[str]) -> Hyperparameters:
    params: dict[str, Any] = {}
    for param in PARAMS:
        value = values.get(param.name, param.default)
        if param.deprecated and param.name in values and param.name != "silent":
            warnings.append(
                f"Hyperparameter '{param.name}' is no longer used by XGBoost "
                f"({param.deprecated}); ignoring it."
            )
        if value is None or not param.to_xgboost:
            continue
        params[param.name] = value
    if "silent" in values and "verbosity" not in values:
        params["verbosity"] = 0 if values["silent"] else 1
    if params.get("objective") == "reg:linear":
        params["objective"] = "reg:squarederror"
    if "monotone_constraints" in params:
        params["monotone_constraints"] = "(" + ",".join(map(str, params["monotone_constraints"]))
        params["monotone_constraints"] += ")"
    if "interaction_constraints" in params:
        params["interaction_constraints"] = json.dumps(params["interaction_constraints"])
    if "updater" in params:
        params["updater"] = ",".join(params["updater"])
    tuning = values.get("_tuning_objective_metric")
    tuning_metric = tuning.partition(":")[2] if tuning else None
    metrics = list(values.get("eval_metric", []))
    if tuning_metric and tuning_metric not in metrics:
        metrics.append(tuning_metric)
    params.pop("eval_metric", None)
    if any(m not in PYTHON_METRIC_NAMES for m in metrics):
        params["eval_metric"] = [m for m in metrics if m not in PYTHON_METRIC_NAMES]
    given = values.get("eval_metric")
    for message in warnings:
        logger.warning(message)
    return Hyperparameters(
        xgboost_params=params,
        num_round=values["num_round"],
        csv_weights=bool(values.get("csv_weights", 0)),
        early_stopping_rounds=values.get("early_stopping_rounds"),
        checkpoint_frequency=values.get("checkpoint_frequency", 10),
        checkpoints_to_keep=values.get("checkpoints_to_keep", 3),
        save_model_on_termination=values.get("save_model_on_termination", False),
        tuning_channel=tuning.partition(":")[0] if tuning else None,
        kfold=values.get("_kfold"),
        num_cv_round=values.get("_num_cv_round", 1),
        external_memory=values.get("external_memory", "auto"),
        tuning_metric=tuning_metric,
        watched_metric=tuning_metric or (given[-1] if given else None),
        python_metrics=tuple(m for m in metrics if m in PYTHON_METRIC_NAMES),
        warnings=tuple(warnings),
    )
