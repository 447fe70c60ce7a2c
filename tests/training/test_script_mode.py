"""Script mode end to end: the real `./train` runs a user's own program through sagemaker-training.

Every test builds a real `/opt/ml` tree, puts real user code where SageMaker puts it (a
`sagemaker_submit_directory` folder or tarball, or `/opt/ml/code`) and runs `./train`.
`XGB_WHEEL_DIR` points at an empty folder, so `requirements.txt` is installed offline: what is
already installed satisfies it, anything else fails at once instead of reaching for PyPI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tarfile
from pathlib import Path

import pytest
import xgboost as xgb
from churn_data import write_churn_csv

from tests.support.opt_ml import Job, make_job, script_mode_job
from tests.support.paths import REPO
from tests.support.waiting import wait_until

from .helpers import binary_rows, csv_text

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "script_mode"


def run_train(job: Job, wheels: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`./train` as SageMaker runs it, with an offline wheel folder and extra variables."""
    return job.run(timeout=300, XGB_WHEEL_DIR=str(wheels), **env)


def script_job(root: Path, script: str, hyperparameters: dict | None = None) -> Job:
    """A job whose `/opt/ml/code/train.py` is `script`, named by `sagemaker_program`."""
    return script_mode_job(
        root,
        {"sagemaker_program": json.dumps("train.py"), **(hyperparameters or {})},
        {"train": {"content_type": "text/csv", "files": {"a.csv": csv_text(binary_rows(200))}}},
        script=script,
    )


def test_analyst_script_trains_from_its_source_dir(job_root: Path, wheels: Path) -> None:
    """The example (pandas features, XGBClassifier, requirements.txt) from a `file://` source."""
    job = make_job(
        job_root,
        {
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(f"file://{EXAMPLE}"),
            "max_depth": "3",
            "n_estimators": "150",
        },
        {
            "train": {"content_type": "text/csv", "files": {}},
            "validation": {"content_type": "text/csv", "files": {}},
        },
    )
    write_churn_csv(job.channel_dir("train"), 3000, seed=0)
    write_churn_csv(job.channel_dir("validation"), 800, seed=1)

    result = run_train(job, wheels)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert job.failure is None
    assert "Requirement already satisfied: scikit-learn==1.9.1" in result.stdout + result.stderr
    assert "Training on 3000 rows x 11 features" in result.stdout
    booster = xgb.Booster(model_file=bytearray(job.model_file.read_bytes()))
    assert job.model_file.read_bytes().startswith(b"{")  # XGBoost JSON, as `serve` reads it
    assert booster.feature_names[:2] == ["tenure_months", "monthly_charges"]
    assert booster.num_boosted_rounds() <= 150
    assert sorted(p.name for p in (job.base / "model" / "code").iterdir()) == [
        "features.py",
        "inference.py",
    ]
    metrics = json.loads((job.base / "output" / "data" / "metrics.json").read_text())
    assert metrics["validation_auc"] > 0.75, metrics


ENVIRONMENT_SCRIPT = """
import json, os, sys
from container.helpers import read_channel

dataset = read_channel("train")
report = {
    "argv": sys.argv[1:],
    "hps": json.loads(os.environ["SM_HPS"]),
    "model_dir": os.environ["SM_MODEL_DIR"],
    "train_dir": os.environ["SM_CHANNEL_TRAIN"],
    "current_host": os.environ["SM_CURRENT_HOST"],
    "rows": dataset.num_rows,
    "columns": dataset.num_columns,
}
with open(os.path.join(os.environ["SM_MODEL_DIR"], "report.json"), "w") as handle:
    json.dump(report, handle)
"""


def test_program_gets_the_sm_environment_and_its_hyperparameters_as_arguments(
    job_root: Path, wheels: Path
) -> None:
    """SAGEMAKER_PROGRAM names the program; the code is already in /opt/ml/code."""
    job = make_job(
        job_root,
        {"learning-rate": "0.05", "max_depth": "4"},
        {"train": {"content_type": "text/csv", "files": {"a.csv": csv_text(binary_rows(120))}}},
    )
    (job.base / "code").mkdir()
    (job.base / "code" / "fit.py").write_text(ENVIRONMENT_SCRIPT)

    result = run_train(job, wheels, SAGEMAKER_PROGRAM="fit.py")

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((job.base / "model" / "report.json").read_text())
    assert report["argv"] == ["--learning-rate", "0.05", "--max_depth", "4"]
    assert report["hps"] == {"learning-rate": 0.05, "max_depth": 4}
    assert report["model_dir"] == str(job.base / "model")
    assert report["train_dir"] == str(job.channel_dir("train"))
    assert report["current_host"] == "node-7"
    assert (report["rows"], report["columns"]) == (120, 5)  # label first, as the built-in reads


HELPERS_SCRIPT = """
import argparse
import xgboost as xgb
from container.helpers import (
    CheckpointCallback, channel_dmatrix, checkpoint_store, model_file, save_model,
    training_cluster,
)

parser = argparse.ArgumentParser()
parser.add_argument("--num_round", type=int)
args = parser.parse_args()
params = {"objective": "binary:logistic", "max_depth": 3, "nthread": 1}
with training_cluster() as cluster:
    dtrain = channel_dmatrix("train", params, hosts=cluster.hosts)
    store = checkpoint_store(keep=2)
    found = store.load_newest()
    done = found.rounds if found else 0
    print(f"resuming after {done} rounds")
    booster = xgb.train(
        params, dtrain, args.num_round - done, xgb_model=found.booster if found else None,
        callbacks=[CheckpointCallback(store, every=5)],
    )
    if cluster.is_master:
        save_model(booster, model_file())
"""


