"""End to end: the real `./train` on real files in a temporary `/opt/ml` tree."""

from __future__ import annotations

import gzip
import io
import json
import re
import signal
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
import xgboost as xgb
from sagemaker_training import recordio

from container.training.metrics import metric_definitions, metric_regex
from tests.support.opt_ml import make_job
from tests.support.paths import LOCAL_TEST, PEER_DATA

from .helpers import binary_rows, csv_text, regression_rows


def load_model(path: Path) -> xgb.Booster:
    return xgb.Booster(model_file=bytearray(path.read_bytes()))


def test_sagemaker_example_hyperparameters_train_an_accurate_digits_model(job_root: Path) -> None:
    data = LOCAL_TEST / "test_dir" / "input" / "data"
    hyperparameters = json.loads(
        (LOCAL_TEST / "test_dir" / "input" / "config" / "hyperparameters.json").read_text()
    )
    assert hyperparameters["silent"] == "0"
    job = make_job(
        job_root,
        hyperparameters,
        {
            "train": {
                "content_type": "text/csv",
                "files": {"d.csv": data / "train" / "digits-train.csv"},
            },
            "validation": {
                "content_type": "text/csv",
                "files": {"d.csv": data / "validation" / "digits-validation.csv"},
            },
        },
    )
    result = job.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert job.failure is None
    assert "'silent' is deprecated" in result.stdout
    model_bytes = job.model_file.read_bytes()
    assert model_bytes.startswith(b"{")
    json.loads(model_bytes)  # portable XGBoost JSON, never a pickle
    booster = load_model(job.model_file)
    assert booster.num_boosted_rounds() == 10
    test = np.loadtxt(LOCAL_TEST / "payload" / "digits-test-labels.csv", delimiter=",")
    predicted = booster.predict(xgb.DMatrix(test[:, 1:]))
    accuracy = float(np.mean(predicted == test[:, 0]))
    assert accuracy >= 0.9, accuracy


def _parquet(rows: np.ndarray) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({f"c{i}": rows[:, i] for i in range(rows.shape[1])}), sink)
    return sink.getvalue()


def _libsvm(rows: np.ndarray) -> str:
    return "".join(
        f"{row[0]:g} " + " ".join(f"{j}:{v:.6g}" for j, v in enumerate(row[1:]) if v) + "\n"
        for row in rows
    )


def _recordio(rows: np.ndarray) -> bytes:
    sink = io.BytesIO()
    recordio._write_spmatrix_to_sparse_tensor(sink, sp.csr_matrix(rows[:, 1:]), rows[:, 0])
    return sink.getvalue()


CONTENT_TYPES = [
    ("text/csv", "train.csv", lambda rows: csv_text(rows)),
    ("text/csv", "train.csv.gz", lambda rows: gzip.compress(csv_text(rows).encode())),
    ("text/libsvm", "train.libsvm", _libsvm),
    ("application/x-parquet", "train.parquet", _parquet),
    ("application/x-recordio-protobuf", "train.pbr", _recordio),
    (None, "part-00000", _libsvm),
]


@pytest.mark.parametrize(
    ("content_type", "name", "encode"),
    CONTENT_TYPES,
    ids=["csv", "csv-gzip", "libsvm", "parquet", "recordio-protobuf", "detected-libsvm"],
)
def test_every_content_type_trains(job_root: Path, content_type, name, encode) -> None:
    rows = regression_rows(n=200)
    job = make_job(
        job_root,
        {"num_round": 5, "max_depth": 3},
        {
            "train": {"content_type": content_type, "files": {name: encode(rows)}},
            "validation": {"content_type": content_type, "files": {name: encode(rows[:50])}},
        },
    )
    result = job.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert job.failure is None
    booster = load_model(job.model_file)
    prediction = booster.predict(xgb.DMatrix(rows[:, 1:]))
    assert np.corrcoef(prediction, rows[:, 0])[0, 1] > 0.8
    assert re.search(r"Ingest: [0-9.]+ MB into \w+ in [0-9.]+ s \([0-9.]+ MB/s", result.stdout)


