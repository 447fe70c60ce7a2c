"""Training faults end to end: the real `./train` meets broken input, broken checkpoints and
full disks, and then the real `./serve` is pointed at the same `/opt/ml`.

Each fault ends with a sentence in `output/failure` and a non-zero exit, and leaves no model
file: `serve` then refuses to start with "No model file" instead of loading half a model. A
half-written checkpoint is skipped and the model trained from scratch serves.
"""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import numpy as np
import pytest
import requests
import xgboost as xgb

from tests.support.filesystems import tmpfs
from tests.support.opt_ml import Job, make_job
from tests.support.server import running_server, serve_until_exit

from .helpers import binary_rows, csv_text

pytestmark = pytest.mark.slow

HYPERPARAMETERS = {"num_round": 30, "objective": "binary:logistic", "max_depth": 3}
ROWS = binary_rows(n=400, features=5)


def serve_once(job: Job) -> subprocess.CompletedProcess[str]:
    """Start the real `./serve` on this job's `/opt/ml`; it must exit by itself (no model)."""
    return serve_until_exit(job.base, SAGEMAKER_MODEL_SERVER_WORKERS="1")


def assert_failed_without_a_model(job: Job, result: subprocess.CompletedProcess[str]) -> str:
    """Exit 1, a sentence first in `output/failure`, no model file, and `serve` refuses."""
    assert result.returncode == 1, result.stdout + result.stderr
    failure = job.failure
    assert failure is not None, result.stdout
    sentence = failure.splitlines()[0]
    assert sentence.endswith((".", "?")), sentence
    assert "Traceback" not in sentence
    model_dir = job.model_file.parent
    assert not [p.name for p in model_dir.iterdir()] if model_dir.is_dir() else True
    served = serve_once(job)
    assert served.returncode != 0
    assert "serve cannot start: No model file at" in served.stdout + served.stderr
    return sentence


def serve_and_predict(job: Job, rows: np.ndarray) -> list[float]:
    """Start the real `./serve` on this job's model, POST `rows` as CSV, stop it."""
    with running_server(job.base, SAGEMAKER_MODEL_SERVER_WORKERS="1") as server:
        response = requests.post(
            f"{server.url}/invocations",
            data=csv_text(rows, "%.9g"),  # float32 rows, written exactly
            headers={"Content-Type": "text/csv"},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    return [float(v) for v in response.text.split()]


def test_gzip_cut_off_fails_with_the_file_named_and_no_model(job_root: Path) -> None:
    whole = gzip.compress(csv_text(ROWS).encode() * 20)
    job = make_job(
        job_root,
        HYPERPARAMETERS,
        {
            "train": {
                "content_type": "text/csv",
                "files": {"part-1.csv.gz": whole[: len(whole) // 2]},
            }
        },
    )
    sentence = assert_failed_without_a_model(job, job.run())
    assert "part-1.csv.gz" in sentence


def test_csv_cut_mid_row_fails_with_the_line_named_and_no_model(job_root: Path) -> None:
    text = csv_text(ROWS)
    cut = text[: text.rindex(",", 0, len(text) - 2)]  # the last row loses its last column(s)
    job = make_job(
        job_root,
        HYPERPARAMETERS,
        {"train": {"content_type": "text/csv", "files": {"part-1.csv": cut}}},
    )
    sentence = assert_failed_without_a_model(job, job.run())
    assert f"line {len(ROWS)} has" in sentence, sentence
    assert "part-1.csv" in sentence


def test_full_disk_for_the_model_leaves_nothing_serve_would_load(job_root: Path) -> None:
    """The model folder is a 16 KiB tmpfs; the 300-round model does not fit."""
    job = make_job(
        job_root,
        {**HYPERPARAMETERS, "num_round": 300, "max_depth": 6},
        {"train": {"content_type": "text/csv", "files": {"a.csv": csv_text(ROWS)}}},
    )
    with tmpfs(job.model_file.parent, "16k"):
        sentence = assert_failed_without_a_model(job, job.run())
    assert sentence.startswith("Training failed on a file operation: No space left on device")


def test_full_disk_for_checkpoints_fails_clearly_and_writes_no_model(job_root: Path) -> None:
    job = make_job(
        job_root,
        {**HYPERPARAMETERS, "num_round": 300, "max_depth": 6},
        {"train": {"content_type": "text/csv", "files": {"a.csv": csv_text(ROWS)}}},
    )
    with tmpfs(job.base / "checkpoints", "16k") as checkpoints:
        sentence = assert_failed_without_a_model(job, job.run())
        assert [p.name for p in checkpoints.glob(".*.tmp")] == []
    assert sentence.startswith("Training failed on a file operation: No space left on device")


def test_half_written_checkpoints_are_skipped_and_the_new_model_serves(job_root: Path) -> None:
    """Every checkpoint is cut in half (a copy that died mid-write): training starts over from
    round 0, succeeds, and `serve` loads the model it wrote."""
    job = make_job(
        job_root,
        HYPERPARAMETERS,
        {"train": {"content_type": "text/csv", "files": {"a.csv": csv_text(ROWS)}}},
    )
    checkpoints = job.base / "checkpoints"
    checkpoints.mkdir()
    first = job.run()
    assert first.returncode == 0, first.stdout
    saved = sorted(checkpoints.glob("xgboost-checkpoint.*.ubj"))
    assert saved
    for path in saved:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    job.model_file.unlink()
    second = job.run()
    assert second.returncode == 0, second.stdout
    assert second.stdout.count("Skipping checkpoint") == len(saved)
    assert "starting from round 0" in second.stdout
    assert job.failure is None
    booster = xgb.Booster(model_file=bytearray(job.model_file.read_bytes()))
    assert booster.num_boosted_rounds() == HYPERPARAMETERS["num_round"]
    features = ROWS[:20, 1:].astype(np.float32)
    served = serve_and_predict(job, features)
    np.testing.assert_allclose(served, booster.predict(xgb.DMatrix(features)), rtol=1e-6)
