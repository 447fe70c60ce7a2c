"""Hand-written nasties through the real `./serve` under gunicorn on 127.0.0.1.

Every request ends in a 4xx with a sentence or in the correct prediction; never a 5xx, never a
dead worker (the worker PIDs are the same before and after), and the next normal request is
answered. Requests go over raw sockets so that bodies, lengths and pacing are exactly as written.
"""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from tests.support.server import Server, read_answer, running_server, worker_pids

from .helpers import save_model_dir, train_booster

pytestmark = pytest.mark.slow

READ_TIMEOUT_S = 2
ROW = b"0.1,0.2,0.3,0.4"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    @property
    def error(self) -> str:
        return json.loads(self.body)["error"]


@dataclass(frozen=True)
class Served:
    server: Server
    booster: xgb.Booster
    workers: set[int]

    @property
    def port(self) -> int:
        return self.server.port


def _serve(base: Path, **env: str) -> Iterator[Served]:
    booster = train_booster("binary:logistic")
    save_model_dir(base, booster)
    with running_server(base, XGB_SERVER_READ_TIMEOUT_S=str(READ_TIMEOUT_S), **env) as server:
        yield Served(server, booster, server.workers)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real-time server (6 MB payload limit), 2 workers, 2 s to send a request."""
    yield from _serve(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def batch_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A batch-transform server that takes bodies of up to 110 MB."""
    yield from _serve(
        tmp_path_factory.mktemp("hostile-batch"),
        SAGEMAKER_BATCH="true",
        SAGEMAKER_MAX_PAYLOAD_IN_MB="110",
    )


def request_bytes(body: bytes, content_type: str | None = "text/csv", length: int | None = None):
    """A raw POST /invocations with `body` and `Content-Length: length` (the body's by default)."""
    head = "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    head += f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    return head.encode() + body


def exchange(
    port: int, data: bytes, *, pace_s: float | None = None, half_close: bool = False
) -> Reply:
    """Send `data` (one byte every `pace_s` seconds if given), read the reply (until close, or
    its Content-Length: nginx keeps connections alive)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        try:
            if pace_s is None:
                sock.sendall(data)
            else:
                for i in range(len(data)):
                    sock.sendall(data[i : i + 1])
                    time.sleep(pace_s)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before the client finished: read its answer
        reply = read_answer(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), reply[:200]
    return Reply(int(head.split()[1]), body)


def _npy(rows: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, rows)
    return buffer.getvalue()


def _predicts(*rows: list[float]) -> Callable[[Reply, Served], None]:
    """The answer is the booster's prediction for `rows` (NaN for missing), one line each."""
    expected_rows = np.array(rows, dtype=np.float32)

    def check(reply: Reply, served: Served) -> None:
        assert reply.status == 200, reply.body[:300]
        got = [float(line) for line in reply.body.decode().split()]
        expected = served.booster.predict(xgb.DMatrix(expected_rows))
        np.testing.assert_allclose(got, expected, rtol=1e-6)

    return check


def _refused(status: int, *fragments: str) -> Callable[[Reply, Served], None]:
    """A JSON error with `status` whose sentence holds every fragment."""

    def check(reply: Reply, served: Served) -> None:
        assert reply.status == status, reply.body[:300]
        message = reply.error
        assert message.endswith("."), message
        for fragment in fragments:
            assert fragment in message, message

    return check


NAN = float("nan")
INFINITE = _refused(400, "is infinite")
NOT_A_NUMBER = _refused(400, "is not a number")
CSV_NAN_SPELLINGS = ["nan", "NaN", "NAN", "-nan", "+nan", "-NaN"]
CSV_INF_SPELLINGS = [
    "inf", "-inf", "+inf", "INF", "Inf", "infinity", "-Infinity", "INFINITY",
    "1e400", "-1e400", "1e39", "3.5e38",
]  # fmt: skip
JSON_NAN_SPELLINGS = ["NaN", '"nan"', '"NaN"', "null"]
JSON_INF_SPELLINGS = ["Infinity", "-Infinity", "1e400", "-1e400", '"inf"', '"-Infinity"']
NESTED_DEPTH = 100_000

