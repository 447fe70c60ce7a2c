"""One /invocations pipeline: a user's function replaces its step, the other steps are the
built-in ones, with the same answers and the same sentences as a server without user code.

Apps are built by `wsgi.load_application` from real `/opt/ml` trees (real models, real
`code/inference.py` files) and called through Flask's test client.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient

from container.serving import wsgi
from container.settings import Settings

from .helpers import ROWS, csv_body, model_dir_with_code, save_model_dir, train_booster

ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
PREDICT_ONLY = """
    def predict_fn(data, model):
        return model.predict(data)
"""
INPUT_ONLY = """
    import numpy as np

    def input_fn(body, content_type):
        return np.array([[float(v) for v in line.split("|")] for line in body.decode().split(";")])
"""
OUTPUT_ONLY = """
    def output_fn(prediction, accept):
        return ",".join(f"{p:.6f}" for p in prediction), "text/plain"
"""
TRANSFORM_ONLY = """
    def transform_fn(model, body, content_type, accept):
        return f"{len(body)} bytes of {content_type} for {accept}"
"""
RESPONSE_OUTPUT = """
    from flask import Response

    def output_fn(prediction, accept):
        return Response("accepted", status=202, headers={"X-Rows": str(len(prediction))})
"""


def _client(root: Path, code: str | None, **env: str) -> FlaskClient:
    booster = train_booster("binary:logistic")
    if code is None:
        save_model_dir(root, booster)
    else:
        model_dir_with_code(root, code, booster)
    settings = Settings.from_environ({"SAGEMAKER_BASE_DIR": str(root), **env})
    return wsgi.load_application(settings)[1].test_client()


@pytest.fixture
def builtin(tmp_path: Path) -> FlaskClient:
    return _client(tmp_path / "builtin", None)


BAD_REQUESTS = {
    "unsupported-type-415": ({"Content-Type": "text/html"}, csv_body(ROWS[:1])),
    "not-acceptable-406": ({"Accept": "image/png"}, csv_body(ROWS[:1])),
    "bad-cell-400": ({"Content-Type": "text/csv"}, b"0.1,x,0.3,0.4"),
    "too-wide-413": ({"Content-Type": "text/csv"}, b"0," * 200_000 + b"0"),
    "unknown-output-key-400": ({ATTRIBUTES: "inference_output=nonsense"}, csv_body(ROWS[:1])),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_a_user_predict_fn_keeps_the_built_in_decode_and_its_sentences(
    tmp_path: Path, builtin: FlaskClient, name: str
) -> None:
    """With only predict_fn defined, decoding and header checks are the built-in steps'."""
    request_headers, body = BAD_REQUESTS[name]
    with_predict_fn = _client(tmp_path / "user", PREDICT_ONLY)
    expected = builtin.post("/invocations", data=body, headers=request_headers)
    got = with_predict_fn.post("/invocations", data=body, headers=request_headers)
    if name == "unknown-output-key-400":
        # A user's predict_fn answers what it computes: no output keys are selected from it.
        assert expected.status_code == 400 and got.status_code == 200
        return
    assert (got.status_code, got.json) == (expected.status_code, expected.json)
    assert got.status_code >= 400 and got.json["error"].endswith(".")


@pytest.mark.parametrize("accept", ["text/csv", "application/json", "application/jsonlines", "*/*"])
def test_a_user_predict_fn_answers_through_the_built_in_encoders(
    tmp_path: Path, builtin: FlaskClient, accept: str
) -> None:
    with_predict_fn = _client(tmp_path / "user", PREDICT_ONLY)
    request_headers = {"Content-Type": "text/csv", "Accept": accept, ATTRIBUTES: "trace=7"}
    body = csv_body(ROWS[:5])
    expected = builtin.post("/invocations", data=body, headers=request_headers)
    got = with_predict_fn.post("/invocations", data=body, headers=request_headers)
    assert got.status_code == expected.status_code == 200
    assert got.headers["Content-Type"] == expected.headers["Content-Type"]
    assert got.data == expected.data
    assert got.headers[ATTRIBUTES] == expected.headers[ATTRIBUTES] == "trace=7"


@pytest.mark.parametrize(
    "code", [INPUT_ONLY, OUTPUT_ONLY, TRANSFORM_ONLY], ids=["input_fn", "output_fn", "transform_fn"]
)
def test_the_custom_attributes_are_echoed_whatever_step_the_user_replaced(
    tmp_path: Path, code: str
) -> None:
    client = _client(tmp_path, code)
    body = b"0.1|0.2|0.3|0.4" if code is INPUT_ONLY else csv_body(np.nan_to_num(ROWS[:2]))
    response = client.post(
        "/invocations", data=body, headers={"Content-Type": "text/csv", ATTRIBUTES: "a=1"}
    )
    assert response.status_code == 200, response.data
    assert response.headers[ATTRIBUTES] == "a=1"


def test_output_fn_may_answer_with_its_own_response(tmp_path: Path) -> None:
    client = _client(tmp_path, RESPONSE_OUTPUT)
    response = client.post("/invocations", data=csv_body(ROWS[:3]))
    assert (response.status_code, response.data) == (202, b"accepted")
    assert response.headers["X-Rows"] == "3"
    assert response.headers["Content-Length"] == "8"


def test_a_user_app_serves_the_other_routes_from_the_same_app(tmp_path: Path) -> None:
    client = _client(tmp_path, TRANSFORM_ONLY)
    assert client.get("/ping").status_code == 200
    assert client.get("/execution-parameters").json["BatchStrategy"] == "MultiRecord"
    refused = client.get("/invocations")
    assert refused.status_code == 405 and refused.headers["Allow"] == "POST"
