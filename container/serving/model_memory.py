"""How much memory a multi-model endpoint's models may take, and what one model costs.

The budget is `XGB_SERVER_MODEL_MEMORY_MB` when set; otherwise `DEFAULT_SHARE` of the container's
memory limit (cgroup v2 `memory.max`, or v1 `memory.limit_in_bytes`), or of the machine's memory
when the container has no limit. The rest is left to the Python processes themselves and to
request buffers.
"""

from __future__ import annotations

import os
from pathlib import Path

import xgboost as xgb

from container.settings import MB, Settings

DEFAULT_SHARE = 0.6
"""Part of the memory limit that loaded models may take, all workers together."""

CGROUP_LIMIT_FILES = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)
COST_FACTOR = 3
"""Resident memory a loaded model adds to a worker, per byte of its trees in UBJSON: measured
2.6 with 1,000 models of 100 trees (`python -m bench.mme`): the parsed trees, plus what the
allocator keeps from parsing them."""
_UNLIMITED = 1 << 60
"""cgroup v1 writes a huge number for "no limit"; anything above this is treated as none."""


def machine_memory_bytes() -> int:
    """The machine's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_limit_bytes(files: tuple[Path, ...] = CGROUP_LIMIT_FILES) -> int:
    """The container's memory limit, or the machine's memory when there is none."""
    machine = machine_memory_bytes()
    for path in files:
        try:
            raw = path.read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < _UNLIMITED:
            return min(int(raw), machine)
    return machine


def budget_bytes(settings: Settings) -> int:
    """The memory every loaded model may take together, across all workers."""
    if settings.serving.model_memory_mb is not None:
        return settings.serving.model_memory_mb * MB
    return int(memory_limit_bytes() * DEFAULT_SHARE)


def model_cost_bytes(boosters: tuple[xgb.Booster, ...]) -> int:
    """What one worker's copy of a model takes: `COST_FACTOR` times the size of its trees in
    XGBoost's binary (UBJSON) form, which holds the same per-node arrays XGBoost keeps."""
    return COST_FACTOR * sum(len(booster.save_raw("ubj")) for booster in boosters)