CASES: dict[str, tuple[bytes, Callable[[Reply, Served], None]]] = {
    "csv-invalid-utf8": (request_bytes(b"0.1,\xff\xfe,0.3,0.4"), NOT_A_NUMBER),
    "csv-latin1-digits": (request_bytes(b"0.1,\xb2,0.3,0.4"), NOT_A_NUMBER),
    "json-invalid-utf8": (
        request_bytes(b'[[0.1, "\xff", 0.3, 0.4]]', "application/json"),
        _refused(400, "not valid UTF-8"),
    ),
    "jsonlines-invalid-utf8": (
        request_bytes(b'[0.1, 0.2, 0.3, 0.4]\n["\xc3\x28"]', "application/jsonlines"),
        _refused(400, "not valid UTF-8"),
    ),
    "libsvm-invalid-utf8": (
        request_bytes(b"0:0.1 1:\xff", "text/libsvm"),
        _refused(400, "not valid UTF-8"),
    ),
    "csv-bom": (request_bytes(b"\xef\xbb\xbf" + ROW + b"\n"), _predicts([0.1, 0.2, 0.3, 0.4])),
    "csv-bom-crlf": (
        request_bytes(b"\xef\xbb\xbf" + ROW + b"\r\n" + ROW + b"\r\n"),
        _predicts([0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]),
    ),
    "json-bom": (
        request_bytes(b"\xef\xbb\xbf[[0.1, 0.2, 0.3, 0.4]]", "application/json"),
        _predicts([0.1, 0.2, 0.3, 0.4]),
    ),
    "csv-nul-in-cell": (request_bytes(b"0.1,0.2\x00,0.3,0.4"), NOT_A_NUMBER),
    "csv-only-nuls": (request_bytes(b"\x00" * 64), NOT_A_NUMBER),
    "json-nul": (
        request_bytes(b"[[0.1, 0.2,\x00 0.3, 0.4]]", "application/json"),
        _refused(400, "not valid JSON"),
    ),
    "libsvm-nul": (request_bytes(b"0:0.1\x00 1:0.2", "text/libsvm"), _refused(400, "text/libsvm")),
    "csv-million-columns": (
        request_bytes(b"0," * 999_999 + b"0"),
        _refused(413, "1000000 columns", "XGB_SERVER_MAX_COLUMNS"),
    ),
    "json-million-columns": (
        request_bytes(b"[[" + b"0," * 999_999 + b"0]]", "application/json"),
        _refused(413, "1000000 columns"),
    ),
    "npy-million-columns": (
        request_bytes(_npy(np.zeros((1, 1_000_000), dtype=np.float32)), "application/x-npy"),
        _refused(413, "1000000 columns"),
    ),
    "libsvm-huge-index": (
        request_bytes(b"0:1 999999999:1", "text/libsvm"),
        _refused(413, "columns"),
    ),
    "csv-100mb-line-realtime": (
        request_bytes(b"0" * 100 * 1024 * 1024),
        _refused(413, "the limit is 6 MB"),
    ),
    "json-deeply-nested": (
        request_bytes(b"[" * NESTED_DEPTH + b"]" * NESTED_DEPTH, "application/json"),
        _refused(400, "nested too deeply"),
    ),
    "json-nested-objects": (
        request_bytes(b'{"instances":' * 50_000 + b"1" + b"}" * 50_000, "application/json"),
        _refused(400, "nested too deeply"),
    ),
    "json-nested-within-recursion-limit": (
        request_bytes(b"[" * 500 + b"1" + b"]" * 500, "application/json"),
        _refused(400, "application/json"),
    ),
    "jsonlines-deeply-nested": (
        request_bytes(b"[" * NESTED_DEPTH + b"]" * NESTED_DEPTH, "application/jsonlines"),
        _refused(400, "nested too deeply"),
    ),
    "csv-header-only": (request_bytes(b"f1,f2,f3,f4\n"), _refused(400, "row 1, column 1: 'f1'")),
    "csv-header-and-row": (
        request_bytes(b"f1,f2,f3,f4\n" + ROW + b"\n"),
        _refused(400, "row 1, column 1: 'f1'"),
    ),
    "csv-only-newlines": (request_bytes(b"\n\r\n\n"), _refused(400, "empty")),
    "csv-blank-line-between-rows": (request_bytes(ROW + b"\n\n" + ROW), _refused(400, "row 2")),
    "json-empty-instances": (
        request_bytes(b'{"instances": []}', "application/json"),
        _refused(400, "no rows"),
    ),
    "json-1e400-in-row": (
        request_bytes(b"[[1e400, 0.2, 0.3, 0.4]]", "application/json"),
        INFINITE,
    ),
    "npy-inf": (
        request_bytes(_npy(np.array([[np.inf, 0, 0, 0]], dtype=np.float64)), "application/x-npy"),
        INFINITE,
    ),
    "npy-object-array": (
        request_bytes(_npy(np.array([[1, "x", None, 2]], dtype=object)), "application/x-npy"),
        _refused(400, "object arrays are not accepted"),
    ),
    "npy-truncated": (
        request_bytes(_npy(np.zeros((10, 4)))[:-9], "application/x-npy"),
        _refused(400, "application/x-npy"),
    ),
    "libsvm-inf": (request_bytes(b"1 0:inf 1:0.2", "text/libsvm"), INFINITE),
    "libsvm-nan": (request_bytes(b"1 0:nan 1:0.2", "text/libsvm"), _predicts([NAN, 0.2, NAN, NAN])),
    "content-type-missing": (request_bytes(ROW, None), _predicts([0.1, 0.2, 0.3, 0.4])),
    "content-type-control-character": (
        request_bytes(ROW, "\x7f;;;=;charset"),
        _refused(400, "not valid HTTP/1.1"),
    ),
    "content-type-garbage": (request_bytes(ROW, ";;;=;charset"), _refused(415, "not supported")),
    "content-type-utf16": (
        request_bytes(ROW.decode().encode("utf-16"), "text/csv; charset=utf-16"),
        _refused(415, "charset 'utf-16'"),
    ),
    "content-length-short": (
        request_bytes(ROW + b",0.5,0.6,0.7", length=7),
        _refused(400, "got 2"),
    ),
    "content-length-zero-with-body": (
        request_bytes(ROW, length=0),
        _refused(400, "body is empty"),
    ),
}
HEAD = b"POST /invocations HTTP/1.1\r\nHost: x\r\n"
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
HTTP_CASES = {
    "http-garbage-request-line": (b"GARBAGE\r\n\r\n", 400),
    "http-version-2.0-line": (b"POST /invocations HTTP/2.0\r\nContent-Length: 0\r\n\r\n", 400),
    "http-negative-content-length": (HEAD + b"Content-Length: -5\r\n\r\n" + ROW, 400),
    "http-content-length-not-a-number": (HEAD + b"Content-Length: abc\r\n\r\n" + ROW, 400),
    "http-two-content-lengths": (
        HEAD + b"Content-Length: 15\r\nContent-Length: 4\r\n\r\n" + ROW,
        400,
    ),
    "http-content-length-and-chunked": (
        HEAD
        + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nf\r\n"
        + ROW
        + b"\r\n0\r\n\r\n",
        400,
    ),
    "http-transfer-encoding-gzip": (HEAD + b"Transfer-Encoding: gzip\r\n\r\n" + ROW, 400),
    "http-chunk-size-not-hex": (CHUNKED + b"zz\r\n" + ROW + b"\r\n0\r\n\r\n", 400),
    # a chunk of 2**76 bytes announced: refused at once (nginx)
    "http-chunk-size-huge": (CHUNKED + b"f" * 19 + b"\r\n" + ROW + b"\r\n0\r\n\r\n", 400),
    "http-chunk-missing-terminator": (CHUNKED + b"4\r\n0.1,XX0\r\n\r\n", 400),
    "http-header-20-kb": (HEAD + b"X-A: " + b"a" * 20_000 + b"\r\n\r\n", 431),
    "http-request-line-20-kb": (b"POST /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n", 414),
}
# nginx ignores chunk extensions and an Expect it does not know: the row is answered.
CASES["http-chunk-extension-control-byte"] = (
    CHUNKED + b"f;a=\x01\r\n" + ROW + b"\r\n0\r\n\r\n",
    _predicts([0.1, 0.2, 0.3, 0.4]),
)
CASES["http-expect-junk"] = (
    HEAD + b"Expect: junk\r\nContent-Length: 15\r\n\r\n" + ROW,
    _predicts([0.1, 0.2, 0.3, 0.4]),
)
for name, (data, status) in HTTP_CASES.items():
    CASES[name] = (data, _refused(status))