GOOD_CSV = csv_text(binary_rows(n=60))
FAILURES = [
    ("missing num_round", {}, {}, "Missing required hyperparameter: num_round."),
    (
        "misspelt hyperparameter",
        {"num_round": 2, "max_dept": 3},
        {},
        "Unknown hyperparameter 'max_dept'. Did you mean 'max_depth'?",
    ),
    ("empty train channel", {"num_round": 2}, {"train": {}}, "Channel 'train' is empty"),
    ("no train channel", {"num_round": 2}, {"validation": {}}, "The 'train' channel is required"),
    (
        "non-numeric cell",
        {"num_round": 2},
        {"train": {"files": {"a.csv": "1,2\n0,zz\n"}}},
        "a.csv, line 2, column 2: 'zz' is not a number",
    ),
    (
        "ragged rows",
        {"num_round": 2},
        {"train": {"files": {"a.csv": "1,2,3\n0,4\n"}}},
        "line 2 has 2 columns but the first row has 3",
    ),
    (
        "multi label out of range",
        {"num_round": 2, "objective": "multi:softmax", "num_class": 2},
        {"train": {"files": {"a.csv": "0,1\n2,3\n"}}},
        "label 2 is not a class for multi:softmax with num_class=2",
    ),
    (
        "binary label out of range",
        {"num_round": 2, "objective": "binary:logistic"},
        {"train": {"files": {"a.csv": "0,1\n5,3\n"}}},
        "label 5 is outside [0, 1]",
    ),
    (
        "validation width differs",
        {"num_round": 2},
        {
            "train": {"files": {"a.csv": GOOD_CSV}},
            "validation": {"files": {"a.csv": "1,2\n"}},
        },
        "Channel 'validation' has 1 feature columns but 'train' has 5",
    ),
    (
        "early stopping without validation",
        {"num_round": 5, "early_stopping_rounds": 2},
        {"train": {"files": {"a.csv": GOOD_CSV}}},
        "'early_stopping_rounds' needs a 'validation' channel",
    ),
    (
        "early stopping without a metric",
        {"num_round": 5, "early_stopping_rounds": 2, "disable_default_eval_metric": "true"},
        {"train": {"files": {"a.csv": GOOD_CSV}}, "validation": {"files": {"a.csv": GOOD_CSV}}},
        "'early_stopping_rounds' needs a metric to watch",
    ),
    (
        "tuning a validation metric without validation",
        {"num_round": 2, "_tuning_objective_metric": "validation:rmse"},
        {"train": {"files": {"a.csv": GOOD_CSV}}},
        "'_tuning_objective_metric' names a validation metric",
    ),
    (
        "truncated gzip input",
        {"num_round": 2},
        {"train": {"files": {"a.csv.gz": gzip.compress(GOOD_CSV.encode() * 200)[:500]}}},
        "a.csv.gz could not be read to the end",
    ),
    (
        "unsupported content type",
        {"num_round": 2},
        {"train": {"content_type": "application/json", "files": {"a.json": "{}"}}},
        "is not supported; use one of text/csv, text/libsvm",
    ),
]


@pytest.mark.parametrize(
    ("hyperparameters", "channels", "message"),
    [case[1:] for case in FAILURES],
    ids=[case[0] for case in FAILURES],
)
def test_failures_write_a_sentence_and_exit_non_zero(
    job_root: Path, hyperparameters: dict, channels: dict, message: str
) -> None:
    channels = {name: {"content_type": "text/csv", **spec} for name, spec in channels.items()}
    channels.setdefault("train", {"content_type": "text/csv", "files": {"a.csv": GOOD_CSV}})
    if "validation" in channels and not channels["validation"].get("files"):
        channels.pop("train")
    job = make_job(job_root, hyperparameters, channels)
    result = job.run()
    assert result.returncode != 0
    failure = job.failure
    assert failure is not None
    first_line = failure.splitlines()[0]
    assert message in first_line
    assert first_line.endswith((".", "?", ")"))
    assert "Traceback" not in first_line
    assert message in result.stdout
    assert not job.model_file.exists()


