"""What a client of SageMaker's built-in XGBoost sends and expects, through the real app around a
tiny real model: RecordIO-protobuf bodies (written by sagemaker-training's writer, an
implementation independent of ours) and their errors, the short type names and `label_size`,
newline-ended JSON Lines, and the payload settings `/execution-parameters` reports.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import scipy.sparse as sp
from sagemaker_training import recordio as sm_recordio
from sagemaker_training.record_pb2 import Record

from container import recordio
from container.serving.codecs import text_format

from .helpers import ROWS, csv_body

RECORDIO = {"Content-Type": "application/x-recordio-protobuf"}
MB = 1024 * 1024


def dense_records(rows: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    sink = io.BytesIO()
    sm_recordio._write_numpy_to_dense_tensor(sink, rows, labels)
    return sink.getvalue()


def sparse_records(rows: sp.csr_matrix) -> bytes:
    sink = io.BytesIO()
    sm_recordio._write_spmatrix_to_sparse_tensor(sink, rows)
    return sink.getvalue()


def framed(*messages: Record) -> bytes:
    sink = io.BytesIO()
    for message in messages:
        sm_recordio._write_recordio(sink, message.SerializeToString())
    return sink.getvalue()


def csv_scores(text: str) -> np.ndarray:
    return np.array([float(line) for line in text.split()])


# RecordIO-protobuf requests


def test_dense_records_with_labels_predict_like_csv(make_client, boosters) -> None:
    client = make_client("binary:logistic")
    labels = np.arange(len(ROWS), dtype=np.float64)  # a label, if sent, is ignored

    response = client.post("/invocations", data=dense_records(ROWS, labels), headers=RECORDIO)

    assert response.status_code == 200, response.data
    expected = boosters["binary:logistic"].inplace_predict(ROWS)
    np.testing.assert_allclose(csv_scores(response.text), expected, rtol=1e-6)


def test_sparse_records_narrower_than_the_model_leave_the_rest_missing(make_client, boosters):
    rows = np.where(np.isnan(ROWS), 0.0, ROWS)[:, :3]  # 3 of the model's 4 features
    rows[::3, 1] = 0.0

    response = make_client("reg:squarederror").post(
        "/invocations", data=sparse_records(sp.csr_matrix(rows)), headers=RECORDIO
    )

    assert response.status_code == 200, response.data
    missing = np.where(rows == 0.0, np.nan, rows)
    expected = np.column_stack([missing, np.full(len(rows), np.nan)])
    np.testing.assert_allclose(
        csv_scores(response.text),
        boosters["reg:squarederror"].inplace_predict(expected.astype(np.float32)),
        rtol=1e-6,
    )


def test_recordio_answer_holds_one_record_per_row_with_the_keys_as_labels(make_client, boosters):
    client = make_client("binary:logistic", SAGEMAKER_INFERENCE_OUTPUT="predicted_label,labels")

    response = client.post(
        "/invocations",
        data=dense_records(ROWS[:5]),
        headers={**RECORDIO, "Accept": "application/x-recordio-protobuf"},
    )

    assert response.status_code == 200, response.data
    assert response.mimetype == "application/x-recordio-protobuf"
    records = []
    for payload in recordio.read_payloads(io.BytesIO(response.data)):
        record = Record()
        record.ParseFromString(payload)
        records.append({k: list(v.float32_tensor.values) for k, v in record.label.items()})
    expected = boosters["binary:logistic"].inplace_predict(ROWS[:5]) > 0.5
    assert records == [{"predicted_label": [float(p)], "labels": [0.0, 1.0]} for p in expected]


def _record(keys: list[int] | None, values: list[float], shape: list[int] | None) -> Record:
    record = Record()
    tensor = record.features["values"].float32_tensor
    tensor.values.extend(values)
    if keys is not None:
        tensor.keys.extend(keys)
    if shape is not None:
        tensor.shape.extend(shape)
    return record


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"\x00" * 12,
            "record 1 does not start with the RecordIO magic number 0xCED7230A",
        ),
        (dense_records(ROWS[:3])[:-6], "record 3 is cut short: its header says"),
        (dense_records(ROWS[:1])[:5], "record 1 is cut short inside its 8-byte header"),
        (framed(Record()), "record 1 has no features['values'] tensor"),
        (
            framed(_record(None, [1.0], None), _record([0, 7], [1.0, 2.0], [4])),
            "record 2 has key 7, outside its shape [4]",
        ),
        (framed(_record([0, 1], [1.0], [4])), "record 1 is sparse with 2 keys but 1 values"),
        (
            recordio.MAGIC_BYTES + (3).to_bytes(4, "little") + b"\xff\xff\xff\x00",
            "record 1 is not a SageMaker `Record` protobuf message",
        ),
        (
            recordio.MAGIC_BYTES + (1 << 29 | 4).to_bytes(4, "little") + b"\x00" * 4,
            "record 1 is one part of a record split in parts (flag 1)",
        ),
    ],
    ids=[
        "no-magic",
        "truncated-payload",
        "truncated-header",
        "no-features",
        "key-outside-shape",
        "keys-values-mismatch",
        "not-protobuf",
        "multipart",
    ],
)
def test_unreadable_recordio_is_a_400_naming_the_record(make_client, body, message) -> None:
    response = make_client().post("/invocations", data=body, headers=RECORDIO)

    assert response.status_code == 400, response.data
    error = response.get_json()["error"]
    assert error.startswith("The application/x-recordio-protobuf body is not readable: ")
    assert message in error
    assert "Send SageMaker `Record` messages in RecordIO framing" in error


def test_recordio_rows_of_the_wrong_width_name_the_model_width(make_client) -> None:
    response = make_client().post(
        "/invocations", data=dense_records(ROWS[:2, :3]), headers=RECORDIO
    )

    assert response.status_code == 400
    assert (
        "Each row must have 4 features (the model was trained on 4); got 3."
        in (response.get_json()["error"])
    )


def test_recordio_wider_than_the_column_limit_is_a_413(make_client) -> None:
    body = framed(_record([0], [1.0], [200_001]))

    response = make_client(XGB_SERVER_MAX_COLUMNS="200000").post(
        "/invocations", data=body, headers=RECORDIO
    )

    assert response.status_code == 413
    assert "A row holds 200001 columns; the limit is 200000" in response.get_json()["error"]


# Content types: the short names and label_size


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("csv", csv_body(ROWS[:3])),
        ("text/csv;label_size=1", csv_body(ROWS[:3])),
        ("text/csv; label_size=1; charset=utf-8", csv_body(ROWS[:3])),
        ("libsvm", b"0:0.5 1:0.25 2:0.75 3:0.1\n1:0.3\n2:0.9 3:0.2\n"),
    ],
    ids=["csv", "csv-label-size-1", "csv-label-size-1-charset", "libsvm"],
)
def test_short_type_names_and_label_size_1_read_like_the_full_types(
    make_client, content_type, body
) -> None:
    client = make_client()
    full = "text/libsvm" if "libsvm" in content_type else "text/csv"

    response = client.post("/invocations", data=body, headers={"Content-Type": content_type})

    assert response.status_code == 200, response.data
    assert (
        response.text == client.post("/invocations", data=body, headers={"Content-Type": full}).text
    )
    assert len(response.text.split()) == 3


@pytest.mark.parametrize(
    "content_type", ["text/csv;label_size=2", "text/csv; label_size=0", "text/libsvm; label_size=3"]
)
def test_a_label_size_other_than_1_is_a_415(make_client, content_type) -> None:
    response = make_client().post(
        "/invocations", data=csv_body(ROWS[:1]), headers={"Content-Type": content_type}
    )

    assert response.status_code == 415
    assert response.get_json()["error"] == (
        f"Content-Type {content_type!r} is not supported: label_size must be 1 (and requests "
        "hold no label column, so it may be left out)."
    )


# JSON Lines: every line ends with a newline, endpoint and batch alike


@pytest.mark.parametrize("batch", ["", "true"], ids=["endpoint", "batch"])
@pytest.mark.parametrize("rows", [1, text_format.SMALL_ROWS + 1], ids=["small", "large"])
@pytest.mark.parametrize("keys", ["", "predicted_label,probabilities"], ids=["score", "keys"])
def test_json_lines_answers_end_every_line_with_a_newline(make_client, batch, rows, keys) -> None:
    client = make_client(SAGEMAKER_BATCH=batch, SAGEMAKER_INFERENCE_OUTPUT=keys)
    many = np.resize(ROWS, (rows, ROWS.shape[1]))

    response = client.post(
        "/invocations",
        data=csv_body(many),
        headers={"Content-Type": "text/csv", "Accept": "application/jsonlines"},
    )

    assert response.status_code == 200, response.data
    assert response.text.endswith("}\n")
    lines = response.text.split("\n")
    assert lines[-1] == ""
    assert len(lines) == rows + 1
    assert all(isinstance(json.loads(line), dict) for line in lines[:-1])


# Payload limits: ours and the built-in's MAX_CONTENT_LENGTH


@pytest.mark.parametrize(
    ("env", "limit_bytes", "reported_mb", "limit_text"),
    [
        ({}, 6 * MB, 6, "6 MB"),
        ({"MAX_CONTENT_LENGTH": str(2 * MB)}, 2 * MB, 2, "2 MB"),
        ({"MAX_CONTENT_LENGTH": "300000"}, 300_000, 1, "300000 bytes"),
        ({"SAGEMAKER_BATCH": "true", "MAX_CONTENT_LENGTH": str(8 * MB)}, 8 * MB, 8, "8 MB"),
        (
            {
                "SAGEMAKER_BATCH": "true",
                "SAGEMAKER_MAX_PAYLOAD_IN_MB": "3",
                "MAX_CONTENT_LENGTH": str(8 * MB),
            },
            3 * MB,
            3,
            "3 MB",
        ),
    ],
    ids=["default", "max-content-length", "under-1-mb", "batch-max-content-length", "batch-ours"],
)
def test_payload_limit_and_execution_parameters_follow_either_setting(
    make_client, env, limit_bytes, reported_mb, limit_text
) -> None:
    client = make_client(**env)
    row = b"0.1,0.2,0.3,0.4\n"
    fits = row * (limit_bytes // len(row))
    over = fits + row

    assert client.get("/execution-parameters").get_json()["MaxPayloadInMB"] == reported_mb
    assert (
        client.post("/invocations", data=fits, headers={"Content-Type": "text/csv"}).status_code
        == 200
    )
    response = client.post("/invocations", data=over, headers={"Content-Type": "text/csv"})
    assert response.status_code == 413
    assert f"the limit is {limit_text}" in response.get_json()["error"]


def test_a_max_content_length_that_is_not_a_number_stops_start_up(make_client) -> None:
    with pytest.raises(ValueError, match=r"MAX_CONTENT_LENGTH='6MB' is not an integer"):
        make_client(MAX_CONTENT_LENGTH="6MB")


def test_dense_records_of_different_widths_leave_the_short_rows_missing(make_client, boosters):
    body = framed(_record(None, [0.2, 0.4, 0.6, 0.8], None), _record(None, [0.3, 0.5], None))

    response = make_client("reg:squarederror").post("/invocations", data=body, headers=RECORDIO)

    assert response.status_code == 200, response.data
    rows = np.array([[0.2, 0.4, 0.6, 0.8], [0.3, 0.5, np.nan, np.nan]], dtype=np.float32)
    expected = boosters["reg:squarederror"].inplace_predict(rows)
    np.testing.assert_allclose(csv_scores(response.text), expected, rtol=1e-6)


def test_training_reads_dense_records_with_their_zeros_as_values() -> None:
    body = dense_records(np.array([[0.0, 1.5], [2.0, 0.0]]), np.array([1.0, 0.0]))
    rows = recordio.read_rows(io.BytesIO(body), with_labels=True)

    matrix = rows.as_csr()
    assert matrix.nnz == 4  # zeros are values, not missing
    assert matrix.toarray().tolist() == [[0.0, 1.5], [2.0, 0.0]]
    assert rows.labels.tolist() == [1.0, 0.0]
