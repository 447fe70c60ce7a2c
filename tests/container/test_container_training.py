"""Training in the container from a mounted /opt/ml tree: success, the failure contract, no args."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.docker import run
from tests.support.paths import LOCAL_TEST

from .docker_helpers import opt_ml_copy

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]

MODEL = Path("model") / "xgboost-model"
FAILURE = Path("output") / "failure"


def test_train_writes_the_model_and_exits_zero(trained_opt_ml: Path) -> None:
    model = trained_opt_ml / MODEL
    assert model.is_file() and model.stat().st_size > 0
    assert not (trained_opt_ml / FAILURE).exists()


def test_no_argument_trains(image: str, tmp_path: Path, container_name) -> None:
    """The SDK's local training runs the image with no command: that must train."""
    opt_ml = opt_ml_copy(tmp_path / "opt_ml")

    result = run(
        ["docker", "run", "--name", container_name("noarg"), "-v", f"{opt_ml}:/opt/ml", image],
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (opt_ml / MODEL).is_file()


def test_bad_hyperparameter_writes_failure_and_exits_non_zero(
    image: str, tmp_path: Path, container_name
) -> None:
    config = json.loads((LOCAL_TEST / "test_dir/input/config/hyperparameters.json").read_text())
    config["max_depth"] = "deep"
    opt_ml = opt_ml_copy(tmp_path / "opt_ml", hyperparameters=json.dumps(config))

    result = run(
        [
            "docker",
            "run",
            "--name",
            container_name("bad"),
            "-v",
            f"{opt_ml}:/opt/ml",
            image,
            "train",
        ],
        timeout=600,
        check=False,
    )

    assert result.returncode != 0
    failure = (opt_ml / FAILURE).read_text()
    first_line = failure.strip().splitlines()[0]
    assert "max_depth" in first_line and "deep" in first_line
    assert not (opt_ml / MODEL).exists()
