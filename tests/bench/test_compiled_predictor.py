"""`python -m bench.compiled_predictor --quick`: the compiled model predicts what XGBoost does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def test_compiled_predictor_matches_xgboost(
    out_dir: Path, run_bench: Callable[..., Any], positive: Callable[[Any], bool]
) -> None:
    results = run_bench("compiled_predictor", out_dir, "--quick")
    assert set(results["models"]) == {"binary", "softprob"}
    for name, model in results["models"].items():
        assert model["identical_within_float32"], name
        assert model["max_abs_diff"] <= 1e-6, name
        assert positive(model["startup"]["compile_s"]), name
        assert all(positive(v) for v in model["timings"].values()), name
        assert positive(model["speedup_1row_predict"]), name
