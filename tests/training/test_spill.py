"""Spilled channels: dense features streamed through a temporary file into `QuantileDMatrix`.

Every check compares the spilled path with the in-memory one on the same real files: same
rows, same error sentences, and the same trained model.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xgboost as xgb

from container.errors import ClientError
from container.training import data_loading, spill
from container.training.hyperparameters import parse_hyperparameters
from tests.support.filesystems import tmpfs
from tests.support.opt_ml import make_job

from .helpers import binary_rows, csv_text, write_tree

SMALL_CHUNK_BYTES = 4096
"""Forces many chunks (and so many XGBoost batches) out of a few thousand rows."""


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spill, "CHUNK_BYTES", SMALL_CHUNK_BYTES)


def load(directory: Path, content_type: str, *, spilled: bool, csv_weights: bool = False):
    config = {"ContentType": content_type}
    return data_loading.load_channel("train", directory, config, csv_weights, spill=spilled)


def spilled_values(dataset: data_loading.Dataset) -> np.ndarray:
    assert isinstance(dataset.features, spill.FeatureSpill)
    parts = [
        np.column_stack([c.to_numpy() for c in table.columns])
        for _, table in dataset.features.chunks()
    ]
    return np.concatenate(parts)


def memory_values(dataset: data_loading.Dataset) -> np.ndarray:
    return np.column_stack(
        [c.to_numpy(zero_copy_only=False) for c in dataset.features.columns]
    ).astype(np.float32)


def noisy_rows(n: int, features: int, seed: int) -> np.ndarray:
    """Label first (0/1), then features with thousands of distinct values and some missing;
    column 2 is never missing and positive, so it can serve as a weight."""
    rows = binary_rows(n, features, seed)
    rows[:, 1] = np.abs(rows[:, 1]) + 0.1
    rows[:, 2:][np.random.default_rng(seed).random((n, features - 1)) < 0.03] = np.nan
    return rows


def csv_with_missing(rows: np.ndarray) -> str:
    return csv_text(rows, "%.7g").replace("nan", "")


def parquet_bytes(rows: np.ndarray, row_group_size: int) -> bytes:
    table = pa.table({f"c{i}": rows[:, i] for i in range(rows.shape[1])})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return sink.getvalue()


CHANNELS = {
    "csv": (
        "text/csv",
        lambda rows: {
            "a.csv": csv_with_missing(rows[:1500]),
            "nested/b.csv.gz": gzip.compress(csv_with_missing(rows[1500:2500]).encode()),
            "c": csv_with_missing(rows[2500:]),
        },
    ),
    "parquet": (
        "application/x-parquet",
        lambda rows: {
            "a.parquet": parquet_bytes(rows[:2000], 300),
            "b.parquet": parquet_bytes(rows[2000:], 5000),
        },
    ),
}


@pytest.mark.parametrize("kind", list(CHANNELS))
def test_spilled_channel_holds_the_rows_read_into_memory(tmp_path: Path, kind: str) -> None:
    content_type, files = CHANNELS[kind]
    rows = noisy_rows(3000, 6, seed=1)
    write_tree(tmp_path, files(rows))
    spilled = load(tmp_path, content_type, spilled=True, csv_weights=True)
    in_memory = load(tmp_path, content_type, spilled=False, csv_weights=True)

    assert isinstance(spilled.features, spill.FeatureSpill)
    assert len(spilled.features.chunk_rows) > 10
    assert spilled.num_rows == in_memory.num_rows == 3000
    assert spilled.num_columns == in_memory.num_columns == 5  # label and weight taken out
    assert spilled.files == 3 if kind == "csv" else 2
    np.testing.assert_array_equal(spilled.label, in_memory.label)
    np.testing.assert_array_equal(spilled.weight, in_memory.weight)
    values = spilled_values(spilled)
    np.testing.assert_array_equal(values, memory_values(in_memory))  # NaN where missing
    assert np.isnan(values).any()
    spilled.features.close()


@pytest.mark.parametrize("kind", list(CHANNELS))
def test_spilled_matrices_train_the_same_model_as_in_memory_ones(tmp_path: Path, kind: str) -> None:
    content_type, files = CHANNELS[kind]
    train_dir = write_tree(tmp_path / "train", files(noisy_rows(3000, 6, seed=2)))
    valid_dir = write_tree(tmp_path / "validation", files(noisy_rows(3000, 6, seed=3)))
    hp = parse_hyperparameters({"num_round": 5, "objective": "binary:logistic", "max_bin": 64})
    models, evals, matrices = [], [], []
    for spilled in (True, False):
        train = load(train_dir, content_type, spilled=spilled)
        validation = load(valid_dir, content_type, spilled=spilled)
        dtrain = data_loading.to_dmatrix(train, hp)
        dvalid = data_loading.to_dmatrix(validation, hp, reference=dtrain)
        result: dict = {}
        booster = xgb.train(
            hp.xgboost_params,
            dtrain,
            5,
            evals=[(dtrain, "train"), (dvalid, "validation")],
            evals_result=result,
            verbose_eval=False,
        )
        models.append(bytes(booster.save_raw("json")))
        evals.append(result)
        matrices.append((type(dtrain).__name__, dtrain.num_row(), dtrain.num_col()))
    assert matrices[0] == matrices[1] == ("QuantileDMatrix", 3000, 6)
    assert evals[0] == evals[1]
    assert models[0] == models[1]


def long_csv(tail: str) -> str:
    """Over two of Arrow's 1 MB blocks of good rows, then `tail`: a fault found mid-stream."""
    return "1,0.25,0.5\n" * 200_000 + tail


