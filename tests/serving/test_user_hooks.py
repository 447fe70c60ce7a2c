"""The user's inference functions (`code/inference.py`) in place of the built-in steps.

The example's SHAP hooks run through the real `./serve` on 127.0.0.1 around a model the
example's training script made. Single hooks, bad user code and error statuses run through the
real app built by `wsgi.load_application` from real files (Flask's test client), and
start-up failures and logged tracebacks through the real `./serve` again.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import tarfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import xgboost as xgb
from churn_data import churn_table, write_churn_csv
from flask.testing import FlaskClient

from container.errors import ModelLoadError
from container.serving import wsgi
from container.settings import Settings
from tests.support.churn import assert_shap_answers, post_customers
from tests.support.paths import REPO
from tests.support.server import Server, running_server, serve_until_exit

from .helpers import ROWS, csv_body, model_dir_with_code, save_model_dir, train_booster

EXAMPLE = REPO / "examples" / "script_mode"

GENERIC_500 = {"error": "Internal server error; see the server log."}


def client_for(root: Path, **env: str) -> FlaskClient:
    """The app `serve` would build for the `/opt/ml` tree at `root`."""
    settings = Settings.from_environ({"SAGEMAKER_BASE_DIR": str(root), **env})
    return wsgi.load_application(settings)[1].test_client()


# The example end to end: its training script's model and its SHAP inference code.


@pytest.fixture(scope="module")
def churn_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/opt/ml with the model and `model/code/` the example's train.py wrote."""
    root = tmp_path_factory.mktemp("churn")
    write_churn_csv(root / "train", 2500, seed=0)
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE / "train.py"),
            *("--train", str(root / "train")),
            *("--model-dir", str(root / "model"), "--output-dir", str(root / "output")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def churn_server(churn_model: Path) -> Iterator[Server]:
    with running_server(churn_model) as server:
        yield server


def _expected_margin_and_probability(model_dir: Path, customers: pd.DataFrame) -> np.ndarray:
    sys.path.insert(0, str(EXAMPLE))
    from features import engineer

    booster = xgb.Booster(model_file=bytearray((model_dir / "xgboost-model").read_bytes()))
    matrix = xgb.DMatrix(engineer(customers)[booster.feature_names])
    return booster.predict(matrix)


@pytest.mark.slow
def test_shap_example_answers_json_customers_with_contributions(
    churn_model: Path, churn_server: Server
) -> None:
    customers = churn_table(5, seed=9).drop(columns="churned")

    response = post_customers(churn_server.url, customers, timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    predictions = response.json()["predictions"]
    assert_shap_answers(predictions, customers)
    expected = _expected_margin_and_probability(churn_model / "model", customers)
    for prediction, probability in zip(predictions, expected, strict=True):
        assert prediction["churn_probability"] == pytest.approx(float(probability), abs=1e-5)
        assert set(prediction["contributions"]) >= {"tenure_months", "contract_month_to_month"}


@pytest.mark.slow
def test_shap_example_reads_csv_with_a_header_and_writes_csv(
    churn_model: Path, churn_server: Server
) -> None:
    customers = churn_table(4, seed=3).drop(columns="churned")

    response = requests.post(
        f"{churn_server.url}/invocations",
        data=customers.to_csv(index=False),
        headers={"Content-Type": "text/csv", "Accept": "text/csv"},
        timeout=30,
    )

    assert response.status_code == 200, response.text
    table = pd.read_csv(io.StringIO(response.text))
    assert list(table.columns[:3]) == ["customer_id", "churn_probability", "tenure_months"]
    assert table.columns[-1] == "bias"
    expected = _expected_margin_and_probability(churn_model / "model", customers)
    np.testing.assert_allclose(table.churn_probability, expected, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content_type", "body", "status", "message"),
    [
        (
            "application/json",
            '{"customers": [{"tenure_months": 3}]}',
            400,
            "Each customer needs the field(s): monthly_charges, total_charges, contract, "
            "payment_method, internet_service, support_calls.",
        ),
        (
            "application/x-npy",
            "x",
            415,
            "Content-Type 'application/x-npy' is not accepted: send application/json customer "
            "records or text/csv with a header row.",
        ),
    ],
    ids=["missing-fields", "unsupported-type"],
)
def test_shap_example_rejects_bad_input_with_its_own_status(
    churn_server: Server, content_type: str, body: str, status: int, message: str
) -> None:
    response = requests.post(
        f"{churn_server.url}/invocations",
        data=body,
        headers={"Content-Type": content_type},
        timeout=30,
    )
    assert (response.status_code, response.json()) == (status, {"error": message})


# One hook at a time: the others stay built-in.

PIPE_INPUT = """
import numpy as np

def input_fn(body, content_type):
    assert content_type == "text/x-pipe", content_type
    rows = [line.split("|") for line in body.decode().split(";") if line]
    return np.array(rows, dtype=np.float32)
"""


def test_input_fn_alone_reads_a_custom_format_for_the_built_in_steps(tmp_path: Path) -> None:
    booster = train_booster("binary:logistic")
    model_dir_with_code(tmp_path, PIPE_INPUT, booster)
    rows = np.nan_to_num(ROWS[:3])
    body = ";".join("|".join(repr(float(v)) for v in row) for row in rows)

    response = client_for(tmp_path).post(
        "/invocations", data=body, headers={"Content-Type": "text/x-pipe"}
    )

    assert response.status_code == 200, response.data
    assert response.mimetype == "text/csv"
    got = [float(line) for line in response.text.splitlines()]
    np.testing.assert_allclose(got, booster.inplace_predict(rows), rtol=1e-6)


def test_built_in_output_keys_still_apply_after_a_user_input_fn(tmp_path: Path) -> None:
    booster = train_booster("binary:logistic")
    model_dir_with_code(tmp_path, PIPE_INPUT, booster)
    rows = np.nan_to_num(ROWS[:2])
    body = ";".join("|".join(repr(float(v)) for v in row) for row in rows)
    client = client_for(tmp_path, SAGEMAKER_INFERENCE_OUTPUT="predicted_label,probability")

    response = client.post(
        "/invocations",
        data=body,
        headers={"Content-Type": "text/x-pipe", "Accept": "application/json"},
    )

    assert response.status_code == 200, response.data
    expected = booster.inplace_predict(rows)
    assert response.json == {
        "predictions": [
            {"predicted_label": int(p > 0.5), "probability": pytest.approx(float(p))}
            for p in expected
        ]
    }


def test_output_fn_alone_gets_the_built_in_prediction_and_the_accept(tmp_path: Path) -> None:
    booster = train_booster("binary:logistic")
    model_dir_with_code(
        tmp_path,
        """
        import json

        def output_fn(prediction, accept):
            body = {"accept": accept, "rows": len(prediction), "mean": float(prediction.mean())}
            return json.dumps(body), "application/vnd.scores+json"
        """,
        booster,
    )

    response = client_for(tmp_path).post(
        "/invocations", data=csv_body(ROWS[:6]), headers={"Content-Type": "text/csv"}
    )

    assert response.status_code == 200, response.data
    assert response.mimetype == "application/vnd.scores+json"
    document = json.loads(response.data)
    assert document["accept"] == "text/csv"  # no Accept: SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT
    assert document["rows"] == 6
    assert document["mean"] == pytest.approx(float(booster.inplace_predict(ROWS[:6]).mean()))


def test_predict_fn_alone_feeds_the_built_in_output(tmp_path: Path) -> None:
    booster = train_booster("binary:logistic")
    model_dir_with_code(
        tmp_path,
        """
        def predict_fn(data, model):
            return [round(float(p) * 100) for p in model.predict(data)]
        """,
        booster,
    )

    response = client_for(tmp_path).post(
        "/invocations",
        data=csv_body(ROWS[:4]),
        headers={"Content-Type": "text/csv", "Accept": "application/jsonlines"},
    )

    assert response.status_code == 200, response.data
    got = [json.loads(line)["score"] for line in response.text.splitlines()]
    assert got == [round(float(p) * 100) for p in booster.inplace_predict(ROWS[:4])]


def test_transform_fn_gets_the_model_and_the_raw_request(tmp_path: Path) -> None:
    model_dir_with_code(
        tmp_path,
        """
        def transform_fn(model, body, content_type, accept):
            return f"{type(model).__name__} {model.num_features()} {content_type} {accept} {body!r}"
        """,
    )

    response = client_for(tmp_path).post(
        "/invocations",
        data=b"anything",
        headers={"Content-Type": "application/x-anything", "Accept": "text/plain"},
    )

    assert response.status_code == 200, response.data
    assert response.text == "Booster 4 application/x-anything text/plain b'anything'"
    assert response.mimetype == "text/plain"


def test_model_fn_loads_a_model_the_built_in_steps_then_use(tmp_path: Path) -> None:
    booster = train_booster("reg:squarederror")
    model_dir = tmp_path / "model"
    (model_dir / "code").mkdir(parents=True)
    booster.save_model(str(model_dir / "regressor.ubj"))
    (model_dir / "code" / "inference.py").write_text(
        textwrap.dedent(
            """
            import os
            import xgboost as xgb

            def model_fn(model_dir):
                booster = xgb.Booster()
                booster.load_model(os.path.join(model_dir, "regressor.ubj"))
                return booster
            """
        )
    )

    response = client_for(tmp_path).post(
        "/invocations", data=csv_body(ROWS[:5]), headers={"Content-Type": "text/csv"}
    )

    assert response.status_code == 200, response.data
    got = [float(line) for line in response.text.splitlines()]
    np.testing.assert_allclose(got, booster.inplace_predict(ROWS[:5]), rtol=1e-6)


def test_sagemaker_program_names_a_module_in_the_submit_directory(tmp_path: Path) -> None:
    save_model_dir(tmp_path, train_booster("binary:logistic"))
    source = tmp_path / "source"
    source.mkdir()
    (source / "serve_hooks.py").write_text(
        "def transform_fn(model, body, content_type, accept):\n    return b'from the source dir'\n"
    )

    client = client_for(
        tmp_path,
        SAGEMAKER_PROGRAM="serve_hooks.py",
        SAGEMAKER_SUBMIT_DIRECTORY=f"file://{source}",
    )

    assert client.post("/invocations", data=b"1").data == b"from the source dir"


def test_a_submit_directory_without_the_program_falls_back_to_the_models_code(
    tmp_path: Path,
) -> None:
    """The SDK's repacked model: the program is in model/code whatever the variable says."""
    model_dir_with_code(
        tmp_path, "def transform_fn(model, body, content_type, accept):\n    return 'repacked'\n"
    )

    client = client_for(
        tmp_path,
        SAGEMAKER_PROGRAM="inference.py",
        SAGEMAKER_SUBMIT_DIRECTORY=str(tmp_path / "not-mounted"),
    )

    assert client.post("/invocations", data=b"1").data == b"repacked"


def test_a_sourcedir_tarball_is_extracted_into_the_code_folder(tmp_path: Path) -> None:
    """The SDK uploads `sourcedir.tar.gz` when it does not repack the model."""
    save_model_dir(tmp_path, train_booster("binary:logistic"))
    hooks = tmp_path / "hooks.py"
    hooks.write_text("def transform_fn(model, body, content_type, accept):\n    return 'packed'\n")
    archive = tmp_path / "sourcedir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(hooks, arcname="hooks.py")

    client = client_for(
        tmp_path, SAGEMAKER_PROGRAM="hooks.py", SAGEMAKER_SUBMIT_DIRECTORY=str(archive)
    )

    assert client.post("/invocations", data=b"1").data == b"packed"
    assert (tmp_path / "code" / "hooks.py").is_file()


# Broken user code: a start-up sentence, or a 500 whose traceback is in the log.


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "def input_fn(body, content_type):\n    return body\n\ndef predict_fn(data:\n",
            "does not import: SyntaxError: '(' was never closed (inference.py, line 4). "
            "The traceback is in the log above.",
        ),
        (
            "import json\nraise RuntimeError('no config for region')\n",
            "does not import: RuntimeError: no config for region. The traceback is in the log "
            "above.",
        ),
        (
            "def model_fn(model_dir):\n    raise FileNotFoundError('model.pkl')\n",
            "raised FileNotFoundError: model.pkl; the traceback is in the log above.",
        ),
        (
            "def model_fn(model_dir):\n    return {'weights': [1, 2]}\n",
            "returned dict, but without predict_fn the built-in prediction needs an "
            "xgboost.Booster (or XGBoost scikit-learn model): return one from model_fn, or "
            "define predict_fn(data, model).",
        ),
        (
            "def transform_fn(model, body, content_type, accept):\n    return body\n\n"
            "def input_fn(body, content_type):\n    return body\n",
            "defines transform_fn and input_fn: transform_fn replaces input_fn, predict_fn and "
            "output_fn together, so define either transform_fn or those three (each optional), "
            "not both.",
        ),
    ],
    ids=["syntax-error", "import-error", "model-fn-raises", "model-fn-wrong-type", "mixed"],
)
def test_broken_code_stops_start_up_with_a_sentence(
    tmp_path: Path, code: str, message: str
) -> None:
    model_dir_with_code(tmp_path, code)
    settings = Settings.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)})

    with pytest.raises(ModelLoadError) as raised:
        wsgi.load_application(settings)

    assert raised.value.message.endswith(message), raised.value.message
    assert str(tmp_path / "model" / "code" / "inference.py") in raised.value.message