def test_unreadable_config_is_a_failure_with_a_sentence(job_root: Path) -> None:
    job = make_job(job_root, {"num_round": 1}, {"train": {"files": {"a.csv": GOOD_CSV}}})
    (job.base / "input" / "config" / "hyperparameters.json").write_text("{not json")
    result = job.run()
    assert result.returncode == 1
    assert "hyperparameters.json is not valid JSON" in job.failure.splitlines()[0]


def test_metric_regexes_read_the_real_log(job_root: Path) -> None:
    rows = regression_rows(n=200)
    job = make_job(
        job_root,
        {"num_round": 4, "eval_metric": "rmse,mae"},
        {
            "train": {"content_type": "text/csv", "files": {"a.csv": csv_text(rows)}},
            "validation": {"content_type": "text/csv", "files": {"a.csv": csv_text(rows[:40])}},
        },
    )
    result = job.run()
    assert result.returncode == 0, result.stdout
    round_lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(round_lines) == 4
    assert re.fullmatch(
        r"\[0\]\ttrain-rmse:[0-9.]+\ttrain-mae:[0-9.]+\tvalidation-rmse:[0-9.]+"
        r"\tvalidation-mae:[0-9.]+",
        round_lines[0],
    )
    # CloudWatch shows each tab as #011; SageMaker applies the regexes to that text.
    cloudwatch = [line.replace("\t", "#011") for line in round_lines]
    for channel in ("train", "validation"):
        for metric in ("rmse", "mae"):
            pattern = re.compile(metric_regex(channel, metric))
            values = [float(pattern.match(line).group(1)) for line in cloudwatch]
            printed = [
                float(re.search(rf"\t{channel}-{metric}:(\S+)", line).group(1))
                for line in round_lines
            ]
            assert values == printed
    definitions = {d["Name"]: d["Regex"] for d in metric_definitions()}
    assert definitions["validation:rmse"] == r".*\[[0-9]+\].*#011validation-rmse:([-+0-9.eE]+)"
    # The built-in algorithm's own regex reads the last value on a line the same way.
    builtin = re.compile(r".*\[[0-9]+\].*#011validation-mae:(\S+)")
    assert [builtin.match(line).group(1) for line in cloudwatch] == [
        line.rsplit(":", 1)[1] for line in round_lines
    ]


@pytest.mark.slow
def test_early_stopping_keeps_the_best_iteration(job_root: Path) -> None:
    rng = np.random.default_rng(1)
    train = np.column_stack([rng.normal(size=300), rng.normal(size=(300, 4))])
    validation = np.column_stack([rng.normal(size=100), rng.normal(size=(100, 4))])
    job = make_job(
        job_root,
        {"num_round": 200, "early_stopping_rounds": 3, "eta": 0.5, "max_depth": 6},
        {
            "train": {"content_type": "text/csv", "files": {"a.csv": csv_text(train)}},
            "validation": {"content_type": "text/csv", "files": {"a.csv": csv_text(validation)}},
        },
    )
    result = job.run()
    assert result.returncode == 0, result.stdout
    match = re.search(r"Early stopping at round (\d+).*keeping the best round (\d+)", result.stdout)
    assert match, result.stdout
    stopped, best = int(match.group(1)), int(match.group(2))
    assert stopped == best + 3
    booster = load_model(job.model_file)
    assert booster.num_boosted_rounds() == best + 1
    assert booster.attr("best_iteration") == str(best)
    scores = [
        float(re.search(r"validation-rmse:(\S+)", line).group(1))
        for line in result.stdout.splitlines()
        if line.startswith("[")
    ]
    assert scores[best] == min(scores)


@pytest.mark.slow
def test_sigterm_ends_training_with_a_failure_reason(job_root: Path) -> None:
    rows = regression_rows(n=3000, features=20)
    job = make_job(
        job_root,
        {"num_round": 100000, "max_depth": 8},
        {"train": {"content_type": "text/csv", "files": {"a.csv": csv_text(rows)}}},
    )
    process = job.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("[3]"):
                process.send_signal(signal.SIGTERM)
                break
        output = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, output
    sentence = job.failure.splitlines()[0]
    assert sentence.startswith("Training was stopped by SIGTERM during rounds (after")
    assert not job.model_file.exists()