for spelling in CSV_NAN_SPELLINGS:
    CASES[f"csv-{spelling}"] = (
        request_bytes(f"{spelling},0.2,0.3,0.4".encode()),
        _predicts([NAN, 0.2, 0.3, 0.4]),
    )
for spelling in CSV_INF_SPELLINGS:
    CASES[f"csv-{spelling}"] = (request_bytes(f"0.1,0.2,0.3,{spelling}".encode()), INFINITE)
for spelling in JSON_NAN_SPELLINGS:
    CASES[f"json-{spelling}"] = (
        request_bytes(f"[[{spelling}, 0.2, 0.3, 0.4]]".encode(), "application/json"),
        _predicts([NAN, 0.2, 0.3, 0.4]),
    )
for spelling in JSON_INF_SPELLINGS:
    CASES[f"json-{spelling}"] = (
        request_bytes(f"[[0.1, 0.2, 0.3, {spelling}]]".encode(), "application/json"),
        INFINITE,
    )
CASES["csv-1e-400-underflows-to-zero"] = (
    request_bytes(b"1e-400,0.2,0.3,0.4"),
    _predicts([0.0, 0.2, 0.3, 0.4]),
)


def _assert_unharmed(served: Served) -> None:
    """Same workers as at start, and a normal request is answered."""
    assert worker_pids(served.server) == served.workers, served.server.log.read_text()[-3000:]
    _predicts([0.1, 0.2, 0.3, 0.4])(exchange(served.port, request_bytes(ROW)), served)


