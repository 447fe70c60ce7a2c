"""Script mode: the built-in input_fn hands a user's predict_fn an `xgb.DMatrix`, as SageMaker's
XGBoost does, so a module with only `predict_fn` calling `model.predict(data)` serves every
request type through the real `./serve` (gunicorn on 127.0.0.1).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
import requests
import scipy.sparse as sp
import xgboost as xgb
from sagemaker_training import recordio as sm_recordio

from tests.support.server import Server, predict_csv, running_server

from .helpers import ROWS, csv_body, model_dir_with_code, train_booster

pytestmark = pytest.mark.slow

PREDICT_ONLY = """
import xgboost as xgb


def predict_fn(data, model):
    if not isinstance(data, xgb.DMatrix):
        raise TypeError(f"predict_fn got {type(data).__name__}, not an xgboost.DMatrix")
    return model.predict(data)
"""


def _recordio(rows: np.ndarray | sp.csr_matrix) -> bytes:
    sink = io.BytesIO()
    if sp.issparse(rows):
        sm_recordio._write_spmatrix_to_sparse_tensor(sink, rows)
    else:
        sm_recordio._write_numpy_to_dense_tensor(sink, rows)
    return sink.getvalue()


def _libsvm(rows: np.ndarray) -> bytes:
    lines = [  # the first token is the label, as in training (read and ignored)
        " ".join(["0"] + [f"{j}:{v!r}" for j, v in enumerate(row.tolist()) if not np.isnan(v)])
        for row in rows
    ]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    return train_booster("binary:logistic")


@pytest.fixture(scope="module")
def server(booster: xgb.Booster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("predict-only")
    model_dir_with_code(root, PREDICT_ONLY, booster)
    with running_server(root, SAGEMAKER_MODEL_SERVER_WORKERS="1") as served:
        yield served


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/csv", csv_body(ROWS)),
        ("text/libsvm", _libsvm(ROWS)),
        ("application/x-recordio-protobuf", _recordio(ROWS)),
        ("application/x-recordio-protobuf", _recordio(sp.csr_matrix(np.nan_to_num(ROWS)))),
        ("application/json", str(ROWS.tolist()).replace("nan", "null").encode()),
    ],
    ids=["csv", "libsvm", "recordio-dense", "recordio-sparse", "json"],
)
def test_predict_fn_alone_gets_a_dmatrix_and_model_predict_works(
    server: Server, booster: xgb.Booster, content_type: str, body: bytes
) -> None:
    got = predict_csv(server, content_type, body)

    expected = booster.predict(xgb.DMatrix(ROWS))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_a_bad_body_is_still_the_built_in_input_fns_400(server: Server) -> None:
    response = requests.post(
        f"{server.url}/invocations",
        data=b"0.1,abc,0.3,0.4\n",
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )

    assert response.status_code == 400
    assert "text/csv row 1, column 2" in response.json()["error"]
