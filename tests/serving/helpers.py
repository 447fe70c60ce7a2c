"""Tiny real XGBoost models and request bodies shared by the serving tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import xgboost as xgb

from container.settings import MODEL_FILENAME

NUM_FEATURES = 4
ROWS = np.random.default_rng(7).random((60, NUM_FEATURES)).astype(np.float32)
ROWS[::7, 1] = np.nan

OBJECTIVES = {
    "binary:logistic": {},
    "binary:logitraw": {},
    "binary:hinge": {},
    "multi:softprob": {"num_class": 3},
    "multi:softmax": {"num_class": 3},
    "reg:squarederror": {},
}


def _labels(objective: str) -> np.ndarray:
    base = np.nan_to_num(ROWS[:, 0]) + np.nan_to_num(ROWS[:, 1])
    if objective.startswith("multi:"):
        return np.digitize(base, [0.7, 1.2]).astype(np.float32)
    if objective.startswith("binary:"):
        return (base > 1.0).astype(np.float32)
    return base


def train_booster(objective: str, rounds: int = 5) -> xgb.Booster:
    """A tiny real booster on `ROWS` for `objective`."""
    params = {"objective": objective, "max_depth": 3, "nthread": 1, **OBJECTIVES[objective]}
    return xgb.train(params, xgb.DMatrix(ROWS, _labels(objective)), rounds)


def save_model_dir(root: Path, booster: xgb.Booster, fmt: str = "json") -> Path:
    """Write `booster` as `root/model/xgboost-model` in `fmt` (json or ubj); return the dir."""
    model_dir = root / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / f"{MODEL_FILENAME}.{fmt}"))
    (model_dir / f"{MODEL_FILENAME}.{fmt}").rename(model_dir / MODEL_FILENAME)
    return model_dir


def model_dir_with_code(root: Path, code: str, booster: xgb.Booster | None = None) -> Path:
    """`root/model/xgboost-model` (a tiny binary:logistic booster) and `code/inference.py`."""
    model_dir = save_model_dir(root, booster or train_booster("binary:logistic"))
    (model_dir / "code").mkdir(exist_ok=True)
    (model_dir / "code" / "inference.py").write_text(textwrap.dedent(code))
    return model_dir


def csv_body(rows: np.ndarray) -> bytes:
    """Rows as CSV with empty fields for NaN."""
    lines = [",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()
