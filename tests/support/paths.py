"""Where the checkout is."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The checkout's root: `train`, `serve`, `scripts/`, `examples/`."""
LOCAL_TEST = REPO / "local_test"
"""The example `/opt/ml` tree and payloads that `local_test/` scripts use."""
PEER_DATA = REPO.parent / "shared" / "peer-data"
"""Data sets and model files from other implementations, beside the checkout when present."""
