"""A batch worker keeps the memory it frees for its next request (a real process's VmRSS)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.paths import REPO

_MB = 2**20
_PROGRAM = """
import json, sys
from container.serving.heap import keep_freed_memory

def rss():
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024

kept = keep_freed_memory() if sys.argv[1] == "keep" else None
before = rss()
body = bytearray(64 * 2**20)  # a batch body: over glibc's 32 MB mmap threshold
del body
after_first = rss()
body = bytearray(64 * 2**20)
peak_second = rss()
del body
print(json.dumps({"kept": kept, "before": before, "after_first": after_first,
                  "peak_second": peak_second}))
"""


def _run(mode: str) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-c", _PROGRAM, mode],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_freed_memory_is_kept_and_reused_by_the_next_request() -> None:
    kept = _run("keep")
    assert kept["kept"] is True
    # The first body's pages stay resident once it is freed ...
    assert kept["after_first"] - kept["before"] > 60 * _MB, kept
    # ... and the second body of the same size takes them: resident size does not grow.
    assert kept["peak_second"] - kept["after_first"] < 4 * _MB, kept


def test_without_it_glibc_returns_a_large_block_when_freed() -> None:
    """The behaviour `keep_freed_memory` changes: the control for the test above."""
    usual = _run("usual")
    assert usual["after_first"] - usual["before"] < 4 * _MB, usual