def test_a_sagemaker_program_that_is_nowhere_stops_start_up(tmp_path: Path) -> None:
    save_model_dir(tmp_path, train_booster("binary:logistic"))
    settings = Settings.from_environ(
        {"SAGEMAKER_BASE_DIR": str(tmp_path), "SAGEMAKER_PROGRAM": "inferense.py"}
    )

    with pytest.raises(ModelLoadError) as raised:
        wsgi.load_application(settings)

    assert raised.value.message == (
        f"SAGEMAKER_PROGRAM='inferense.py' names no file: looked for "
        f"{tmp_path / 'model' / 'code' / 'inferense.py'}. Put the inference script in the "
        "model's code/ folder or pass source_dir= with entry_point=."
    )


ERRORS = """
from container.errors import ClientError

class Conflict(Exception):
    status_code = 409

def input_fn(body, content_type):
    text = body.decode()
    if text == "client":
        raise ClientError("field 'age' must be a number", status=422)
    if text == "conflict":
        raise Conflict("customer C1 is being updated")
    if text == "bug":
        return {}["missing"]
    return text

def predict_fn(data, model):
    return data

def output_fn(prediction, accept):
    if prediction == "dict":
        return {"not": "bytes"}
    return prediction
"""


@pytest.mark.parametrize(
    ("body", "status", "document", "logged"),
    [
        ("client", 422, {"error": "field 'age' must be a number"}, None),
        ("conflict", 409, {"error": "customer C1 is being updated"}, None),
        ("bug", 500, GENERIC_500, "input_fn in {path} raised KeyError: 'missing'"),
        (
            "dict",
            500,
            GENERIC_500,
            "output_fn in {path} returned dict; it must return bytes, str, or a "
            "(body, content_type) tuple.",
        ),
    ],
    ids=["client-error", "status-code-attribute", "exception", "wrong-return-type"],
)
def test_user_errors_answer_with_their_status_or_a_generic_500(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    body: str,
    status: int,
    document: dict,
    logged: str | None,
) -> None:
    model_dir = model_dir_with_code(tmp_path, ERRORS)
    client = client_for(tmp_path)

    with caplog.at_level(logging.ERROR):
        response = client.post("/invocations", data=body)

    assert (response.status_code, response.json) == (status, document)
    if logged is not None:
        assert logged.format(path=model_dir / "code" / "inference.py") in caplog.text
        assert "Traceback" in caplog.text
        assert "Traceback" not in response.text


