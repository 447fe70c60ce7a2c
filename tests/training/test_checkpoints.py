"""Checkpoints: atomic saves, pruning, skipping corrupt files, and resume == uninterrupted."""

from __future__ import annotations

import json
import logging
import random
import signal
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from container.training.checkpoints import CheckpointStore
from tests.support.opt_ml import make_job

from .helpers import csv_text, regression_rows


def small_booster(rounds: int) -> xgb.Booster:
    rows = regression_rows(n=100)
    data = xgb.DMatrix(rows[:, 1:], label=rows[:, 0])
    return xgb.train({"max_depth": 2}, data, rounds)


def test_save_keeps_the_newest_and_resumes_from_it(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=2)
    for rounds in (1, 2, 3):
        store.save(small_booster(rounds), rounds)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["xgboost-checkpoint.000002.ubj", "xgboost-checkpoint.000003.ubj"]
    found = store.load_newest()
    assert found is not None and found.rounds == 3
    assert found.booster.num_boosted_rounds() == 3


def test_corrupt_or_mislabelled_checkpoints_are_skipped_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = CheckpointStore(tmp_path, keep=5)
    store.save(small_booster(2), 2)
    (tmp_path / "xgboost-checkpoint.000009.ubj").write_bytes(b"{garbage")
    truncated = bytes(small_booster(4).save_raw("ubj"))[:100]
    (tmp_path / "xgboost-checkpoint.000004.ubj").write_bytes(truncated)
    (tmp_path / "xgboost-checkpoint.000003.ubj").write_bytes(
        bytes(small_booster(1).save_raw("ubj"))
    )
    (tmp_path / ".xgboost-checkpoint.000010.ubj.123.tmp").write_bytes(b"half")
    with caplog.at_level(logging.WARNING):
        found = store.load_newest()
    assert found is not None and found.rounds == 2
    assert "Skipping checkpoint" in caplog.text and "000009" in caplog.text
    assert "000004" in caplog.text
    assert "its name says 3 rounds but it holds 1" in caplog.text
    assert not (tmp_path / ".xgboost-checkpoint.000010.ubj.123.tmp").exists()


HYPERPARAMETERS = {
    "num_round": 40,
    "max_depth": 6,
    "eta": 0.1,
    "seed": 7,
    "checkpoint_frequency": 1,
    "eval_metric": "rmse",
}


def _channels() -> dict:
    rows = regression_rows(n=4000, features=10, seed=3)
    return {
        "train": {"content_type": "text/csv", "files": {"a.csv": csv_text(rows[:3000])}},
        "validation": {"content_type": "text/csv", "files": {"a.csv": csv_text(rows[3000:])}},
    }


@pytest.fixture(scope="module")
def uninterrupted_model(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    job = make_job(tmp_path_factory.mktemp("reference"), HYPERPARAMETERS, _channels())
    result = job.run()
    assert result.returncode == 0, result.stdout
    return job.model_file.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize(
    "kill_signal", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"]
)
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(
    job_root: Path, uninterrupted_model: bytes, kill_signal: signal.Signals
) -> None:
    job = make_job(job_root, HYPERPARAMETERS, _channels())
    checkpoints = job.base / "checkpoints"
    checkpoints.mkdir()
    kill_round = random.randint(2, 20)
    process = job.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(f"[{kill_round}]"):
                process.send_signal(kill_signal)
                break
        output = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
    context = f"killed with {kill_signal.name} after round {kill_round}"
    assert process.returncode != 0, context
    assert not job.model_file.exists(), context
    if kill_signal is signal.SIGTERM:
        assert process.returncode == 143, output
        assert "checkpoint xgboost-checkpoint." in job.failure.splitlines()[0]
    saved = sorted(checkpoints.glob("xgboost-checkpoint.*.ubj"))
    assert 1 <= len(saved) <= 3, context

    resumed = job.run()
    assert resumed.returncode == 0, resumed.stdout
    assert job.failure is None
    assert "Resuming from checkpoint" in resumed.stdout, context
    first_round = next(line for line in resumed.stdout.splitlines() if line.startswith("["))
    assert first_round.startswith(f"[{int(saved[-1].name.split('.')[1])}]"), context
    assert job.model_file.read_bytes() == uninterrupted_model, context


@pytest.mark.slow
def test_corrupt_checkpoint_is_skipped_and_training_still_matches(
    job_root: Path, uninterrupted_model: bytes
) -> None:
    job = make_job(job_root, HYPERPARAMETERS, _channels())
    local = job_root / "elsewhere"
    local.mkdir()
    (job.base / "input" / "config" / "checkpointconfig.json").write_text(
        json.dumps({"LocalPath": str(local)})
    )
    (local / "xgboost-checkpoint.000030.ubj").write_bytes(b"\x00not a model")
    result = job.run()
    assert result.returncode == 0, result.stdout
    assert "Skipping checkpoint" in result.stdout
    assert "starting from round 0" in result.stdout
    assert job.model_file.read_bytes() == uninterrupted_model
    kept = sorted(p.name for p in local.iterdir())
    assert kept == [f"xgboost-checkpoint.0000{n}.ubj" for n in (38, 39, 40)]


def test_resume_is_noted_when_checkpoint_already_holds_every_round(job_root: Path) -> None:
    rows = regression_rows(n=200)
    job = make_job(
        job_root,
        {"num_round": 3},
        {"train": {"content_type": "text/csv", "files": {"a.csv": csv_text(rows)}}},
    )
    (job.base / "checkpoints").mkdir()
    assert job.run().returncode == 0
    first = job.model_file.read_bytes()
    job.model_file.unlink()
    again = job.run()
    assert again.returncode == 0, again.stdout
    assert "3 round(s) done" in again.stdout
    assert job.model_file.read_bytes() == first
    assert np.isfinite(
        json.loads(first)["learner"]["gradient_booster"]["model"]["trees"][0]["split_conditions"]
    ).all()
