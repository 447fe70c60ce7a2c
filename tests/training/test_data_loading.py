"""Channels into matrices: every content type, detection, and the bad-data messages."""

from __future__ import annotations

import gzip
import io
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
from sagemaker_training import recordio

from container.errors import ClientError
from container.training import data_loading
from container.training.hyperparameters import parse_hyperparameters

from .helpers import write_tree


def load(directory: Path, content_type: str | None = None, csv_weights: bool = False):
    config = {"ContentType": content_type} if content_type else {}
    return data_loading.load_channel("train", directory, config, csv_weights)


def dense(dataset) -> np.ndarray:
    if dataset.is_sparse:
        return dataset.features.toarray()
    return np.column_stack([c.to_numpy(zero_copy_only=False) for c in dataset.features.columns])


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def recordio_bytes(features: np.ndarray | sp.csr_matrix, labels: np.ndarray) -> bytes:
    sink = io.BytesIO()
    if sp.issparse(features):
        recordio._write_spmatrix_to_sparse_tensor(sink, features, labels)
    else:
        recordio._write_numpy_to_dense_tensor(sink, features, labels)
    return sink.getvalue()


def test_csv_label_first_empty_fields_missing_nested_gzip_and_hidden(tmp_path: Path) -> None:
    files = {
        "a.csv": "1,2.5,3\n0,,4\n",
        "nested/deeper/b.csv.gz": gzip.compress(b"1,7,8\n"),
        "nested/no-extension": gzip.compress(b"0,9,10\n"),
        ".hidden.csv": "not,a,number\n",
        ".cache/c.csv": "x\n",
        "empty.csv": "",
    }
    dataset = load(write_tree(tmp_path, files), "text/csv")
    assert dataset.num_rows == 4
    assert dataset.num_columns == 2
    assert dataset.files == 3
    assert dataset.label.tolist() == [1, 0, 1, 0]
    values = dense(dataset)
    assert np.isnan(values[1, 0])
    assert values[3].tolist() == [9, 10]


def test_csv_weights_take_column_two(tmp_path: Path) -> None:
    dataset = load(write_tree(tmp_path, {"w.csv": "1,0.5,3,4\n0,2,5,6\n"}), "text/csv", True)
    assert dataset.weight.tolist() == [0.5, 2.0]
    assert dense(dataset).tolist() == [[3, 4], [5, 6]]


def test_csv_content_type_parameters(tmp_path: Path) -> None:
    dataset = load(write_tree(tmp_path, {"a.csv": "1,2\n"}), "text/csv; label_size=1")
    assert dataset.num_rows == 1


def test_libsvm_with_weights_and_qid(tmp_path: Path) -> None:
    text = "1:0.5 qid:3 0:1.5 2:2\n0:2 qid:3 1:4 2:\n\n1 qid:4 2:1\n"
    dataset = load(write_tree(tmp_path, {"r.libsvm": text}), "text/libsvm")
    assert dataset.label.tolist() == [1, 0, 1]
    assert dataset.weight.tolist() == [0.5, 2.0, 1.0]
    assert dataset.qid.tolist() == [3, 3, 4]
    matrix = dataset.features
    assert matrix.shape == (3, 3)
    assert matrix[0, 0] == 1.5 and matrix[1, 1] == 4 and matrix[2, 2] == 1
    assert np.isnan(matrix[1, 2])  # `2:` with no value is missing


def test_parquet_label_first(tmp_path: Path) -> None:
    table = pa.table({"y": [1.0, 0.0], "a": [3, 4], "b": [5.5, None]})
    dataset = load(
        write_tree(tmp_path, {"d.parquet": parquet_bytes(table)}), "application/x-parquet"
    )
    assert dataset.label.tolist() == [1, 0]
    values = dense(dataset)
    assert values[0].tolist() == [3, 5.5]
    assert np.isnan(values[1, 1])


def test_recordio_protobuf_dense_and_sparse(tmp_path: Path) -> None:
    x = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    labels = np.array([1.0, 0.0])
    files = {
        "dense.pbr": recordio_bytes(x, labels),
        "sparse.pbr": recordio_bytes(sp.csr_matrix(x), labels),
    }
    dataset = load(write_tree(tmp_path, files), "application/x-recordio-protobuf")
    assert dataset.num_rows == 4
    matrix = dataset.features.toarray()
    assert matrix[0].tolist() == [1, 0, 2]
    assert matrix[3].tolist() == [0, 3, 0]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("plain", "1,2,3\n", "text/csv"),
        ("plain", "1 1:2 3:4\n", "text/libsvm"),
        ("plain", parquet_bytes(pa.table({"y": [1.0], "x": [2.0]})), "application/x-parquet"),
        ("plain", recordio_bytes(np.ones((1, 2)), np.ones(1)), "application/x-recordio-protobuf"),
        ("plain.gz", gzip.compress(b"1 1:2\n"), "text/libsvm"),
    ],
    ids=["csv", "libsvm", "parquet", "recordio", "gzip-libsvm"],
)
def test_format_is_detected_and_logged_without_content_type(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, content, expected: str
) -> None:
    with caplog.at_level(logging.INFO):
        dataset = load(write_tree(tmp_path, {name: content}))
    assert dataset.content_type == expected
    assert f"Channel 'train' has no ContentType: detected {expected}" in caplog.text


