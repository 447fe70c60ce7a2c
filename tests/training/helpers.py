"""Data for the training tests; their `/opt/ml` trees come from `tests.support.opt_ml`."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def csv_text(matrix: np.ndarray, fmt: str = "%.6g") -> str:
    return "\n".join(",".join(fmt % v for v in row) for row in matrix) + "\n"


def regression_rows(n: int = 300, features: int = 5, seed: int = 0) -> np.ndarray:
    """Label first, then features; the label is a noisy linear function of them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    y = x @ np.arange(1, features + 1) + rng.normal(scale=0.1, size=n)
    return np.column_stack([y, x])


def binary_rows(n: int = 300, features: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    return np.column_stack([(x[:, 0] + x[:, 1] > 0).astype(float), x])


def write_tree(directory: Path, files: dict[str, bytes | str]) -> Path:
    """Write `files` (relative name → content) under `directory`, folders included."""
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return directory
