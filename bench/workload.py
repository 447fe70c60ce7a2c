"""Synthetic data and models shared by the benchmarks: what the built-in algorithm would see.

Features are float32 written in their shortest round-trip form, so every parser (numpy, pandas,
pyarrow, our server) reads back exactly the same numbers and predictions can be compared.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import xgboost as xgb

FEATURES = 50
DEPTH = 6
CLASSES = 10


@dataclass(frozen=True)
class ModelSpec:
    """One benchmark model: the objective and how many trees it grows."""

    name: str
    objective: str
    rounds: int
    num_class: int = 1

    def params(self, nthread: int) -> dict[str, object]:
        params: dict[str, object] = {
            "objective": self.objective,
            "max_depth": DEPTH,
            "eta": 0.1,
            "tree_method": "hist",
            "nthread": nthread,
            "seed": 0,
        }
        if self.num_class > 1:
            params["num_class"] = self.num_class
        return params


def model_specs(rounds: int) -> list[ModelSpec]:
    """The two serving models of the benchmark: binary and 10-class softprob."""
    return [
        ModelSpec("binary", "binary:logistic", rounds),
        ModelSpec("softprob", "multi:softprob", rounds, CLASSES),
    ]


def make_features(rows: int, seed: int = 0) -> np.ndarray:
    """Standard-normal float32 features, `rows` × `FEATURES`."""
    return np.random.default_rng(seed).standard_normal((rows, FEATURES), dtype=np.float32)


def make_labels(features: np.ndarray, num_class: int, seed: int = 1) -> np.ndarray:
    """Labels that depend on the features non-linearly, so trees have something to learn."""
    rng = np.random.default_rng(seed)
    mixed = np.tanh(features[:, :10]) @ rng.standard_normal((10, max(num_class, 2)))
    mixed += 0.3 * rng.standard_normal(mixed.shape)
    if num_class <= 1:
        return (mixed[:, 0] > mixed[:, 1]).astype(np.float32)
    return mixed.argmax(axis=1).astype(np.float32)


def train_model(spec: ModelSpec, rows: int, path: Path, nthread: int) -> xgb.Booster:
    """Train `spec` on fresh synthetic rows and save it at `path` as UBJSON."""
    features = make_features(rows, seed=7)
    labels = make_labels(features, spec.num_class)
    booster = xgb.train(
        spec.params(nthread), xgb.DMatrix(features, label=labels), num_boost_round=spec.rounds
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(booster.save_raw("ubj"))  # what `xgboost-model` holds, without a warning
    return booster


def to_csv(columns: np.ndarray) -> bytes:
    """CSV bytes without header, one row per line, float32 in shortest round-trip form."""
    table = pa.table({f"c{i}": columns[:, i] for i in range(columns.shape[1])})
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


def write_training_csv(path: Path, rows: int, chunk_rows: int = 100_000) -> None:
    """A label-first CSV (the built-in algorithm's training layout) of `rows` × `FEATURES`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        for start in range(0, rows, chunk_rows):
            features = make_features(min(chunk_rows, rows - start), seed=start + 11)
            labels = make_labels(features, 1)
            out.write(to_csv(np.column_stack([labels, features])))
    tmp.rename(path)
