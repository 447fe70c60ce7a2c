"""`python -m bench.train` on a small CSV: both runs complete and the JSON holds sane numbers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def test_train_bench_measures_ours_and_bare(
    out_dir: Path, run_bench: Callable[..., Any], positive: Callable[[Any], bool]
) -> None:
    results = run_bench("train", out_dir, "--rows", "3000", "--repeat", "1")
    bare, ours = results["bare"], results["ours"]
    for phase in ("parse_s", "to_numpy_s", "quantile_dmatrix_s", "train_s"):
        assert positive(bare[phase]), phase
    assert bare["matrix_bytes"] == 3000 * 50 * 4
    assert ours["exit_code"] == 0 and ours["model_rounds"] == 100
    assert ours["ingest_rows"] == 3000 and positive(ours["read_mb_per_s"])
    assert positive(ours["wall_s"]) and positive(ours["peak_rss_bytes"])
    assert ours["wall_s"] > ours["ingest_s"] >= ours["read_s"] > 0
    assert [g["goal"] for g in results["goals"]] == [
        "wall time <= 1.1x bare parse + xgb.train",
        "peak RSS <= 2x the float32 matrix",
    ]
    assert all(positive(g["measured"]) for g in results["goals"])
