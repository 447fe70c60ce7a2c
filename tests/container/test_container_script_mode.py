"""Script mode in the real image: the analyst's script trains, its SHAP hooks serve, and broken
user code fails with the user's own traceback or a start-up sentence.

The example's `requirements.txt` (scikit-learn) is installed in the container from a mounted
wheel folder (`XGB_WHEEL_DIR`): pip inside these containers cannot reach PyPI, so the wheels
are downloaded once on the host into `.cache/` (kept between runs).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from churn_data import churn_table, write_churn_csv

from tests.support.churn import assert_shap_answers, post_customers
from tests.support.docker import run, script_mode_wheels
from tests.support.opt_ml import script_mode_job
from tests.support.paths import REPO

from .docker_helpers import serving

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]

EXAMPLE = REPO / "examples" / "script_mode"


@pytest.fixture(scope="module")
def wheels() -> Path:
    return script_mode_wheels()


def script_mode_tree(root: Path, code: Path | None = None, script: str | None = None) -> Path:
    """An /opt/ml tree as SDK local mode mounts it: code in /opt/ml/code, churn CSV channels."""
    job = script_mode_job(
        root,
        {
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps("/opt/ml/code"),
            "max_depth": "3",
        },
        {"train": {"content_type": "text/csv"}, "validation": {"content_type": "text/csv"}},
        code=code,
        script=script,
        resources={"current_host": "algo-1", "hosts": ["algo-1"]},
    )
    write_churn_csv(job.channel_dir("train"), 2500, seed=0)
    write_churn_csv(job.channel_dir("validation"), 600, seed=1)
    return job.base


def docker_train(image: str, name: str, opt_ml: Path, wheels: Path) -> subprocess.CompletedProcess:
    return run(
        [
            *("docker", "run", "--name", name, "-v", f"{opt_ml}:/opt/ml"),
            *("-v", f"{wheels}:/opt/wheels:ro", "-e", "XGB_WHEEL_DIR=/opt/wheels", image, "train"),
        ],
        timeout=900,
        check=False,
    )


def test_analyst_script_trains_and_its_shap_hooks_serve(
    image: str, tmp_path: Path, wheels: Path, container_name
) -> None:
    opt_ml = script_mode_tree(tmp_path, code=EXAMPLE)

    result = docker_train(image, container_name("script-train"), opt_ml, wheels)

    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    # requirements.txt went through pip, offline from the mounted wheel folder; the image
    # already ships the scikit-learn it pins.
    assert "Looking in links: /opt/wheels" in log
    assert "Requirement already satisfied: scikit-learn==1.9.1" in log
    assert not (opt_ml / "output" / "failure").exists()
    metrics = json.loads((opt_ml / "output" / "data" / "metrics.json").read_text())
    assert metrics["validation_auc"] > 0.75, metrics
    assert (opt_ml / "model" / "code" / "inference.py").is_file()

    customers = churn_table(3, seed=5).drop(columns="churned")
    with serving(image, container_name("script-serve"), opt_ml / "model") as port:
        response = post_customers(f"http://127.0.0.1:{port}", customers)

    assert response.status_code == 200, response.text
    assert_shap_answers(response.json()["predictions"], customers)


def test_a_failing_script_writes_its_traceback_to_output_failure(
    image: str, tmp_path: Path, wheels: Path, container_name
) -> None:
    script = "import pandas as pd\n\npd.read_csv('/opt/ml/input/data/train/missing.csv')\n"
    opt_ml = script_mode_tree(tmp_path, script=script)

    result = docker_train(image, container_name("script-fail"), opt_ml, wheels)

    assert result.returncode == 1
    failure = (opt_ml / "output" / "failure").read_text()
    assert failure.startswith(
        "The training program train.py failed with exit status 1: FileNotFoundError: "
    )
    assert "missing.csv" in failure.splitlines()[0]
    assert 'File "/opt/ml/code/train.py", line 3, in <module>' in failure


def test_mixed_hooks_stop_serve_with_a_sentence(image: str, tmp_path: Path, container_name):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "code").mkdir()
    (model_dir / "code" / "inference.py").write_text(
        "def transform_fn(model, body, content_type, accept):\n    return body\n\n"
        "def predict_fn(data, model):\n    return data\n"
    )
    (model_dir / "xgboost-model").write_text("{}")  # never reached: the hooks are checked first

    result = run(
        [
            *("docker", "run", "--name", container_name("hooks-mixed")),
            *("-v", f"{model_dir}:/opt/ml/model:ro", image, "serve"),
        ],
        timeout=300,
        check=False,
    )

    assert result.returncode != 0
    assert "defines transform_fn and predict_fn: transform_fn replaces" in result.stderr