def _sourcedir_tarball(folder: Path, files: dict[str, str]) -> Path:
    """A `sourcedir.tar.gz` as the SDK uploads it (files at the archive's top level)."""
    archive = folder / "sourcedir.tar.gz"
    staging = folder / "src"
    staging.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in files.items():
            (staging / name).write_text(text)
            tar.add(staging / name, arcname=name)
    return archive


def test_helpers_read_the_channel_and_checkpoint_a_script_from_a_tarball(
    job_root: Path, wheels: Path
) -> None:
    tarball = _sourcedir_tarball(job_root, {"train.py": HELPERS_SCRIPT})
    job = make_job(
        job_root,
        {
            "sagemaker_program": "train.py",
            "sagemaker_submit_directory": str(tarball),
            "num_round": "12",
        },
        {"train": {"content_type": "text/csv", "files": {"a.csv": csv_text(binary_rows(300))}}},
    )
    checkpoints = job_root / "checkpoints"
    (job.base / "input" / "config" / "checkpointconfig.json").write_text(
        json.dumps({"LocalPath": str(checkpoints)})
    )

    first = run_train(job, wheels)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "resuming after 0 rounds" in first.stdout
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "xgboost-checkpoint.000010.ubj",
        "xgboost-checkpoint.000012.ubj",
    ]
    assert xgb.Booster(model_file=bytearray(job.model_file.read_bytes())).num_boosted_rounds() == 12

    # A restarted job (spot) resumes where the checkpoints end.
    job.model_file.unlink()
    (job.base / "code" / "train.py").unlink()  # sagemaker-training fetches into an empty folder
    second = run_train(job, wheels)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "resuming after 12 rounds" in second.stdout
    assert xgb.Booster(model_file=bytearray(job.model_file.read_bytes())).num_boosted_rounds() == 12


FAILING_SCRIPT = """
import pandas as pd

def parse_ages(values):
    return [float(value) for value in values]

def main():
    parse_ages(["41", "forty-two"])

main()
"""


def test_an_exception_in_the_script_reaches_output_failure_with_its_traceback(
    job_root: Path, wheels: Path
) -> None:
    job = script_job(job_root, FAILING_SCRIPT)

    result = run_train(job, wheels)

    assert result.returncode == 1
    failure = job.failure or ""
    first_line = failure.splitlines()[0]
    assert first_line == (
        "The training program train.py failed with exit status 1: "
        "ValueError: could not convert string to float: 'forty-two'"
    )
    assert "Traceback (most recent call last):" in failure
    assert 'train.py", line 5, in parse_ages' in failure
    assert 'train.py", line 8, in main' in failure
    # The traceback was also streamed to the log as the program wrote it.
    assert 'train.py", line 5, in parse_ages' in result.stderr


def test_a_syntax_error_names_the_line(job_root: Path, wheels: Path) -> None:
    job = script_job(job_root, "import os\n\ndef main(:\n    pass\n")

    result = run_train(job, wheels)

    assert result.returncode == 1
    failure = job.failure or ""
    assert failure.startswith("The training program train.py failed with exit status 1: ")
    assert "SyntaxError: invalid syntax" in failure.splitlines()[0]
    assert 'train.py", line 3' in failure


def test_a_missing_program_names_what_the_code_folder_holds(job_root: Path, wheels: Path) -> None:
    job = script_job(job_root, "print('hello')\n", {"sagemaker_program": "trian.py"})

    result = run_train(job, wheels)

    assert result.returncode == 1
    assert (job.failure or "").startswith(
        f"The training program 'trian.py' is not in {job.base / 'code'} (it holds train.py;"
    )


def test_requirements_that_cannot_be_installed_offline_fail_with_pips_reason(
    job_root: Path, wheels: Path
) -> None:
    job = script_job(job_root, "print('never runs')\n")
    (job.base / "code" / "requirements.txt").write_text("no-such-package-for-xgb-byoc==1.0\n")

    result = run_train(job, wheels)

    assert result.returncode == 1
    first_line = (job.failure or "").splitlines()[0]
    assert first_line.startswith(f"Installing {job.base / 'code' / 'requirements.txt'} failed: ")
    assert "No matching distribution found for no-such-package-for-xgb-byoc==1.0" in first_line
    assert "never runs" not in result.stdout


SIGTERM_SCRIPT = """
import os, signal, sys, time

def stop(signum, frame):
    open(os.path.join(os.environ["SM_MODEL_DIR"], "stopped"), "w").write("saved my work")
    sys.exit(3)

signal.signal(signal.SIGTERM, stop)
open(os.path.join(os.environ["SM_MODEL_DIR"], "started"), "w").close()
while True:
    time.sleep(0.1)
"""


def test_sigterm_reaches_the_program_and_the_job_ends_as_stopped(
    job_root: Path, wheels: Path
) -> None:
    job = script_job(job_root, SIGTERM_SCRIPT)
    started = job.base / "model" / "started"
    process = job.start(XGB_WHEEL_DIR=str(wheels))
    try:
        wait_until(
            started.exists,
            120,
            f"{started} from the program",
            alive=lambda: process.poll() is None,
            context=lambda: process.communicate(timeout=30)[0],
        )
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert process.returncode == 143, output
    assert (job.base / "model" / "stopped").read_text() == "saved my work"
    assert (job.failure or "").startswith(
        "Training was stopped by SIGTERM; the training program train.py exited with status 3."
    )
