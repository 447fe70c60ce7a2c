"""The multi-model memory budget: from `XGB_SERVER_MODEL_MEMORY_MB`, else the cgroup limit."""

from __future__ import annotations

from pathlib import Path

import pytest
import xgboost as xgb

from container.serving.model_memory import (
    DEFAULT_SHARE,
    budget_bytes,
    machine_memory_bytes,
    memory_limit_bytes,
    model_cost_bytes,
)
from container.settings import MB, Settings

from .helpers import train_booster


@pytest.mark.parametrize(
    ("contents", "expected"),
    [
        ("2147483648\n", 2147483648),
        ("max\n", None),
        ("9223372036854771712\n", None),  # cgroup v1's "no limit"
    ],
    ids=["limit", "v2-max", "v1-unlimited"],
)
def test_memory_limit_from_cgroup_file(tmp_path: Path, contents: str, expected: int | None) -> None:
    limit = tmp_path / "memory.max"
    limit.write_text(contents)
    machine = machine_memory_bytes()
    assert memory_limit_bytes((limit,)) == min(expected or machine, machine)


def test_memory_limit_without_cgroup_files_is_the_machine(tmp_path: Path) -> None:
    assert memory_limit_bytes((tmp_path / "absent",)) == machine_memory_bytes()


def test_budget_setting_wins_over_the_limit() -> None:
    settings = Settings.from_environ({"XGB_SERVER_MODEL_MEMORY_MB": "300"})
    assert budget_bytes(settings) == 300 * MB
    derived = budget_bytes(Settings.from_environ({}))
    assert derived == int(memory_limit_bytes() * DEFAULT_SHARE)


def test_bad_budget_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="XGB_SERVER_MODEL_MEMORY_MB='lots' is not an integer"):
        Settings.from_environ({"XGB_SERVER_MODEL_MEMORY_MB": "lots"})


def test_multi_model_switch() -> None:
    assert Settings.from_environ({"SAGEMAKER_MULTI_MODEL": "true"}).serving.multi_model
    assert not Settings.from_environ({}).serving.multi_model


def test_model_cost_grows_with_trees() -> None:
    small = train_booster("binary:logistic", rounds=2)
    large = train_booster("binary:logistic", rounds=20)
    assert 0 < model_cost_bytes((small,)) < model_cost_bytes((large,))
    pair: tuple[xgb.Booster, ...] = (small, large)
    assert model_cost_bytes(pair) == model_cost_bytes((small,)) + model_cost_bytes((large,))
