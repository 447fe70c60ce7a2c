"""Multi-model mode of the real `./serve` (two gunicorn workers on 127.0.0.1): SageMaker's
container contract for multi-model endpoints, on models extracted from real model.tar.gz files.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
import xgboost as xgb

from container.serving.model_memory import model_cost_bytes
from container.settings import MODEL_FILENAME
from tests.support.model_archives import extract_model_tar
from tests.support.server import Server, running_server, serve_until_exit

pytestmark = pytest.mark.slow

NUM_MODELS = 200
WIDTH = 5
ROWS = np.random.default_rng(11).random((3, WIDTH)).astype(np.float32)
ROWS[1, 2] = np.nan
OBJECTIVES = (
    {"objective": "binary:logistic"},
    {"objective": "reg:squarederror"},
    {"objective": "multi:softprob", "num_class": 3},
)
MME = {"SAGEMAKER_MULTI_MODEL": "true"}


def train(index: int, rounds: int = 4, rows: int = 40, depth: int = 3) -> xgb.Booster:
    """A small real model; each index gets its own data, so each model answers differently."""
    rng = np.random.default_rng(index)
    features = rng.random((rows, WIDTH)).astype(np.float32)
    params = {**OBJECTIVES[index % len(OBJECTIVES)], "max_depth": depth, "nthread": 1}
    labels = {
        "binary:logistic": features[:, 0] > rng.random(),
        "reg:squarederror": features[:, 0] * index,
        "multi:softprob": rng.integers(0, 3, rows),
    }[params["objective"]]
    return xgb.train(params, xgb.DMatrix(features, labels), rounds)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, xgb.Booster]]:
    """An /opt/ml tree holding NUM_MODELS extracted models, and their boosters by name."""
    base = tmp_path_factory.mktemp("mme")
    boosters = {f"customer-{i:03d}": train(i) for i in range(NUM_MODELS)}
    for name, booster in boosters.items():
        extract_model_tar(base / "models", name, booster)
    return base, boosters


@pytest.fixture(scope="module")
def server(models: tuple[Path, dict[str, xgb.Booster]]) -> Iterator[Server]:
    with running_server(models[0], **MME) as running:
        yield running


def url_of(base: Path, name: str) -> str:
    return str(base / "models" / name / "model")


def load(server: Server, name: str, url: str) -> requests.Response:
    return requests.post(
        f"{server.url}/models",
        json={"model_name": name, "url": url},
        headers={"X-Amzn-SageMaker-Target-Model": f"{name}.tar.gz"},
        timeout=30,
    )


def _npy(rows: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, rows)
    return buffer.getvalue()


BODIES = {
    "text/csv": "\n".join(
        ",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in ROWS
    ).encode(),
    "application/json": json.dumps(
        {"instances": [[None if np.isnan(v) else float(v) for v in row] for row in ROWS]}
    ).encode(),
    "application/x-npy": _npy(ROWS),
}


def invoke(server: Server, name: str, content_type: str = "text/csv") -> requests.Response:
    return requests.post(
        f"{server.url}/models/{name}/invoke",
        data=BODIES[content_type],
        headers={
            "Content-Type": content_type,
            "Accept": "application/json",
            "X-Amzn-SageMaker-Target-Model": f"{name}.tar.gz",
        },
        timeout=30,
    )


def assert_answers_like_booster(response: requests.Response, booster: xgb.Booster) -> None:
    assert response.status_code == 200, response.text
    got = np.array([p["score"] for p in response.json()["predictions"]], dtype=np.float32)
    expected = booster.predict(xgb.DMatrix(ROWS))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def listed(server: Server) -> list[str]:
    """Every loaded model's name, following `nextPageToken` page by page."""
    names: list[str] = []
    token = None
    while True:
        params = {"next_page_token": token} if token else {}
        page = requests.get(f"{server.url}/models", params=params, timeout=10).json()
        names += [model["modelName"] for model in page["models"]]
        token = page.get("nextPageToken")
        if token is None:
            return names


def test_ping_is_healthy_with_no_models(server: Server) -> None:
    assert requests.get(f"{server.url}/ping", timeout=5).status_code == 200


def test_load_invoke_unload_reload_many_models(
    server: Server, models: tuple[Path, dict[str, xgb.Booster]]
) -> None:
    base, boosters = models
    for name in boosters:
        response = load(server, name, url_of(base, name))
        assert response.status_code == 200, response.text
    assert sorted(listed(server)) == sorted(boosters)
    described = requests.get(f"{server.url}/models/customer-007", timeout=5).json()
    assert described == {"modelName": "customer-007", "modelUrl": url_of(base, "customer-007")}

    # Each worker loads its own copy on first use: several calls per model reach both workers.
    for name, booster in boosters.items():
        for content_type in BODIES:
            assert_answers_like_booster(invoke(server, name, content_type), booster)

    names = list(boosters)
    unloaded, kept = names[::2], names[1::2]
    for name in unloaded:
        response = requests.delete(f"{server.url}/models/{name}", timeout=10)
        assert response.status_code == 200, response.text
    for name in unloaded:
        response = invoke(server, name)
        assert response.status_code == 404
        assert response.json()["error"] == (
            f"Model {name!r} is not loaded; load it with POST /models first "
            "(GET /models lists the loaded models)."
        )
    for name in kept:
        assert_answers_like_booster(invoke(server, name), boosters[name])
    assert sorted(listed(server)) == sorted(kept)

    again = unloaded[0]
    assert load(server, again, url_of(base, again)).status_code == 200
    for content_type in BODIES:
        assert_answers_like_booster(invoke(server, again, content_type), boosters[again])


