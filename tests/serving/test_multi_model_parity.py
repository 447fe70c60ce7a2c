"""`POST /models/NAME/invoke` answers byte for byte as the single-model `/invocations` does for
the same model: every request type, Accept type, output key and error (in-process WSGI apps
built by `create_app`, each around a real model)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from flask.testing import FlaskClient

from container.serving.app import create_app
from container.serving.model_loading import load_model
from container.settings import Settings

from .helpers import ROWS, csv_body, save_model_dir

OBJECTIVES = ("binary:logistic", "multi:softprob", "reg:squarederror")


def _npy(rows: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, rows)
    return buffer.getvalue()


def _listed(rows: np.ndarray) -> list[list[float | None]]:
    return [[None if np.isnan(v) else float(v) for v in row] for row in rows]


REQUESTS = {
    "csv": ("text/csv", csv_body(ROWS[:5])),
    "json": ("application/json", json.dumps({"instances": _listed(ROWS[:5])}).encode()),
    "jsonlines": (
        "application/jsonlines",
        "\n".join(json.dumps(row) for row in _listed(ROWS[:5])).encode(),
    ),
    "libsvm": ("text/libsvm", b"0:0.5 2:0.25\n1:0.75 3:0.1\n"),
    "npy": ("application/x-npy", _npy(ROWS[:5])),
    "wrong-width": ("text/csv", b"1,2\n"),
    "infinite": ("text/csv", b"1,inf,2,3\n"),
    "unknown-type": ("image/png", b"1,2,3,4\n"),
    "empty": ("text/csv", b""),
}
ACCEPTS = ("text/csv", "application/json", "application/jsonlines", "image/png", None)


@pytest.fixture(scope="module")
def clients(
    boosters: dict[str, xgb.Booster], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[FlaskClient, FlaskClient]]:
    """For each objective: a single-model app and a multi-model app with that model loaded."""
    base = tmp_path_factory.mktemp("parity")
    pairs = {}
    for objective in OBJECTIVES:
        name = objective.replace(":", "-")
        folder = save_model_dir(base / "models" / name, boosters[objective])
        env = {"SAGEMAKER_BASE_DIR": str(base)}
        single = create_app(load_model(folder), Settings.from_environ(env)).test_client()
        multi = create_app(
            None, Settings.from_environ({**env, "SAGEMAKER_MULTI_MODEL": "true"})
        ).test_client()
        loaded = multi.post("/models", json={"model_name": name, "url": str(folder)})
        assert loaded.status_code == 200, loaded.text
        pairs[objective] = (single, multi)
    return pairs


@pytest.mark.parametrize("accept", ACCEPTS, ids=lambda a: f"accept={a}")
@pytest.mark.parametrize("request_name", REQUESTS)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_invoke_answers_as_invocations(
    clients: dict[str, tuple[FlaskClient, FlaskClient]],
    objective: str,
    request_name: str,
    accept: str | None,
) -> None:
    single, multi = clients[objective]
    content_type, body = REQUESTS[request_name]
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    expected = single.post("/invocations", data=body, headers=headers)
    got = multi.post(f"/models/{objective.replace(':', '-')}/invoke", data=body, headers=headers)
    assert (got.status_code, got.content_type, got.data) == (
        expected.status_code,
        expected.content_type,
        expected.data,
    )


@pytest.mark.parametrize(
    "attributes",
    ["inference_output=predicted_label,probabilities", "inference_output=labels", "other=1"],
)
def test_output_keys_from_custom_attributes_answer_alike(
    clients: dict[str, tuple[FlaskClient, FlaskClient]], attributes: str
) -> None:
    single, multi = clients["binary:logistic"]
    headers = {
        "Content-Type": "text/csv",
        "Accept": "application/json",
        "X-Amzn-SageMaker-Custom-Attributes": attributes,
    }
    body = csv_body(ROWS[:3])
    expected = single.post("/invocations", data=body, headers=headers)
    got = multi.post("/models/binary-logistic/invoke", data=body, headers=headers)
    assert (got.status_code, got.headers, got.data) == (
        expected.status_code,
        expected.headers,
        expected.data,
    )


def test_ping_answers_with_no_model_loaded(tmp_path: Path) -> None:
    env = {"SAGEMAKER_BASE_DIR": str(tmp_path), "SAGEMAKER_MULTI_MODEL": "true"}
    client = create_app(None, Settings.from_environ(env)).test_client()
    assert client.get("/ping").status_code == 200
    assert client.get("/models").json == {"models": []}
