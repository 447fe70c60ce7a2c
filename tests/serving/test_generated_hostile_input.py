"""Generated nasties through the built-in /invocations: the WSGI app `serve` runs, in process,
and a sample of the same kinds over HTTP to the real `./serve`.

Hypothesis builds the kinds of body that once answered 500 (integers of thousands of digits,
non-ASCII digits in LIBSVM indices, NPY headers that lie about their shape) and the ones with a
rule of their own (a JSON Lines line holding several rows, CSV with bare `\\r` line ends). Every
answer is a 4xx with a sentence or the right prediction, never a 5xx.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from container.serving.app import create_app
from container.serving.model_loading import load_model
from container.settings import Settings
from container.training import readers
from tests.support.server import Server, running_server, worker_pids

from .helpers import NUM_FEATURES, save_model_dir, train_booster

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
LIBSVM_TYPES = ("text/libsvm", "text/x-libsvm")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    model_dir = save_model_dir(tmp_path_factory.mktemp("hostile"), train_booster("binary:logistic"))
    settings_ = Settings.from_environ({"SAGEMAKER_BASE_DIR": "/nonexistent"})
    return create_app(load_model(model_dir), settings_).test_client()


def post(client: FlaskClient, content_type: str, body: bytes) -> tuple[int, bytes]:
    response = client.post("/invocations", data=body, headers={"Content-Type": content_type})
    return response.status_code, response.data


def assert_refused(status: int, body: bytes, *statuses: int) -> str:
    """A 4xx among `statuses` whose JSON error is one sentence; returns the sentence."""
    assert status in statuses, (status, body[:300])
    error = json.loads(body)["error"]
    assert error.endswith("."), error
    assert "Traceback" not in error and "sys.set_int_max_str_digits" not in error
    return error


huge_integers = st.builds(
    lambda lead, rest: str(lead) + "7" * rest,
    st.integers(1, 9),
    st.integers(4300, 20_000),
)
"""Decimal integers longer than Python converts to `int` by default (4,300 digits)."""
finite_rows = st.lists(
    st.lists(
        st.floats(-1e6, 1e6, allow_nan=False, width=32) | st.none(),
        min_size=NUM_FEATURES,
        max_size=NUM_FEATURES,
    ),
    min_size=1,
    max_size=6,
)


@FUZZ
@given(number=huge_integers, column=st.integers(0, NUM_FEATURES - 1), wrapped=st.booleans())
def test_json_with_an_integer_of_thousands_of_digits_is_a_400(
    client: FlaskClient, number: str, column: int, wrapped: bool
) -> None:
    cells = ["0.5"] * NUM_FEATURES
    cells[column] = number
    row = f"[{','.join(cells)}]"
    body = f'{{"instances": [{row}]}}' if wrapped else f"[{row}]"
    error = assert_refused(*post(client, "application/json", body.encode()), 400)
    assert "thousands of digits" in error


@FUZZ
@given(number=huge_integers, line=st.integers(0, 3), as_object=st.booleans())
def test_json_lines_with_an_integer_of_thousands_of_digits_is_a_400(
    client: FlaskClient, number: str, line: int, as_object: bool
) -> None:
    lines = ["[0.1,0.2,0.3,0.4]"] * 4
    lines[line] = f"[{number},0.2,0.3,0.4]"
    if as_object:
        lines[line] = f'{{"features": {lines[line]}}}'
    error = assert_refused(*post(client, "application/jsonlines", "\n".join(lines).encode()), 400)
    assert "thousands of digits" in error


@FUZZ
@given(
    number=huge_integers,
    as_index=st.booleans(),
    media_type=st.sampled_from(LIBSVM_TYPES),
)
def test_libsvm_with_an_integer_of_thousands_of_digits_is_a_4xx(
    client: FlaskClient, number: str, as_index: bool, media_type: str
) -> None:
    token = f"{number}:1.5" if as_index else f"2:{number}"
    status, body = post(client, media_type, f"1 0:0.5 {token}\n".encode())
    # An index is over XGB_SERVER_MAX_COLUMNS (413); a value is beyond float32, infinite (400).
    assert_refused(status, body, 413 if as_index else 400)


non_ascii_digits = st.characters(categories=["Nd", "No"]).filter(lambda c: not c.isascii())


@FUZZ
@given(
    digits=st.lists(non_ascii_digits | st.sampled_from("0123456789"), min_size=1, max_size=6)
    .map("".join)
    .filter(lambda text: not text.isascii()),
    media_type=st.sampled_from(LIBSVM_TYPES),
)
def test_libsvm_index_in_non_ascii_digits_is_a_400(
    client: FlaskClient, digits: str, media_type: str
) -> None:
    body = f"1 0:0.5 {digits}:1.5\n".encode()
    error = assert_refused(*post(client, media_type, body), 400)
    assert "ASCII digits" in error


def _npy_header(shape: tuple[int, ...], dtype: str, fortran: bool) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": np.dtype(dtype).str, "fortran_order": fortran, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


@FUZZ
@given(
    shape=st.one_of(
        # within XGB_SERVER_MAX_ROWS and _COLUMNS, and gigabytes more than any body sent
        st.tuples(st.integers(100_000, 1_000_000), st.integers(1_000, 100_000)),
        st.tuples(st.integers(1, 1_000_000), st.integers(1, 100_000)),
        st.tuples(st.integers(1, 100_000)),
        st.lists(st.integers(0, 2**62), min_size=1, max_size=3).map(tuple),
    ),
    dtype=st.sampled_from(["<f4", "<f8", "<i8", "|u1", ">f4"]),
    fortran=st.booleans(),
    data=st.binary(max_size=256),
)
def test_npy_header_declaring_more_than_the_body_holds_is_a_4xx(
    client: FlaskClient, shape: tuple[int, ...], dtype: str, fortran: bool, data: bytes
) -> None:
    declared = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    if len(data) >= declared:
        data = data[: max(declared - 1, 0)]
    body = _npy_header(shape, dtype, fortran) + data
    status, answer = post(client, "application/x-npy", body)
    assert_refused(status, answer, 400, 413)


@FUZZ
@given(
    rows=finite_rows,
    line=st.integers(0, 3),
    several=st.lists(
        st.lists(st.floats(-10, 10, allow_nan=False), min_size=4, max_size=4),
        min_size=1,
        max_size=4,
    ),
    shape=st.sampled_from(["list", "instances"]),
)
def test_json_lines_line_holding_several_rows_is_a_400(
    client: FlaskClient, rows: list, line: int, several: list, shape: str
) -> None:
    lines = [json.dumps(row) for row in rows]
    crowded = json.dumps(several) if shape == "list" else json.dumps({"instances": several})
    lines.insert(min(line, len(lines)), crowded)
    error = assert_refused(*post(client, "application/jsonlines", "\n".join(lines).encode()), 400)
    assert "more than one row" in error


def _csv(rows: list, newline: str, trailing: bool) -> bytes:
    text = newline.join(",".join("" if v is None else repr(v) for v in row) for row in rows)
    return (text + (newline if trailing else "")).encode()


@FUZZ
@given(rows=finite_rows, trailing=st.booleans())
def test_csv_with_bare_carriage_returns_reads_as_lines(
    client: FlaskClient, rows: list, trailing: bool
) -> None:
    status, answer = post(client, "text/csv", _csv(rows, "\r", trailing))
    assert status == 200, answer
    assert (status, answer) == post(client, "text/csv", _csv(rows, "\n", trailing))
    assert len(answer.splitlines()) == len(rows)


def test_csv_with_bare_carriage_returns_reads_as_train_reads_it(
    client: FlaskClient, tmp_path: Path
) -> None:
    """`train` (Arrow's reader) takes `\\r` as a line end: the same rows, label column dropped."""
    features = b"0.1,,0.3,0.4\r0.5,0.6,0.7,0.8\r"
    training_file = tmp_path / "train.csv"
    training_file.write_bytes(b"1," + features.replace(b"\r", b"\r1,").removesuffix(b"1,"))
    trained = readers.read_csv(training_file, csv_weights=False)
    assert trained.num_rows == 2
    status, answer = post(client, "text/csv", features)
    assert status == 200
    lf_rows = trained.features.to_pandas().to_numpy()
    lf_body = "\n".join(
        ",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in lf_rows
    )
    assert answer == post(client, "text/csv", lf_body.encode())[1]


# The same kinds of body, drawn together, over HTTP to the real `./serve`.


def _json_body(number: str) -> tuple[str, bytes]:
    return "application/json", f"[[{number}, 0.2, 0.3, 0.4]]".encode()


def _libsvm_body(digits: str) -> tuple[str, bytes]:
    return "text/libsvm", f"1 0:0.5 {digits}:1.5".encode()


def _npy_body(shape: tuple[int, int], data: bytes) -> tuple[str, bytes]:
    return "application/x-npy", _npy_header(shape, "<f8", False) + data


def _jsonlines_body(rows: list) -> tuple[str, bytes]:
    return "application/jsonlines", (json.dumps(rows) + "\n").encode()


def _cr_csv_body(rows: list) -> tuple[str, bytes]:
    return "text/csv", _csv(rows, "\r", trailing=True)


hostile_bodies = st.one_of(
    huge_integers.map(_json_body),
    st.lists(non_ascii_digits, min_size=1, max_size=3).map("".join).map(_libsvm_body),
    st.builds(
        _npy_body,
        st.tuples(st.integers(100_000, 1_000_000), st.integers(1_000, 100_000)),
        st.binary(max_size=64),
    ),
    st.lists(st.lists(st.floats(-1, 1), min_size=4, max_size=4), min_size=2, max_size=4).map(
        _jsonlines_body
    ),
    finite_rows.map(_cr_csv_body),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("hostile-http")
    save_model_dir(base, train_booster("binary:logistic"))
    with running_server(base) as server:
        yield server


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(request=hostile_bodies)
def test_generated_bodies_over_http_get_a_sentence_or_a_prediction(
    server: Server, request: tuple[str, bytes]
) -> None:
    """After every generated request the server still has the workers it started with."""
    content_type, body = request
    response = requests.post(
        f"{server.url}/invocations", data=body, headers={"Content-Type": content_type}, timeout=30
    )
    assert response.status_code < 500, response.text
    assert worker_pids(server) == server.workers, server.log.read_text()[-3000:]
    if response.status_code >= 400:
        assert response.json()["error"].endswith("."), response.text