MID_STREAM_FAULTS = [
    ("non-numeric cell", {"a.csv": long_csv("0,4,abc\n")}, "line 200001, column 3: 'abc'"),
    ("ragged row", {"a.csv": long_csv("0,4\n")}, "line 200001 has 2 columns but the first row"),
    ("missing label", {"a.csv": long_csv(",1,2\n")}, "row 200001: the label (column 1) is"),
    (
        "truncated gzip",
        {"a.csv.gz": gzip.compress(long_csv("").encode())[:-200]},
        "could not be read to the end",
    ),
    (
        "second file narrower",
        {"a.csv": "1,2,3\n", "b.csv": "1,2\n"},
        "b.csv has 1 feature columns but",
    ),
]


@pytest.mark.parametrize("spilled", [True, False], ids=["spilled", "in-memory"])
@pytest.mark.parametrize(
    ("files", "message"),
    [case[1:] for case in MID_STREAM_FAULTS],
    ids=[case[0] for case in MID_STREAM_FAULTS],
)
def test_faults_found_mid_stream_name_the_file_and_line(
    tmp_path: Path, files: dict, message: str, spilled: bool
) -> None:
    write_tree(tmp_path, files)
    with pytest.raises(ClientError) as caught:
        load(tmp_path, "text/csv", spilled=spilled)
    assert message in caught.value.message
    assert str(tmp_path) in caught.value.message


def test_spilled_parquet_with_a_text_column_is_refused(tmp_path: Path) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.table({"y": [1.0, 0.0], "s": ["a", "b"]}), sink)
    write_tree(tmp_path, {"a.parquet": sink.getvalue()})
    with pytest.raises(ClientError) as caught:
        load(tmp_path, "application/x-parquet", spilled=True)
    assert "column 2 ('s') has type string" in caught.value.message


def test_spilled_labels_are_checked_against_the_objective(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.csv": "1,1\n" * 3000 + "2,1\n"})
    dataset = load(tmp_path, "text/csv", spilled=True)
    hp = parse_hyperparameters({"num_round": 1, "objective": "binary:logistic"})
    with pytest.raises(ClientError) as caught:
        data_loading.check_labels(dataset, hp)
    assert "row 3001: label 2 is outside [0, 1]" in caught.value.message
    dataset.features.close()


def test_libsvm_is_read_into_memory_even_when_spilling_is_asked(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.libsvm": "1 0:1 3:2\n0 1:4\n"})
    dataset = load(tmp_path, "text/libsvm", spilled=True)
    assert dataset.is_sparse and dataset.num_columns == 4


def test_train_spills_csv_channels_and_leaves_pandas_and_sklearn_out(job_root: Path) -> None:
    """The real `./train`, a train and a validation channel; imports listed by Python."""
    rows = noisy_rows(400, 5, seed=4)
    job = make_job(
        job_root,
        {"num_round": 3, "objective": "binary:logistic", "eval_metric": "auc"},
        {
            "train": {"content_type": "text/csv", "files": {"a.csv": csv_with_missing(rows)}},
            "validation": {"content_type": "text/csv", "files": {"v.csv": csv_text(rows[:50])}},
        },
    )
    result = job.run(PYTHONPROFILEIMPORTTIME="1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Channel 'train': 400 rows x 5 features" in result.stdout
    assert result.stdout.count("; features spilled to a temporary file.") == 2
    assert "validation-auc" in result.stdout
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert {"xgboost", "pyarrow.csv"} <= modules
    assert "pandas" not in modules
    assert not [m for m in modules if m.startswith("sklearn.")]
    model = xgb.Booster(model_file=bytearray(job.model_file.read_bytes()))
    assert model.num_boosted_rounds() == 3


def _float32_table(rows: int, columns: int) -> pa.Table:
    values = np.random.default_rng(0).random((rows, columns), dtype=np.float32)
    return pa.table({f"f{i}": values[:, i] for i in range(columns)})


def test_the_spill_file_lives_beside_the_data_and_has_no_name(tmp_path: Path) -> None:
    near = tmp_path / "data"
    near.mkdir()
    features = spill.FeatureSpill(4, near=near)
    try:
        features.append(_float32_table(100, 4))
        features.finish()
        fd = features._file.fileno()
        target = Path(f"/proc/self/fd/{fd}").readlink()
        assert str(target).startswith(str(near)), target
        assert list(near.iterdir()) == []  # nothing a channel listing or a crash could leave
    finally:
        features.close()


def test_a_full_disk_for_the_spill_is_a_sentence(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "64k") as near:
        features = spill.FeatureSpill(4, chunk_bytes=16 << 10, near=near)
        try:
            with pytest.raises(ClientError) as caught:
                features.append(_float32_table(20_000, 4))
                features.finish()
        finally:
            features.close()
    assert "Could not write the temporary feature file" in caught.value.message
    assert "No space left on device" in caught.value.message
    assert "VolumeSizeInGB" in caught.value.message
