"""The built-in algorithm's client behaviour through the real `./serve` (gunicorn on 127.0.0.1):
RecordIO-protobuf bodies written by the SageMaker SDK's own `RecordSerializer` /
`write_spmatrix_to_sparse_tensor` and answers read back by its own `RecordDeserializer`
(`sdk_recordio_driver.py`, run in .venv-sdk2); the built-in's `MAX_CONTENT_LENGTH` in
`/execution-parameters` and the payload limit; short type names; newline-ended JSON Lines.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import xgboost as xgb

from tests.support.paths import REPO
from tests.support.server import Server, running_server

from .helpers import ROWS, save_model_dir, train_booster

pytestmark = pytest.mark.slow

DRIVER = Path(__file__).with_name("sdk_recordio_driver.py")
SDK2_PYTHON = REPO / ".venv-sdk2" / "bin" / "python"
RECORDIO = "application/x-recordio-protobuf"
ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
MAX_CONTENT_LENGTH = 3 * 1024 * 1024


@pytest.fixture(scope="session")
def sdk2_python() -> Path:
    """The SDK 2.x interpreter: built (or found up to date) by scripts/sdk-venvs.sh in CI, as
    tests/sdk does; on a developer machine without .venv-sdk2 the tests skip."""
    if not SDK2_PYTHON.exists() and not os.environ.get("CI"):
        pytest.skip(
            f"{SDK2_PYTHON.parent.parent} (the SageMaker SDK 2.x) is absent; "
            "create it with scripts/sdk-venvs.sh sdk2"
        )
    result = subprocess.run(
        [str(REPO / "scripts" / "sdk-venvs.sh"), "sdk2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if result.returncode != 0:
        message = f"scripts/sdk-venvs.sh sdk2 failed:\n{result.stderr[-2000:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return SDK2_PYTHON


def run_driver(python: Path, *args: str) -> str:
    env = {**os.environ, "SAGEMAKER_SUPPRESS_V2_WARNING": "1", "HOME": str(Path(args[-1]).parent)}
    result = subprocess.run(
        [str(python), str(DRIVER), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def sdk_bodies(sdk2_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The SDK's dense and sparse RecordIO bodies for `ROWS` (float64, NaN as missing)."""
    folder = tmp_path_factory.mktemp("sdk-bodies")
    np.save(folder / "rows.npy", ROWS.astype(np.float64))
    content_type = run_driver(sdk2_python, "encode", str(folder / "rows.npy"), str(folder))
    assert content_type == RECORDIO
    return {kind: (folder / f"{kind}.rec").read_bytes() for kind in ("dense", "sparse")}


def sdk_decode(python: Path, answer: bytes, folder: Path) -> list[dict[str, list[float]]]:
    (folder / "answer.rec").write_bytes(answer)
    return json.loads(run_driver(python, "decode", str(folder / "answer.rec")))


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    return train_booster("multi:softprob")


@pytest.fixture(scope="module")
def server(booster: xgb.Booster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("recordio-serve")
    save_model_dir(root, booster)
    with running_server(
        root, SAGEMAKER_MODEL_SERVER_WORKERS="1", MAX_CONTENT_LENGTH=str(MAX_CONTENT_LENGTH)
    ) as served:
        yield served


def post(server: Server, body: bytes, **headers: str) -> requests.Response:
    return requests.post(
        f"{server.url}/invocations",
        data=body,
        headers={"Content-Type": RECORDIO, **headers},
        timeout=30,
    )


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_sdk_record_serializer_bodies_predict_like_the_booster(
    server: Server, sdk_bodies: dict[str, bytes], booster: xgb.Booster, kind: str
) -> None:
    response = post(server, sdk_bodies[kind], Accept="text/csv")

    assert response.status_code == 200, response.text
    got = np.array([[float(v) for v in line.split(",")] for line in response.text.splitlines()])
    np.testing.assert_allclose(got, booster.inplace_predict(ROWS), rtol=1e-6)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_recordio_answers_read_by_the_sdk_deserializer_hold_the_selected_keys(
    server: Server,
    sdk_bodies: dict[str, bytes],
    booster: xgb.Booster,
    sdk2_python: Path,
    tmp_path: Path,
    kind: str,
) -> None:
    response = post(
        server,
        sdk_bodies[kind],
        Accept=RECORDIO,
        **{ATTRIBUTES: "inference_output=predicted_label,probability,probabilities"},
    )

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == RECORDIO
    records = sdk_decode(sdk2_python, response.content, tmp_path)
    expected = booster.inplace_predict(ROWS)
    assert len(records) == len(ROWS)
    assert [r["predicted_label"] for r in records] == [[float(i)] for i in expected.argmax(1)]
    np.testing.assert_allclose([r["probability"] for r in records], expected.max(1, keepdims=True))
    np.testing.assert_allclose([r["probabilities"] for r in records], expected)
    assert {key for record in records for key in record} == {
        "predicted_label",
        "probability",
        "probabilities",
    }


def test_recordio_answer_without_a_selection_is_the_score(
    server: Server,
    sdk_bodies: dict[str, bytes],
    booster: xgb.Booster,
    sdk2_python: Path,
    tmp_path: Path,
) -> None:
    response = post(server, sdk_bodies["dense"], Accept=RECORDIO)

    assert response.status_code == 200, response.text
    records = sdk_decode(sdk2_python, response.content, tmp_path)
    assert [list(record) for record in records] == [["score"]] * len(ROWS)
    np.testing.assert_allclose([r["score"] for r in records], booster.inplace_predict(ROWS))


def test_a_body_that_is_not_recordio_is_a_400_naming_the_format(server: Server) -> None:
    response = post(server, b"0.1,0.2,0.3,0.4\n")

    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "The application/x-recordio-protobuf body is not readable: record 1 does not start "
        "with the RecordIO magic number 0xCED7230A."
    )


def test_execution_parameters_and_the_limit_follow_max_content_length(server: Server) -> None:
    parameters = requests.get(f"{server.url}/execution-parameters", timeout=10).json()
    row = b"0.1,0.2,0.3,0.4\n"

    over = requests.post(
        f"{server.url}/invocations",
        data=row * (MAX_CONTENT_LENGTH // len(row) + 1),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )

    assert parameters == {
        "MaxConcurrentTransforms": 1,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 3,
    }
    assert over.status_code == 413
    assert "the limit is 3 MB" in over.json()["error"]


def test_short_csv_type_and_json_lines_answer_over_http(server: Server, booster: xgb.Booster):
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in np.nan_to_num(ROWS[:3]))

    response = post(
        server, body.encode(), **{"Content-Type": "csv", "Accept": "application/jsonlines"}
    )

    assert response.status_code == 200, response.text
    assert response.text.endswith("}\n")
    lines = response.text.splitlines()
    expected = booster.inplace_predict(np.nan_to_num(ROWS[:3]))
    np.testing.assert_allclose([json.loads(line)["score"] for line in lines], expected, rtol=1e-6)
