"""Script mode from the real v2 SDK in local mode: `Estimator(entry_point=, source_dir=)` trains
the analyst's script in the image, a `Model(entry_point="inference.py", source_dir=)` serves its
SHAP hooks, and a broken script fails with the user's traceback in the job's `failure` file.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from churn_data import churn_table, write_churn_csv

from tests.support.churn import assert_shap_answers
from tests.support.docker import script_mode_wheels

from .helpers import DRIVERS, EXAMPLES, SdkRun, SdkVenvs

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]

BROKEN_SCRIPT = "def main():\n    raise KeyError('churned')\n\n\nmain()\n"


def _tar_member(archive: Path, name: str) -> str:
    with tarfile.open(archive) as tar:
        member = tar.extractfile(name)
        assert member is not None, f"{name} is not a file in {archive}"
        return member.read().decode()


def test_entry_point_and_source_dir_train_and_serve_in_local_mode(
    sdk_run: SdkRun, sdk_pythons: SdkVenvs, image: str
) -> None:
    root = sdk_run.root
    source = root / "source"
    shutil.copytree(EXAMPLES / "script_mode", source, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(script_mode_wheels(), source / "wheels")
    broken = root / "broken"
    broken.mkdir()
    (broken / "train.py").write_text(BROKEN_SCRIPT)
    data = root / "data"
    write_churn_csv(data / "train", 2500, seed=0)
    write_churn_csv(data / "validation", 600, seed=1)
    customers = churn_table(3, seed=4).drop(columns="churned")
    (data / "customers.json").write_text(customers.to_json(orient="records"))
    report_file = root / "report.json"

    result = sdk_run.run(
        sdk_pythons.sdk2,
        str(DRIVERS / "v2_script_mode.py"),
        image,
        str(source),
        str(broken),
        str(data),
        str(root / "work"),
        str(report_file),
    )

    assert result.returncode == 0, result.stdout[-6000:]
    report = json.loads(report_file.read_text())
    assert "validation-auc: 0." in result.stdout
    assert_shap_answers(report["answer"]["predictions"], customers)
    with tarfile.open(report["model_data"].removeprefix("file://")) as tar:
        assert {"xgboost-model", "code/inference.py"} <= set(tar.getnames())

    assert report["broken_raised"] is not None and "exited with code" in report["broken_raised"]
    failure = _tar_member(root / "work" / "broken-output" / "output.tar.gz", "failure")
    assert failure.startswith(
        "The training program train.py failed with exit status 1: KeyError: 'churned'"
    )
    assert 'File "/opt/ml/code/train.py", line 2, in main' in failure