@pytest.mark.parametrize("name", list(CASES))
def test_nasty_body_gets_a_sentence_or_the_prediction(served: Served, name: str) -> None:
    data, check = CASES[name]
    reply = exchange(served.port, data)
    assert reply.status < 500, reply.body[:300]
    check(reply, served)
    _assert_unharmed(served)


def _cut_off(served: Served, data: bytes, *, half_close: bool = False) -> float:
    """Send `data`, then read: nginx closes without an answer (its deadlines and a client's
    early close end a request that way). Seconds until the close."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=60) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        reply = read_answer(sock)
    assert reply == b"", reply[:300]
    return time.monotonic() - started


def _logged_incomplete(served: Served, status: int) -> None:
    """nginx's line for a request that did not complete, with its status (see front.py)."""
    log = served.server.log
    deadline = time.monotonic() + 10
    while f"{status} after" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"{status} after" in log.read_text(), log.read_text()[-2000:]


def test_body_longer_than_sent_is_cut_off_at_the_deadline(served: Served) -> None:
    """Content-Length announces 100 bytes, 15 arrive, the client waits: nginx closes the
    connection at the read deadline and logs it (nginx sends no 408); no worker saw it."""
    waited = _cut_off(served, request_bytes(ROW, length=100))
    assert READ_TIMEOUT_S - 0.5 < waited < READ_TIMEOUT_S + 5, waited
    _logged_incomplete(served, 408)
    _assert_unharmed(served)


def test_body_longer_than_sent_then_closed_is_dropped(served: Served) -> None:
    _cut_off(served, request_bytes(ROW, length=100), half_close=True)
    _logged_incomplete(served, 400)
    _assert_unharmed(served)


