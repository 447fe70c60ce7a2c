"""`python -m bench.mme --quick` runs end to end against the real `./serve` in multi-model
mode and the single-model `./serve`, and writes every figure (no timings asserted: the goals
live in the benchmark)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

MODELS = 6


def test_quick_run_measures_every_figure(
    tmp_path: Path, run_bench: Callable[..., Any], positive: Callable[[Any], bool]
) -> None:
    results = run_bench("mme", tmp_path, "--quick", "--models", str(MODELS), "--rounds", "10")
    assert results["meta"]["models"] == MODELS
    assert results["loads"]["n"] == MODELS
    assert positive(results["loads"]["loads_per_s"])
    for part in ("load", "first_invoke", "load_plus_first_invoke"):
        assert positive(results["cold_invoke"][part]["p50_ms"]), part
    for scenario in ("1row_c1", "1row_c8"):
        warm = results["warm_invoke"][scenario]
        assert positive(warm["p50_ratio"]), scenario
        for server in ("single_model", "multi_model"):
            assert all(r["errors"] == 0 and r["requests"] > 0 for r in warm["rounds"][server])
    memory = results["memory"]
    assert positive(memory["estimate_per_copy_bytes"])
    assert memory["workers_rss_after_loads_bytes"] > memory["workers_rss_idle_bytes"]
    assert "warm 1row_c1: multi-model p50" in results["_stdout"]