BAD_DATA = [
    (
        "non-numeric cell",
        {"a.csv": "1,2,3\n0,4,abc\n"},
        "text/csv",
        "a.csv, line 2, column 3: 'abc' is not a number",
    ),
    (
        "header row",
        {"a.csv": "label,x\n1,2\n"},
        "text/csv",
        "Training CSV has no header row",
    ),
    (
        "ragged rows",
        {"a.csv": "1,2,3\n0,4\n"},
        "text/csv",
        "a.csv, line 2 has 2 columns but the first row has 3",
    ),
    (
        "missing label",
        {"a.csv": "1,2\n,3\n"},
        "text/csv",
        "row 2: the label (column 1) is missing",
    ),
    (
        "files of different widths",
        {"a.csv": "1,2,3\n", "b.csv": "1,2\n"},
        "text/csv",
        "has 1 feature columns but",
    ),
    (
        "bad libsvm token",
        {"a.libsvm": "1 1:2\n0 x:3\n"},
        "text/libsvm",
        "a.libsvm, line 2, column 2: 'x:3' has an index that is not a non-negative integer",
    ),
    (
        "bad libsvm label",
        {"a.libsvm": "yes 1:2\n"},
        "text/libsvm",
        "line 1, column 1: 'yes' is not a label",
    ),
    (
        "not recordio",
        {"a.pbr": b"\x00" * 16},
        "application/x-recordio-protobuf",
        "is not valid RecordIO-protobuf",
    ),
    (
        "not parquet",
        {"a.parquet": b"PAR1 nonsense"},
        "application/x-parquet",
        "is not a readable Parquet file",
    ),
    (
        "string parquet column",
        {"a.parquet": parquet_bytes(pa.table({"y": [1.0], "s": ["a"]}))},
        "application/x-parquet",
        "column 2 ('s') has type string",
    ),
    (
        "unsupported content type",
        {"a.json": "{}"},
        "application/json",
        "ContentType 'application/json', which is not supported; use one of text/csv",
    ),
    (
        "empty channel",
        {".hidden": "1,2\n", "empty.csv": ""},
        "text/csv",
        "Channel 'train' is empty",
    ),
    (
        "truncated gzip",
        {"a.csv.gz": gzip.compress(b"1,2,3\n" * 50000)[:400]},
        "text/csv",
        "a.csv.gz could not be read to the end",
    ),
    (
        "truncated parquet",
        {"a.parquet": parquet_bytes(pa.table({"y": [1.0] * 100, "x": [2.0] * 100}))[:300]},
        "application/x-parquet",
        "is not a readable Parquet file",
    ),
    (
        "truncated recordio",
        {"a.pbr": recordio_bytes(np.ones((20, 3)), np.ones(20))[:-7]},
        "application/x-recordio-protobuf",
        "is not valid RecordIO-protobuf",
    ),
]


@pytest.mark.parametrize(
    ("files", "content_type", "message"),
    [case[1:] for case in BAD_DATA],
    ids=[case[0] for case in BAD_DATA],
)
def test_bad_data_fails_with_a_sentence(
    tmp_path: Path, files: dict, content_type: str, message: str
) -> None:
    with pytest.raises(ClientError) as caught:
        load(write_tree(tmp_path, files), content_type)
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("hyperparameters", "labels", "message"),
    [
        (
            {"objective": "multi:softmax", "num_class": 3},
            "0\n3\n",
            "row 2: label 3 is not a class for multi:softmax with num_class=3",
        ),
        (
            {"objective": "multi:softprob", "num_class": 3},
            "1.5\n",
            "label 1.5 is not a class",
        ),
        ({"objective": "binary:logistic"}, "1\n2\n", "label 2 is outside [0, 1]"),
    ],
    ids=["multi-too-big", "multi-fraction", "binary-outside"],
)
def test_labels_must_suit_the_objective(
    tmp_path: Path, hyperparameters: dict, labels: str, message: str
) -> None:
    text = "".join(f"{label},1\n" for label in labels.split())
    dataset = load(write_tree(tmp_path, {"a.csv": text}), "text/csv")
    with pytest.raises(ClientError) as caught:
        data_loading.check_labels(
            dataset, parse_hyperparameters({"num_round": 1, **hyperparameters})
        )
    assert message in caught.value.message


def test_validation_width_must_match_dense_train(tmp_path: Path) -> None:
    train = load(write_tree(tmp_path / "t", {"a.csv": "1,2,3\n"}), "text/csv")
    validation = load(write_tree(tmp_path / "v", {"a.csv": "1,2\n"}), "text/csv")
    with pytest.raises(ClientError) as caught:
        data_loading.match_width(validation, train)
    assert "Channel 'validation' has 1 feature columns but 'train' has 2" in caught.value.message


def test_sparse_validation_may_be_narrower(tmp_path: Path) -> None:
    train = load(write_tree(tmp_path / "t", {"a": "1 0:1 4:2\n"}), "text/libsvm")
    validation = load(write_tree(tmp_path / "v", {"a": "1 0:1\n"}), "text/libsvm")
    data_loading.match_width(validation, train)
    assert validation.num_columns == train.num_columns == 5


@pytest.mark.parametrize("tree_method", ["hist", "exact"])
def test_to_dmatrix_keeps_rows_labels_weights_without_feature_names(
    tmp_path: Path, tree_method: str
) -> None:
    dataset = load(write_tree(tmp_path, {"a.csv": "1,0.5,3,4\n0,2,5,\n"}), "text/csv", True)
    hp = parse_hyperparameters({"num_round": 1, "tree_method": tree_method})
    matrix = data_loading.to_dmatrix(dataset, hp)
    assert (matrix.num_row(), matrix.num_col()) == (2, 2)
    assert matrix.get_label().tolist() == [1, 0]
    assert matrix.get_weight().tolist() == [0.5, 2]
    assert matrix.feature_names is None
    assert type(matrix).__name__ == ("QuantileDMatrix" if tree_method == "hist" else "DMatrix")