def test_concurrent_loads_of_one_name_give_one_200(
    server: Server, models: tuple[Path, dict[str, xgb.Booster]]
) -> None:
    base, boosters = models
    url = url_of(base, "customer-001")
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(lambda _: load(server, "raced", url).status_code, range(8)))
    assert statuses == [200] + [409] * 7
    assert_answers_like_booster(invoke(server, "raced"), boosters["customer-001"])


def test_invoke_errors_are_the_single_model_errors(
    server: Server, models: tuple[Path, dict[str, xgb.Booster]]
) -> None:
    name = "customer-003"
    assert load(server, name, url_of(models[0], name)).status_code in (200, 409)
    response = requests.post(
        f"{server.url}/models/{name}/invoke",
        data=b"1,2",
        headers={"Content-Type": "text/csv"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"Each row must have {WIDTH} features")
    response = requests.post(
        f"{server.url}/models/{name}/invoke",
        data=b"1,2,3,4,5",
        headers={"Content-Type": "image/png"},
        timeout=10,
    )
    assert response.status_code == 415


def _write_pickle(base: Path) -> str:
    folder = base / "models" / "pickled" / "model"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODEL_FILENAME).write_bytes(pickle.dumps({"not": "a booster"}, protocol=4))
    return str(folder)


def _write_escape_link(base: Path) -> str:
    link = base / "models" / "escape"
    if not link.exists():
        link.symlink_to("/etc", target_is_directory=True)
    return str(link)


HOSTILE = [
    ("traversal-name", "../../etc", None, 400, "model_name '../../etc' is not allowed"),
    ("slash-name", "a/b", None, 400, "model_name 'a/b' is not allowed"),
    ("empty-name", "", None, 400, '"model_name" must be 1 to 256 characters long.'),
    ("dotdot-url", "x1", "{models}/../../../etc", 400, "is outside"),
    ("outside-url", "x2", "/etc", 400, "is outside"),
    ("relative-url", "x3", "models/customer-001/model", 400, "is not an absolute path"),
    ("missing-folder", "x4", "{models}/nothing-here/model", 400, "names no folder"),
    ("symlink-out", "x5", "ESCAPE", 400, "is outside"),
    ("pickle", "x6", "PICKLE", 400, "is a Python pickle. This server never loads pickles"),
]


@pytest.mark.parametrize(
    ("name", "url", "status", "message"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_loads_get_a_4xx_with_a_sentence(
    server: Server, name: str, url: str | None, status: int, message: str
) -> None:
    base = server.log.parent
    models_dir = str(base / "models")
    if url is None:
        url = url_of(base, "customer-001")
    elif url == "PICKLE":
        url = _write_pickle(base)
    elif url == "ESCAPE":
        url = _write_escape_link(base)
    else:
        url = url.format(models=models_dir)
    response = load(server, name, url)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert response.json()["error"].endswith(".")
    assert name not in listed(server)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/models", b"not json", 400, "The body must be a JSON object"),
        (
            "POST",
            "/models",
            b'{"model_name": 3, "url": "/x"}',
            400,
            '"model_name" must be a string',
        ),
        ("GET", "/models/nobody", b"", 404, "Model 'nobody' is not loaded"),
        ("DELETE", "/models/nobody", b"", 404, "Model 'nobody' is not loaded"),
        ("POST", "/models/nobody/invoke", b"1,2", 404, "Model 'nobody' is not loaded"),
        ("PUT", "/models", b"", 405, "PUT is not allowed on /models"),
        ("GET", "/models/nobody/invoke", b"", 405, "GET is not allowed"),
    ],
    ids=[
        "not-json",
        "name-not-string",
        "get-missing",
        "delete-missing",
        "invoke-missing",
        "put-models",
        "get-invoke",
    ],
)
def test_contract_errors(
    server: Server, method: str, path: str, body: bytes, status: int, message: str
) -> None:
    response = requests.request(method, f"{server.url}{path}", data=body, timeout=10)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_a_load_past_the_memory_budget_is_507_and_changes_nothing(
    tmp_path: Path, serve: Callable[..., Server]
) -> None:
    big = train(1, rounds=50, rows=3000, depth=6)
    small = train(2)
    extract_model_tar(tmp_path / "models", "big", big)
    extract_model_tar(tmp_path / "models", "small", small)
    budget = 1024 * 1024
    cost = model_cost_bytes((big,)) * 2  # each of the two workers may hold a copy
    assert model_cost_bytes((small,)) * 2 + cost < budget < 2 * cost
    running = serve(tmp_path, XGB_SERVER_MODEL_MEMORY_MB="1", **MME)
    assert load(running, "small", url_of(tmp_path, "small")).status_code == 200
    assert load(running, "big-1", url_of(tmp_path, "big")).status_code == 200
    response = load(running, "big-2", url_of(tmp_path, "big"))
    assert response.status_code == 507, response.text
    assert response.json()["error"].startswith("Model 'big-2' needs ")
    assert "XGB_SERVER_MODEL_MEMORY_MB" in response.json()["error"]
    assert listed(running) == ["big-1", "small"]
    assert invoke(running, "big-2").status_code == 404
    assert_answers_like_booster(invoke(running, "small"), small)
    assert requests.delete(f"{running.url}/models/big-1", timeout=10).status_code == 200
    assert load(running, "big-2", url_of(tmp_path, "big")).status_code == 200
    log = running.log.read_text()
    assert "Loaded model 'big-1' from" in log and "per worker" in log


def test_inference_code_is_refused_at_start_up(tmp_path: Path) -> None:
    result = serve_until_exit(tmp_path, SAGEMAKER_PROGRAM="inference.py", **MME)
    assert result.returncode != 0
    assert "SAGEMAKER_MULTI_MODEL=true serves the built-in" in result.stdout + result.stderr