def test_input_fn_returning_what_the_built_in_predict_cannot_take_is_a_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model_dir_with_code(tmp_path, "def input_fn(body, content_type):\n    return body.decode()\n")

    with caplog.at_level(logging.ERROR):
        response = client_for(tmp_path).post("/invocations", data=b"1,2,3,4")

    assert (response.status_code, response.json) == (500, GENERIC_500)
    assert "returned a str; the built-in predict_fn takes a 2-D numeric numpy array" in caplog.text


# The real `./serve`: a start-up failure exits non-zero; a user exception's traceback is logged.


@pytest.mark.slow
def test_serve_exits_non_zero_when_transform_fn_is_mixed_with_other_hooks(tmp_path: Path) -> None:
    model_dir_with_code(
        tmp_path,
        "def transform_fn(model, body, content_type, accept):\n    return body\n\n"
        "def output_fn(prediction, accept):\n    return prediction\n",
    )

    result = serve_until_exit(tmp_path)

    assert result.returncode != 0
    assert "serve cannot start: " in result.stderr
    assert "defines transform_fn and output_fn: transform_fn replaces" in result.stderr
    assert "Listening at" not in result.stderr


@pytest.mark.slow
def test_serve_logs_the_users_traceback_for_an_exception_in_predict_fn(
    tmp_path: Path, serve
) -> None:
    model_dir_with_code(
        tmp_path,
        """
        def scale(values):
            return values / 0 if values.num_row() > 100 else values.missing_attribute

        def predict_fn(data, model):
            return scale(data)
        """,
    )
    server = serve(tmp_path)
    response = requests.post(
        f"{server.url}/invocations",
        data=csv_body(ROWS[:2]),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )

    assert (response.status_code, response.json()) == (500, GENERIC_500)
    log = server.log.read_text()
    inference = tmp_path / "model" / "code" / "inference.py"
    assert f'File "{inference}", line 6, in predict_fn' in log
    assert f'File "{inference}", line 3, in scale' in log
    assert "AttributeError: 'DMatrix' object has no attribute 'missing_attribute'" in log