@pytest.mark.parametrize(
    ("data", "answered"),
    [
        (CHUNKED + b"f\r\n" + ROW[:5], False),
        (CHUNKED + b"f\r\n" + ROW + b"\r\n", False),
        (CHUNKED + b"f" * 19 + b"\r\n" + ROW + b"\r\n0\r\n\r\n", True),
        (CHUNKED + b"zz\r\n" + ROW, True),
    ],
    ids=["cut-in-a-chunk", "no-last-chunk", "chunk-size-huge", "chunk-size-not-hex"],
)
def test_chunked_body_cut_short_then_closed_is_refused(
    served: Served, data: bytes, answered: bool
) -> None:
    """Broken chunk framing gets its 400 at once; a body cut short by the client's close is
    dropped (there is no one left to answer) and logged."""
    if answered:
        reply = exchange(served.port, data, half_close=True)
        _refused(400, "not valid HTTP/1.1")(reply, served)
    else:
        _cut_off(served, data, half_close=True)
        _logged_incomplete(served, 400)
    _assert_unharmed(served)


@pytest.mark.parametrize("start", ["body", "headers"])
def test_client_sending_a_byte_a_second_is_cut_off_and_the_worker_lives(
    served: Served, start: str
) -> None:
    """Bounded: 4 bytes at one a second against a 2 s deadline. The headers have one deadline
    in all; the body one between reads, so the client is cut off 2 s after its last byte.
    nginx holds the connection meanwhile: no worker is involved."""
    data = request_bytes(ROW)
    split = data.index(b"\r\n\r\n") + 4 if start == "body" else 10
    with socket.create_connection(("127.0.0.1", served.port), timeout=60) as sock:
        sock.sendall(data[:split])
        try:
            for byte in data[split : split + 4]:
                sock.sendall(bytes([byte]))
                time.sleep(1)
        except OSError:
            pass
        reply = read_answer(sock)
    assert reply == b"", reply[:300]
    _logged_incomplete(served, 408)
    _assert_unharmed(served)


def test_limits_refuse_before_the_body_is_parsed_in_full(tmp_path: Path) -> None:
    """Cells past the row or column limit are not numbers: a full parse would answer 400 for
    them, the limit check answers 413 first."""
    gen = _serve(tmp_path, XGB_SERVER_MAX_ROWS="1000", XGB_SERVER_MAX_COLUMNS="10")
    served = next(gen)
    try:
        rows = (ROW + b"\n") * 1000 + b"x,y,z,w\n"
        too_wide = b"0," * 10 + b"x"
        for body, content_type, fragment in [
            (rows, "text/csv", "1001 rows"),
            (too_wide, "text/csv", "11 columns"),
            (b'["x"]\n' * 1001, "application/jsonlines", "1001 rows"),
            (b"1 0:x\n" * 1001, "text/libsvm", "1001 rows"),
            (b'[["' + b'x","' * 10 + b'x"]]', "application/json", "11 columns"),
        ]:
            reply = exchange(served.port, request_bytes(body, content_type))
            _refused(413, fragment)(reply, served)
        _assert_unharmed(served)
    finally:
        gen.close()


def test_a_single_100_mb_line_in_batch_mode(batch_served: Served) -> None:
    """A 100 MB number in the first of 4 cells is read (and predicted); 100 MB of one digit is
    one feature; 100 MB of commas is refused on the column count before parsing."""
    big = b"0." + b"1" * (100 * 1024 * 1024)
    reply = exchange(batch_served.port, request_bytes(big + b",0.2,0.3,0.4\n"))
    _predicts([0.1111111, 0.2, 0.3, 0.4])(reply, batch_served)
    reply = exchange(batch_served.port, request_bytes(b"1" * (100 * 1024 * 1024)))
    _refused(400, "got 1")(reply, batch_served)
    reply = exchange(batch_served.port, request_bytes(b"," * (100 * 1024 * 1024)))
    _refused(413, "XGB_SERVER_MAX_COLUMNS")(reply, batch_served)
    _assert_unharmed(batch_served)
