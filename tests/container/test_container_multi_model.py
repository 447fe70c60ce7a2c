"""`IMAGE serve` in multi-model mode, as SageMaker runs it: the capability label, then models
extracted under /opt/ml/models loaded, invoked, listed and unloaded with curl."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from bench.processes import free_port
from tests.support.docker import run
from tests.support.model_archives import extract_model_tar
from tests.support.paths import LOCAL_TEST

from .docker_helpers import curl, serving, status_and_body

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]

ROWS = np.random.default_rng(3).random((4, 6)).astype(np.float32)
MODELS = {"customer-a": "binary:logistic", "customer-b": "reg:squarederror"}


def test_image_declares_multi_model_support(image: str) -> None:
    labels = json.loads(run(["docker", "image", "inspect", image]).stdout)[0]["Config"]["Labels"]
    assert labels["com.amazonaws.sagemaker.capabilities.multi-models"] == "true"


def _request(port: int, method: str, path: str, *args: str) -> tuple[int, str]:
    return status_and_body(curl("-X", method, *args, f"http://127.0.0.1:{port}{path}"))


def test_multi_model_endpoint_loads_invokes_lists_and_unloads(
    image: str, tmp_path: Path, container_name
) -> None:
    boosters = {}
    for seed, (name, objective) in enumerate(MODELS.items()):
        rng = np.random.default_rng(seed)
        features = rng.random((80, ROWS.shape[1])).astype(np.float32)
        labels = features[:, 0] > 0.5 if objective.startswith("binary") else features[:, 1] * 3
        boosters[name] = xgb.train(
            {"objective": objective, "nthread": 1}, xgb.DMatrix(features, labels), 10
        )
        extract_model_tar(tmp_path / "models", name, boosters[name])
    (tmp_path / "model").mkdir()
    rows_csv = "\n".join(",".join(repr(float(v)) for v in row) for row in ROWS)

    name = container_name("mme")
    with serving(
        image,
        name,
        tmp_path / "model",
        "-e",
        "SAGEMAKER_MULTI_MODEL=true",
        "-v",
        f"{tmp_path / 'models'}:/opt/ml/models:ro",
    ) as port:
        empty = _request(port, "GET", "/models")
        loads = [
            _request(
                port,
                "POST",
                "/models",
                "-H",
                "Content-Type: application/json",
                "--data",
                json.dumps({"model_name": model, "url": f"/opt/ml/models/{model}/model"}),
            )
            for model in [*MODELS, "customer-a"]
        ]
        answers = {
            model: _request(
                port,
                "POST",
                f"/models/{model}/invoke",
                "-H",
                "Content-Type: text/csv",
                "-H",
                "Accept: application/json",
                "-H",
                f"X-Amzn-SageMaker-Target-Model: {model}.tar.gz",
                "--data-binary",
                rows_csv,
            )
            for model in MODELS
        }
        listed = _request(port, "GET", "/models")
        unload = _request(port, "DELETE", "/models/customer-a")
        after = _request(port, "POST", "/models/customer-a/invoke", "--data-binary", rows_csv)
        outside = _request(port, "POST", "/models", "--data", '{"model_name": "x", "url": "/etc"}')
        logs = run(["docker", "logs", name]).stderr

    assert empty == (200, '{"models": []}')
    assert [status for status, _ in loads] == [200, 200, 409]
    for model, (status, body) in answers.items():
        assert status == 200, body
        got = [p["score"] for p in json.loads(body)["predictions"]]
        expected = boosters[model].predict(xgb.DMatrix(ROWS))
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert listed[0] == 200
    assert sorted(m["modelName"] for m in json.loads(listed[1])["models"]) == sorted(MODELS)
    assert unload[0] == 200
    assert after[0] == 404
    assert outside[0] == 400
    assert "is outside /opt/ml/models" in json.loads(outside[1])["error"]
    assert "Invoke model 'customer-b' (target model customer-b.tar.gz)" in logs
    assert "Loaded model 'customer-a' from /opt/ml/models/customer-a/model:" in logs


def test_local_walk_through_script(image: str, tmp_path: Path) -> None:
    """local_test/multi_model.sh, as docs/multi-model.md tells a user to run it."""
    rng = np.random.default_rng(5)
    features = rng.random((100, 64)).astype(np.float32)  # the digits payload's width
    booster = xgb.train(
        {"objective": "multi:softmax", "num_class": 10, "nthread": 1},
        xgb.DMatrix(features, rng.integers(0, 10, 100)),
        5,
    )
    opt_ml = tmp_path / "opt_ml"
    (opt_ml / "model").mkdir(parents=True)
    (opt_ml / "model" / "xgboost-model").write_bytes(bytes(booster.save_raw("json")))
    port = free_port()
    result = subprocess.run(
        [str(LOCAL_TEST / "multi_model.sh"), image, str(port)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OPT_ML": str(opt_ml), "MME_DIR": str(tmp_path / "mme")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    statuses = [line.rsplit(" ", 1)[1] for line in result.stdout.splitlines() if " -> " in line]
    # ping, list, load a, load b, load a again, invoke, list, describe, unload, invoke again
    assert statuses == ["200", "200", "200", "200", "409", "200", "200", "200", "200", "404"]
    assert "Invoke model 'digits-a' (target model digits-a.tar.gz)" in result.stderr
