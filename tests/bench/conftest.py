"""Run a benchmark script the way a person does, on its quick size, and read its JSON."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import REPO


def _run_bench(module: str, out: Path, *args: str, timeout_s: int = 420) -> dict[str, Any]:
    """`python -m bench.<module> --out OUT ARGS...` from the checkout; its `<module>.json` and
    `_stdout`. Fails with its output if it exits non-zero."""
    argv = [sys.executable, "-m", f"bench.{module}", "--out", str(out), *args]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, f"{module} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return json.loads((out / f"{module}.json").read_text()) | {"_stdout": done.stdout}


def _positive(value: Any) -> bool:
    """A finite number above zero."""
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.fixture(scope="session")
def run_bench() -> Callable[..., dict[str, Any]]:
    """Run a benchmark script with `--out` and extra arguments; its JSON plus `_stdout`."""
    return _run_bench


@pytest.fixture(scope="session")
def positive() -> Callable[[Any], bool]:
    """Whether a value is a finite number above zero."""
    return _positive


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "results"
