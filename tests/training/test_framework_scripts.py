"""A script written for AWS's XGBoost framework container runs unchanged in script mode.

`FRAMEWORK_SCRIPT` follows the abalone script-mode example of amazon-sagemaker-examples: the
same imports (`sagemaker_containers.entry_point`, `sagemaker_xgboost_container.distributed`,
`sagemaker_xgboost_container.data_utils.get_dmatrix`), the same calls and the same `SM_*`
arguments. It runs through the real `./train` on one host, and on two hosts (processes on this
machine) where `rabit_run` trains in one collective.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from bench.processes import free_port
from container.serving.codecs import DECODERS
from sagemaker_xgboost_container import encoder
from tests.support.opt_ml import Job, make_job

from .helpers import regression_rows

pytestmark = pytest.mark.slow

FRAMEWORK_SCRIPT = """
import argparse
import json
import logging
import os
import pickle as pkl

import xgboost as xgb
from sagemaker_containers import entry_point
from sagemaker_xgboost_container import distributed
from sagemaker_xgboost_container.data_utils import get_dmatrix


def _xgb_train(params, dtrain, evals, num_boost_round, model_dir, output_data_dir, is_master):
    booster = xgb.train(params=params, dtrain=dtrain, evals=evals, num_boost_round=num_boost_round)
    if is_master:
        pkl.dump(booster, open(model_dir + "/xgboost-model", "wb"))
        with open(os.path.join(output_data_dir, "rows.json"), "w") as out:
            json.dump({"train_rows": dtrain.num_row(), "features": dtrain.num_col()}, out)
        logging.info("Stored trained model")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--max_depth", type=int)
    parser.add_argument("--eta", type=float)
    parser.add_argument("--objective", type=str)
    parser.add_argument("--num_round", type=int)
    parser.add_argument("--output_data_dir", type=str, default=os.environ.get("SM_OUTPUT_DATA_DIR"))
    parser.add_argument("--model_dir", type=str, default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", type=str, default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", type=str, default=os.environ.get("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--sm_hosts", type=str, default=os.environ.get("SM_HOSTS"))
    parser.add_argument("--sm_current_host", type=str, default=os.environ.get("SM_CURRENT_HOST"))
    args, _ = parser.parse_known_args()

    sm_hosts = json.loads(args.sm_hosts)
    sm_current_host = args.sm_current_host

    dtrain = get_dmatrix(args.train, "libsvm")
    dval = get_dmatrix(args.validation, "libsvm")
    watchlist = (
        [(dtrain, "train"), (dval, "validation")] if dval is not None else [(dtrain, "train")]
    )

    train_hp = {"max_depth": args.max_depth, "eta": args.eta, "objective": args.objective}
    xgb_train_args = dict(
        params=train_hp,
        dtrain=dtrain,
        evals=watchlist,
        num_boost_round=args.num_round,
        model_dir=args.model_dir,
        output_data_dir=args.output_data_dir,
    )

    if len(sm_hosts) > 1:
        entry_point._wait_hostname_resolution()
        distributed.rabit_run(
            exec_fun=_xgb_train,
            args=xgb_train_args,
            include_in_training=(dtrain is not None),
            hosts=sm_hosts,
            current_host=sm_current_host,
            update_rabit_args=True,
        )
    else:
        if dtrain:
            xgb_train_args["is_master"] = True
            _xgb_train(**xgb_train_args)
        else:
            raise ValueError("Training channel must have data to train model.")
"""

HYPERPARAMETERS = {
    "sagemaker_program": json.dumps("abalone.py"),
    "max_depth": 3,
    "eta": 0.3,
    "objective": json.dumps("reg:squarederror"),
    "num_round": 8,
}
ROWS = regression_rows(240, 6, seed=4)


def libsvm(rows: np.ndarray) -> str:
    """LIBSVM lines as the abalone example's data: 1-based indices."""
    return "".join(
        f"{row[0]:.6g} " + " ".join(f"{i}:{v:.6g}" for i, v in enumerate(row[1:], 1)) + "\n"
        for row in rows
    )


def framework_job(root: Path, train: np.ndarray | None, resources: dict | None = None) -> Job:
    files = {"part-0.libsvm": libsvm(train)} if train is not None else {}
    job = make_job(
        root,
        HYPERPARAMETERS,
        {
            "train": {"content_type": "text/libsvm", "files": files},
            "validation": {"content_type": "text/libsvm", "files": {"v": libsvm(ROWS[200:])}},
        },
        resources,
    )
    (job.base / "code").mkdir()
    (job.base / "code" / "abalone.py").write_text(FRAMEWORK_SCRIPT)
    return job


def trained_model(job: Job) -> xgb.Booster:
    with job.model_file.open("rb") as handle:  # the script pickles it, as the example does
        return pickle.load(handle)


def test_framework_example_script_runs_unchanged(tmp_path: Path, wheels: Path) -> None:
    job = framework_job(tmp_path, ROWS[:200])
    assert not (job.base / "output" / "data").exists()  # the script's open() needs it made
    result = job.run(timeout=300, XGB_WHEEL_DIR=str(wheels))
    assert result.returncode == 0, result.stdout + result.stderr
    booster = trained_model(job)
    assert booster.num_boosted_rounds() == 8
    written = json.loads((job.base / "output" / "data" / "rows.json").read_text())
    assert written == {"train_rows": 200, "features": 7}  # LIBSVM indices 1..6, as XGBoost reads
    direct = xgb.train(
        {"max_depth": 3, "eta": 0.3, "objective": "reg:squarederror"},
        xgb.DMatrix(np.column_stack([np.zeros(200), ROWS[:200, 1:]]), ROWS[:200, 0]),
        8,
    )
    probe = xgb.DMatrix(np.column_stack([np.zeros(40), ROWS[200:, 1:]]))
    np.testing.assert_allclose(booster.predict(probe), direct.predict(probe), atol=1e-4)


@pytest.mark.parametrize("second_has_data", [True, False], ids=["both-hosts", "one-host-no-data"])
def test_rabit_run_trains_across_two_hosts(
    tmp_path: Path, wheels: Path, second_has_data: bool
) -> None:
    names = ["127.0.0.1", "127.0.0.2"]
    shares = {names[0]: ROWS[:100], names[1]: ROWS[100:200] if second_has_data else None}
    port = str(free_port())
    processes = {}
    jobs = {}
    try:
        for name in names:
            resources = {"current_host": name, "hosts": names, "network_interface_name": "lo"}
            jobs[name] = framework_job(tmp_path / name, shares[name], resources)
            processes[name] = jobs[name].start(
                XGB_WHEEL_DIR=str(wheels),
                XGB_TRACKER_PORT=port,
                XGB_COLLECTIVE_TIMEOUT_S="60",
                XGB_HOST_RESOLVE_TIMEOUT_S="10",
            )
        outputs = {name: process.communicate(timeout=240)[0] for name, process in processes.items()}
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    for name, process in processes.items():
        assert process.returncode == 0, outputs[name]
    master, other = jobs[names[0]], jobs[names[1]]
    assert not other.model_file.exists()  # only the master writes the model
    rows = json.loads((master.base / "output" / "data" / "rows.json").read_text())
    assert rows["train_rows"] == 100  # each host's own share; the collective joins them
    booster = trained_model(master)
    train = ROWS[:200] if second_has_data else ROWS[:100]
    direct = xgb.train(
        {"max_depth": 3, "eta": 0.3, "objective": "reg:squarederror"},
        xgb.DMatrix(np.column_stack([np.zeros(len(train)), train[:, 1:]]), train[:, 0]),
        8,
    )
    probe = xgb.DMatrix(np.column_stack([np.zeros(40), ROWS[200:, 1:]]))
    # Distributed hist sketches differ slightly from one host's: compare the fit, not the bits.
    error = np.sqrt(np.mean((booster.predict(probe) - ROWS[200:, 0]) ** 2))
    alone = np.sqrt(np.mean((direct.predict(probe) - ROWS[200:, 0]) ** 2))
    assert error < 1.2 * alone
    if not second_has_data:
        assert "has no training data and leaves the training" in outputs[names[1]]


@pytest.mark.parametrize("content_type", ["text/csv", "text/libsvm"])
def test_encoder_decodes_request_bodies_into_a_dmatrix(content_type: str) -> None:
    rows = ROWS[:3, 1:].astype(np.float32)
    body = (
        "\n".join(",".join(f"{v:.6g}" for v in row) for row in rows)
        if content_type == "text/csv"
        else "\n".join(
            " ".join(["0"] + [f"{i}:{v:.6g}" for i, v in enumerate(row)]) for row in rows
        )
    )
    decode = encoder.csv_to_dmatrix if content_type == "text/csv" else encoder.libsvm_to_dmatrix
    matrix = decode(body)
    assert isinstance(matrix, xgb.DMatrix)
    assert (matrix.num_row(), matrix.num_col()) == rows.shape
    assert encoder.decode(body.encode(), f"{content_type}; charset=utf-8").num_row() == 3


def test_encoder_names_the_types_it_decodes() -> None:
    with pytest.raises(ValueError, match=r"application/x-foo.*is not supported; use one of"):
        encoder.decode(b"1,2", "application/x-foo")
    assert "text/csv" in DECODERS
