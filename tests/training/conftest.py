"""Fixtures for training tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def job_root(tmp_path: Path) -> Path:
    """A fresh folder under which a test builds its `/opt/ml` tree."""
    return tmp_path
