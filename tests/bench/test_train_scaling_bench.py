"""`python -m bench.train --scaling` on small sizes: both modes run; JSON and chart exist; a later
run of some sizes joins the stored points."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import REPO

pytestmark = pytest.mark.slow


def test_scaling_compares_in_memory_with_external_memory(
    out_dir: Path, positive: Callable[[Any], bool]
) -> None:
    argv = [sys.executable, "-m", "bench.train", "--out", str(out_dir), "--scaling", "3000,6000"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stdout + done.stderr

    results = json.loads((out_dir / "train_scaling.json").read_text())
    assert [point["rows"] for point in results["points"]] == [3000, 6000]
    for point in results["points"]:
        in_memory, external = point["in_memory"], point["external"]
        assert (in_memory["matrix"], external["matrix"]) == (
            "QuantileDMatrix",
            "ExtMemQuantileDMatrix",
        )
        assert in_memory["rounds"] == external["rounds"] == 100
        for run in (in_memory, external):
            assert positive(run["wall_s"]) and positive(run["peak_rss_bytes"])
        assert positive(point["external_vs_in_memory_wall"])
    assert (out_dir / "train_scaling.png").stat().st_size > 10_000
    assert "ext/in wall" in done.stdout

    # A size run on its own joins the stored ones; a size run again replaces its point.
    argv[-1] = "2000,6000"
    again = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=420)
    assert again.returncode == 0, again.stdout + again.stderr
    merged = json.loads((out_dir / "train_scaling.json").read_text())
    assert [point["rows"] for point in merged["points"]] == [2000, 3000, 6000]
    assert merged["points"][1] == results["points"][0]
    assert merged["points"][2] != results["points"][1]
    assert [run["sizes"] for run in merged["meta"]["runs"]] == [[3000, 6000], [2000, 6000]]