@pytest.fixture
def tiny_model_disk(job_root: Path):
    """A 64 KiB tmpfs mounted where the model goes: smaller than the digits model."""
    mount_point = job_root / "opt_ml" / "model"
    mount_point.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_full_disk_for_the_model_fails_clearly_and_leaves_no_partial_model(
    job_root: Path, tiny_model_disk: Path
) -> None:
    data = LOCAL_TEST / "test_dir" / "input" / "data" / "train" / "digits-train.csv"
    job = make_job(
        job_root,
        {"num_round": 10, "objective": "multi:softprob", "num_class": 10},
        {"train": {"content_type": "text/csv", "files": {"d.csv": data}}},
    )
    result = job.run()
    assert result.returncode == 1, result.stdout
    first_line = job.failure.splitlines()[0]
    assert first_line.startswith("Training failed on a file operation: No space left on device")
    assert list(tiny_model_disk.iterdir()) == []


def _peer_files() -> list[Path]:
    if not PEER_DATA.is_dir():
        return []
    return sorted(
        path
        for path in PEER_DATA.rglob("*")
        if path.is_file() and "models" not in path.parts and path.name != "README.md"
    )


def _peer_hyperparameters(path: Path) -> dict:
    folder = path.relative_to(PEER_DATA).parts[0]
    if folder == "abalone-binary":
        return {"objective": "binary:logistic"}
    if folder == "abalone-multiclass":
        return {"objective": "multi:softmax", "num_class": 4}
    if path.name.endswith(".csv.weights"):
        return {"csv_weights": 1}
    return {}


@pytest.mark.skipif(not PEER_DATA.is_dir(), reason=f"peer data not found at {PEER_DATA}")
def test_every_peer_data_file_trains(job_root: Path) -> None:
    """Each data file of the built-in algorithm's own tests, alone in a train channel.

    One `./train` per file would take a minute; instead each file gets its own channel
    folder in one job per format detection, checked here through `train_model` (the whole
    job minus reading config files), and one real `./train` per peer folder below.
    """
    from container.settings import Settings
    from container.training.job import JobConfig, train_model
    from container.training.termination import StopRequest

    files = _peer_files()
    assert len(files) >= 30
    for index, path in enumerate(files):
        job = make_job(job_root / str(index), {}, {"train": {"files": {path.name: path}}})
        hyperparameters = {"num_round": 2, **_peer_hyperparameters(path)}
        settings = Settings.from_environ({"SAGEMAKER_BASE_DIR": str(job.base)})
        config = JobConfig(
            hyperparameters=hyperparameters,
            input_data={"train": {"TrainingInputMode": "File"}},
            resources={"current_host": "algo-9", "hosts": ["algo-9"]},
        )
        train_model(settings, config, StopRequest())
        assert load_model(job.model_file).num_boosted_rounds() == 2, path


PEER_FOLDERS = [
    ("abalone/data", {}),
    ("abalone-binary/data", {"objective": "binary:logistic", "eval_metric": "auc"}),
    ("abalone-multiclass/data", {"objective": "multi:softprob", "num_class": 4}),
    ("abalone-subdirs", {}),
    ("early_stopping/data", {}),
]


@pytest.mark.slow
@pytest.mark.skipif(not PEER_DATA.is_dir(), reason=f"peer data not found at {PEER_DATA}")
@pytest.mark.parametrize(
    ("folder", "hyperparameters"), PEER_FOLDERS, ids=[f[0] for f in PEER_FOLDERS]
)
def test_peer_folders_train_with_real_train(job_root: Path, folder: str, hyperparameters) -> None:
    root = PEER_DATA / folder
    channels = {}
    for channel in ("train", "validation"):
        directory = root / channel
        if directory.is_dir():
            files = {
                str(path.relative_to(directory)): path
                for path in directory.rglob("*")
                if path.is_file()
            }
            channels[channel] = {"content_type": None, "files": files}
    job = make_job(job_root, {"num_round": 3, **hyperparameters}, channels)
    result = job.run()
    assert result.returncode == 0, result.stdout
    assert "detected text/libsvm" in result.stdout
    assert load_model(job.model_file).num_boosted_rounds() == 3
