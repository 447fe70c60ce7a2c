"""The Flask app through its test client: every status and format, with exact messages."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import xgboost as xgb

from container.errors import ClientError
from container.serving.codecs import csv_codec
from container.serving.dense_predict import DensePredictor

from .helpers import ROWS, csv_body

CSV = {"Content-Type": "text/csv"}
ROW = "0.1,0.2,0.3,0.4"


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _expected(booster: xgb.Booster, rows: np.ndarray) -> np.ndarray:
    return booster.predict(xgb.DMatrix(rows), validate_features=False)


def _csv_values(text: str) -> np.ndarray:
    return np.array([[float(v) for v in line.split(",")] for line in text.splitlines()])


def test_ping_is_200_and_empty(make_client) -> None:
    response = make_client().get("/ping")
    assert response.status_code == 200
    assert response.data == b""


def test_execution_parameters(make_client) -> None:
    response = make_client(SAGEMAKER_MODEL_SERVER_WORKERS="3").get("/execution-parameters")
    assert response.status_code == 200
    assert response.get_json() == {
        "MaxConcurrentTransforms": 3,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
    }


@pytest.mark.parametrize("objective", ["binary:logistic", "reg:squarederror", "multi:softprob"])
def test_csv_predictions_equal_booster_predict(make_client, boosters, objective) -> None:
    response = make_client(objective).post("/invocations", data=csv_body(ROWS), headers=CSV)
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/csv"
    got = _csv_values(response.get_data(as_text=True))
    expected = _expected(boosters[objective], ROWS).reshape(len(ROWS), -1)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_large_csv_through_the_arrow_parser_equals_booster_predict(make_client, boosters) -> None:
    rows = np.random.default_rng(11).random((5000, 4)).astype(np.float32)
    rows[::3, 2] = np.nan
    body = csv_body(rows)
    assert len(body) >= csv_codec.ARROW_MIN_BYTES
    response = make_client("multi:softprob").post("/invocations", data=body, headers=CSV)
    assert response.status_code == 200, response.data
    got = _csv_values(response.get_data(as_text=True))
    np.testing.assert_allclose(got, _expected(boosters["multi:softprob"], rows), rtol=1e-6)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/csv", csv_body(ROWS)),
        ("text/csv; charset=utf-8", csv_body(ROWS).replace(b"\n", b"\r\n").rstrip()),
        ("application/json", json.dumps(np.where(np.isnan(ROWS), None, ROWS).tolist()).encode()),
        (
            "application/json",
            json.dumps({"instances": np.where(np.isnan(ROWS), None, ROWS).tolist()}).encode(),
        ),
        (
            "application/json",
            json.dumps(
                {
                    "instances": [
                        {"features": r} for r in np.where(np.isnan(ROWS), None, ROWS).tolist()
                    ]
                }
            ).encode(),
        ),
        (
            "application/jsonlines",
            "\n".join(
                json.dumps(r) for r in np.where(np.isnan(ROWS), None, ROWS).tolist()
            ).encode(),
        ),
        (
            "application/jsonlines",
            "\n".join(
                json.dumps({"features": r}) for r in np.where(np.isnan(ROWS), None, ROWS).tolist()
            ).encode(),
        ),
        (
            "text/libsvm",
            "\n".join(
                "1 " + " ".join(f"{j}:{v!r}" for j, v in enumerate(r.tolist()) if not np.isnan(v))
                for r in ROWS
            ).encode(),
        ),
        ("application/x-npy", _npy(ROWS)),
        ("application/x-npy", _npy(ROWS.astype(np.float64))),
    ],
    ids=[
        "csv",
        "csv-crlf-charset-no-final-newline",
        "json-list",
        "json-instances",
        "json-features",
        "jsonlines-lists",
        "jsonlines-features",
        "libsvm",
        "npy-float32",
        "npy-float64",
    ],
)
def test_every_content_type_gives_booster_predictions(
    make_client, boosters, content_type, body
) -> None:
    response = make_client().post(
        "/invocations",
        data=body,
        headers={"Content-Type": content_type, "Accept": "application/json"},
    )
    assert response.status_code == 200, response.data
    scores = [p["score"] for p in response.get_json()["predictions"]]
    np.testing.assert_allclose(scores, _expected(boosters["binary:logistic"], ROWS), rtol=1e-6)


def test_libsvm_rows_may_leave_out_trailing_features(make_client, boosters) -> None:
    rows = np.array([[0.5, np.nan, np.nan, np.nan], [np.nan, 0.2, np.nan, np.nan]], np.float32)
    response = make_client().post(
        "/invocations", data=b"1 0:0.5\n1 1:0.2\n", headers={"Content-Type": "text/libsvm"}
    )
    assert response.status_code == 200, response.data
    got = [float(v) for v in response.get_data(as_text=True).splitlines()]
    np.testing.assert_allclose(got, _expected(boosters["binary:logistic"], rows), rtol=1e-6)


def test_missing_content_type_reads_csv(make_client) -> None:
    response = make_client().post("/invocations", data=ROW)
    assert response.status_code == 200
    assert float(response.data) > 0


def test_single_row_npy_1d_and_json_flat_list(make_client) -> None:
    client = make_client()
    row = np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32)
    from_npy = client.post(
        "/invocations", data=_npy(row), headers={"Content-Type": "application/x-npy"}
    )
    from_json = client.post(
        "/invocations", data=json.dumps(row.tolist()), headers={"Content-Type": "application/json"}
    )
    assert from_npy.status_code == from_json.status_code == 200
    assert from_npy.data == from_json.data


@pytest.mark.parametrize(
    ("accept", "mimetype", "expected_text"),
    [
        (None, "text/csv", "{s0}\n{s1}"),
        ("*/*", "text/csv", "{s0}\n{s1}"),
        ("text/csv", "text/csv", "{s0}\n{s1}"),
        (
            "application/json",
            "application/json",
            '{{"predictions":[{{"score":{s0}}},{{"score":{s1}}}]}}',
        ),
        ("application/jsonlines", "application/jsonlines", '{{"score":{s0}}}\n{{"score":{s1}}}\n'),
        ("text/html;q=0.9, application/json;q=0.5, text/csv;q=0.8", "text/csv", "{s0}\n{s1}"),
        (
            "application/json;q=0.2, application/jsonlines",
            "application/jsonlines",
            '{{"score":{s0}}}\n{{"score":{s1}}}\n',
        ),
        (
            "application/*",
            "application/json",
            '{{"predictions":[{{"score":{s0}}},{{"score":{s1}}}]}}',
        ),
    ],
    ids=["none", "any", "csv", "json", "jsonlines", "q-values", "q-order", "wildcard-subtype"],
)
def test_accept_picks_response_format(make_client, accept, mimetype, expected_text) -> None:
    body = f"{ROW}\n0.9,0.8,0.7,0.6\n"
    client = make_client()
    s0, s1 = client.post("/invocations", data=body, headers=CSV).get_data(as_text=True).split()
    headers = CSV | ({"Accept": accept} if accept else {})
    response = client.post("/invocations", data=body, headers=headers)
    assert response.status_code == 200, response.data
    assert response.mimetype == mimetype
    assert response.get_data(as_text=True) == expected_text.format(s0=s0, s1=s1)


def test_default_accept_from_environment(make_client) -> None:
    client = make_client(SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT="application/jsonlines")
    response = client.post("/invocations", data=ROW, headers={**CSV, "Accept": "*/*"})
    assert response.mimetype == "application/jsonlines"
    assert list(json.loads(response.data)) == ["score"]


def test_softprob_csv_is_probabilities_comma_separated(make_client, boosters) -> None:
    response = make_client("multi:softprob").post(
        "/invocations", data=csv_body(ROWS[:2]), headers=CSV
    )
    lines = response.get_data(as_text=True).splitlines()
    assert len(lines) == 2
    assert all(len(line.split(",")) == 3 for line in lines)


def test_batch_mode_one_newline_terminated_line_per_row(make_client) -> None:
    client = make_client(SAGEMAKER_BATCH="true")
    response = client.post("/invocations", data=csv_body(ROWS), headers=CSV)
    text = response.get_data(as_text=True)
    assert text.endswith("\n")
    assert len(text.splitlines()) == len(ROWS)


def test_batch_mode_payload_limit_from_environment(make_client) -> None:
    client = make_client(SAGEMAKER_BATCH="true", SAGEMAKER_MAX_PAYLOAD_IN_MB="1")
    body = (ROW + "\n").encode() * (1024 * 1024 // len(ROW) + 1)
    response = client.post("/invocations", data=body, headers=CSV)
    assert response.status_code == 413
    assert "the limit is 1 MB" in response.get_json()["error"]
    params = client.get("/execution-parameters").get_json()
    assert params["MaxPayloadInMB"] == 1


@pytest.mark.parametrize(
    ("objective", "keys", "expected"),
    [
        ("binary:logistic", "predicted_label,probability", ["predicted_label", "probability"]),
        ("binary:logistic", "probabilities,labels", ["probabilities", "labels"]),
        (
            "multi:softprob",
            "predicted_label,probabilities,raw_score",
            ["predicted_label", "probabilities", "raw_score"],
        ),
        ("multi:softmax", "predicted_label,labels", ["predicted_label", "labels"]),
        ("binary:hinge", "raw_scores", ["raw_scores"]),
        ("reg:squarederror", "predicted_score", ["predicted_score"]),
    ],
    ids=["binary-label-probability", "binary-lists", "softprob", "softmax", "hinge", "regression"],
)
def test_selected_output_keys(make_client, boosters, objective, keys, expected) -> None:
    client = make_client(objective, SAGEMAKER_INFERENCE_OUTPUT=keys)
    response = client.post(
        "/invocations", data=csv_body(ROWS[:3]), headers={**CSV, "Accept": "application/json"}
    )
    assert response.status_code == 200, response.data
    predictions = response.get_json()["predictions"]
    assert [list(p) for p in predictions] == [expected] * 3
    raw = _expected(boosters[objective], ROWS[:3])
    for prediction, row in zip(predictions, raw, strict=True):
        if "predicted_label" in prediction:
            label = (
                int(np.argmax(row))
                if raw.ndim == 2
                else int(row > 0.5)
                if objective == "binary:logistic"
                else int(row)
            )
            assert prediction["predicted_label"] == label
        if "probabilities" in prediction:
            expected_probabilities = row.tolist() if raw.ndim == 2 else [1 - float(row), float(row)]
            np.testing.assert_allclose(
                prediction["probabilities"], expected_probabilities, rtol=1e-6
            )


def test_selected_output_csv_quotes_lists_like_the_builtin(make_client, boosters) -> None:
    client = make_client(
        "binary:logistic", SAGEMAKER_INFERENCE_OUTPUT="predicted_label,probabilities"
    )
    response = client.post("/invocations", data=ROW, headers=CSV)
    label, probabilities = response.get_data(as_text=True).split(",", 1)
    assert label in {"0", "1"}
    assert probabilities.startswith('"[') and probabilities.endswith(']"')
    assert len(json.loads(probabilities.strip('"'))) == 2


def test_custom_attributes_choose_output_per_request_and_are_echoed(make_client) -> None:
    attributes = "trace=abc; inference_output=predicted_label,probability"
    response = make_client().post(
        "/invocations",
        data=ROW,
        headers={
            **CSV,
            "Accept": "application/json",
            "X-Amzn-SageMaker-Custom-Attributes": attributes,
        },
    )
    assert response.status_code == 200
    assert response.headers["X-Amzn-SageMaker-Custom-Attributes"] == attributes
    assert list(response.get_json()["predictions"][0]) == ["predicted_label", "probability"]


LONG_CSV = (ROW + "\n") * 3


@pytest.mark.parametrize(
    ("env", "headers", "body", "status", "message"),
    [
        ({}, CSV, b"", 400, "The request body is empty; send at least one row of features."),
        ({}, CSV, b"\n\n", 400, "The request body is empty; send at least one row of features."),
        ({}, CSV, b"0.1,0.2,abc,0.4\n", 400, "text/csv row 1, column 3: 'abc' is not a number."),
        (
            {},
            CSV,
            b"0.1,0.2,0.3,0.4\n0.1,0.2\n",
            400,
            "text/csv row 2 has 2 fields but the rows before it have 4.",
        ),
        ({}, CSV, b"0.1,0.2,0.3,0.4\n\n0.1,0.2,0.3,0.4\n", 400, "text/csv row 2 is empty."),
        (
            {},
            CSV,
            b"0.1,0.2,0.3\n",
            400,
            "Each row must have 4 features (the model was trained on 4); got 3.",
        ),
        (
            {},
            CSV,
            b"1,0.1,0.2,0.3,0.4\n",
            400,
            "Each row must have 4 features (the model was trained on 4); got 5. "
            "Send the features only, without the label column.",
        ),
        ({}, CSV, b"0.1,1e400,0.3,0.4\n", 400, "Row 1, column 2 is infinite"),
        ({}, CSV, b"0.1,\xff\xfe,0.3,0.4\n", 400, "text/csv row 1, column 2:"),
        (
            {},
            {"Content-Type": "application/json"},
            b"[[0.1, 0.2",
            400,
            "The application/json body is not valid JSON: Expecting",
        ),
        (
            {},
            {"Content-Type": "application/json"},
            b'[[0.1, 0.2, "x", 0.4]]',
            400,
            "application/json row 1, column 3: 'x' is not a number.",
        ),
        (
            {},
            {"Content-Type": "application/json"},
            b"[[0.1, 0.2, 1" + b"0" * 400 + b", 0.4]]",
            400,
            "application/json row 1, column 3: 1000000000000000000000000000000000000000... is too "
            "large.",
        ),
        (
            {},
            {"Content-Type": "application/json"},
            b'[[0.1, 0.2, {"a": 1}, 0.4]]',
            400,
            "application/json row 1, column 3: {'a': 1} is not a number.",
        ),
        (
            {},
            {"Content-Type": "application/json"},
            b"[[0.1, 0.2, 0.3, 0.4], [0.1]]",
            400,
            "application/json row 2 has 1 features but row 1 has 4.",
        ),
        (
            {},
            {"Content-Type": "application/json"},
            b'{"rows": []}',
            400,
            "The application/json object has no 'instances' key (keys: rows)",
        ),
        ({}, {"Content-Type": "application/json"}, b"[]", 400, "The request holds no rows"),
        (
            {},
            {"Content-Type": "application/json"},
            b"[" * 100000 + b"]" * 100000,
            400,
            "nested too deeply",
        ),
        (
            {},
            {"Content-Type": "application/json"},
            b'{"instances": [{"x": [1]}]}',
            400,
            "application/json item 1 is an object without a 'features' key",
        ),
        (
            {},
            {"Content-Type": "application/jsonlines"},
            b"[0.1,0.2,0.3,0.4]\n[0.1,\n",
            400,
            "application/jsonlines line 2 is not valid JSON",
        ),
        (
            {},
            {"Content-Type": "application/jsonlines"},
            b"[0.1,0.2,0.3,0.4]\n\n[0.1,0.2,0.3,0.4]\n\n",
            400,
            "application/jsonlines line 2 is empty; every line must hold one row.",
        ),
        (
            {},
            {"Content-Type": "text/libsvm"},
            b"1 0:0.1 x:0.2\n",
            400,
            "text/libsvm row 1, column 3: 'x:0.2' has an index that is not a non-negative integer.",
        ),
        (
            {},
            {"Content-Type": "text/libsvm"},
            b"1 0:0.1 1:abc\n",
            400,
            "text/libsvm row 1: value 'abc' is not a number.",
        ),
        (
            {},
            {"Content-Type": "text/libsvm"},
            b"1 0:0.1 9:0.2\n",
            400,
            "Feature index 9 is out of range: the model has 4 features, so indices run from 0 "
            "to 3.",
        ),
        (
            {},
            {"Content-Type": "text/libsvm"},
            b"1 0:0.1 2:inf\n",
            400,
            "Row 1, index 2 is infinite; send a finite number, or leave the index out",
        ),
        (
            {},
            {"Content-Type": "application/x-npy"},
            b"not an npy file",
            400,
            "The application/x-npy body is not a readable NumPy array",
        ),
        (
            {},
            {"Content-Type": "application/x-npy"},
            _npy(np.array([["a", "b"]])),
            400,
            "is not numeric",
        ),
        (
            {},
            {"Content-Type": "application/x-npy"},
            _npy(np.zeros((2, 2, 2))),
            400,
            "the array has 3 dimensions",
        ),
        (
            {},
            {"Content-Type": "application/xml"},
            b"<a/>",
            415,
            "Content-Type 'application/xml' is not supported. Send one of: application/json, "
            "application/jsonlines, application/x-npy, application/x-recordio-protobuf, csv, "
            "libsvm, text/csv, text/libsvm, text/x-libsvm.",
        ),
        (
            {},
            {"Content-Type": "text/csv; charset=utf-16"},
            ROW.encode(),
            415,
            "charset 'utf-16' is not supported",
        ),
        (
            {},
            {**CSV, "Accept": "application/xml"},
            ROW.encode(),
            406,
            "Accept 'application/xml' matches no response type this server writes. "
            "Ask for one of: text/csv, application/json, application/jsonlines, "
            "application/x-recordio-protobuf.",
        ),
        ({}, {**CSV, "Accept": "text/csv;q=0"}, ROW.encode(), 406, "matches no response type"),
        (
            {"XGB_SERVER_MAX_ROWS": "2"},
            CSV,
            LONG_CSV.encode(),
            413,
            "The request holds 3 rows; the limit is 2 (XGB_SERVER_MAX_ROWS).",
        ),
        (
            {"XGB_SERVER_MAX_COLUMNS": "3"},
            CSV,
            LONG_CSV.encode(),
            413,
            "A row holds 4 columns; the limit is 3 (XGB_SERVER_MAX_COLUMNS).",
        ),
        ({}, CSV, b"0.1," * (7 * 1024 * 1024 // 4), 413, "the limit is 6 MB"),
        (
            {},
            {**CSV, "X-Amzn-SageMaker-Custom-Attributes": "inference_output=predicted_score"},
            ROW.encode(),
            400,
            "X-Amzn-SageMaker-Custom-Attributes inference_output=: predicted_score cannot be "
            "computed for a model with objective binary:logistic; it answers predicted_label, "
            "labels, probability, probabilities, raw_score, raw_scores.",
        ),
        (
            {},
            {**CSV, "X-Amzn-SageMaker-Custom-Attributes": "inference_output=colour"},
            ROW.encode(),
            400,
            "unknown output key(s) colour",
        ),
    ],
    ids=[
        "empty",
        "blank-lines",
        "csv-bad-cell",
        "csv-ragged",
        "csv-blank-row",
        "too-few-features",
        "label-column",
        "infinity",
        "invalid-utf8",
        "json-syntax",
        "json-bad-cell",
        "json-huge-integer",
        "json-object-cell",
        "json-ragged",
        "json-no-instances",
        "json-empty",
        "json-deep-nesting",
        "json-object-without-features",
        "jsonlines-bad-line",
        "jsonlines-blank-line",
        "libsvm-bad-index",
        "libsvm-bad-value",
        "libsvm-index-out-of-range",
        "libsvm-infinity",
        "npy-garbage",
        "npy-strings",
        "npy-3d",
        "unsupported-content-type",
        "unsupported-charset",
        "unsupported-accept",
        "accept-q-zero",
        "too-many-rows",
        "too-many-columns",
        "too-large",
        "output-key-wrong-objective",
        "output-key-unknown",
    ],
)
def test_client_errors(make_client, env, headers, body, status, message) -> None:
    response = make_client(**env).post("/invocations", data=body, headers=headers)
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    assert message in response.get_json()["error"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/xml"},
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT='application/xml' is not a response type this "
            "server writes; use one of: text/csv, application/json, application/jsonlines, "
            "application/x-recordio-protobuf.",
        ),
        (
            {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,colour"},
            "SAGEMAKER_INFERENCE_OUTPUT: unknown output key(s) colour; the keys are "
            "predicted_label, labels, probability, probabilities, raw_score, raw_scores, "
            "predicted_score.",
        ),
    ],
    ids=["default-accept", "inference-output"],
)
def test_bad_settings_stop_create_app(make_client, env, message) -> None:
    with pytest.raises(ClientError) as error:
        make_client(**env)
    assert error.value.message == message


def test_default_accept_with_parameters_is_accepted(make_client) -> None:
    client = make_client(SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT="application/json; charset=utf-8")
    response = client.post("/invocations", data=ROW, headers=CSV)
    assert response.mimetype == "application/json"


def test_unknown_route_and_wrong_method_are_json(make_client) -> None:
    client = make_client()
    missing = client.get("/nope")
    wrong = client.get("/invocations")
    assert (missing.status_code, wrong.status_code) == (404, 405)
    assert "not found" in missing.get_json()["error"].lower()
    assert "method is not allowed" in wrong.get_json()["error"].lower()
    assert wrong.headers["Allow"] == "POST"


def test_server_fault_is_a_generic_500_without_traceback(make_client, monkeypatch, caplog) -> None:
    """A fault on our side (here: the prediction call raising) is logged, never shown to the
    client."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("booster handle lost")

    client = make_client()
    monkeypatch.setattr(DensePredictor, "__call__", broken)
    response = client.post("/invocations", data=ROW, headers=CSV)
    assert response.status_code == 500
    assert response.get_json() == {"error": "Internal server error; see the server log."}
    assert "booster handle lost" in caplog.text
    assert "Traceback" in caplog.text
