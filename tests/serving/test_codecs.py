"""Codecs on their own: both CSV parsers agree, edge cases of each format, and the encoders."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest
from sagemaker_training.record_pb2 import Record

from container import recordio
from container.errors import BadRequest, PayloadTooLarge
from container.serving.codecs import DECODERS, ENCODERS, Limits, csv_codec, text_format
from container.serving.predictions import Output

LIMITS = Limits(max_rows=1_000_000, max_columns=100_000)


def _csv(rows: np.ndarray, newline: str = "\n") -> bytes:
    lines = [",".join("" if np.isnan(v) else f"{v:.7g}" for v in row) for row in rows]
    return newline.join(lines).encode()


def _parse_arrow(body: bytes) -> np.ndarray | None:
    """The pyarrow path on the whole body, in as many pieces as `decode` would cut."""
    pieces = csv_codec._line_ranges(body, 0, len(body), csv_codec._piece_count(len(body)))
    piece_rows, columns = csv_codec._count_shape(body, 0, len(body), pieces)
    return csv_codec._parse_arrow(body, pieces, piece_rows, columns)


@pytest.fixture(scope="module")
def big_rows() -> np.ndarray:
    rows = np.random.default_rng(3).normal(size=(4000, 20)).astype(np.float32)
    rows[::5, 0] = np.nan  # empty first field
    rows[::7, 7] = np.nan  # empty middle field
    rows[::9, 19] = np.nan  # empty last field
    return rows


def test_large_csv_takes_the_arrow_path_and_matches_numpy(big_rows: np.ndarray) -> None:
    body = _csv(big_rows)
    assert len(body) >= csv_codec.ARROW_MIN_BYTES
    from_arrow = _parse_arrow(body)
    from_numpy = csv_codec._parse_numpy(csv_codec._fill_empty_fields(body))
    assert from_arrow is not None
    np.testing.assert_array_equal(from_arrow, from_numpy)
    np.testing.assert_allclose(csv_codec.decode(body, LIMITS), big_rows, rtol=1e-6)


@pytest.fixture
def in_pieces(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """pyarrow may use 3 threads and a body is cut into 3 pieces from 64 KiB on (as a batch
    worker cuts a 12 MB body), for the length of one test."""
    monkeypatch.setattr(csv_codec, "PIECE_MIN_BYTES", 64 * 1024)
    before = pa.cpu_count()
    pa.set_cpu_count(3)
    yield 3
    pa.set_cpu_count(before)


def test_line_ranges_cover_the_body_and_end_at_line_breaks() -> None:
    body = b"\xef\xbb\xbf" + b"\n".join(b"%d,%d" % (i, i) for i in range(1000))
    ranges = csv_codec._line_ranges(body, 3, len(body), 4)
    assert len(ranges) == 4
    assert b"".join(body[r.start : r.stop] for r in ranges) == body[3:]
    assert all(body[r.stop - 1 : r.stop] == b"\n" for r in ranges[:-1])
    assert csv_codec._line_ranges(b"1,2", 0, 3, 4) == [range(0, 3)]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_body_read_in_pieces_matches_numpy(
    big_rows: np.ndarray, in_pieces: int, newline: str
) -> None:
    body = _csv(big_rows, newline)
    assert len(body) >= in_pieces * csv_codec.PIECE_MIN_BYTES
    from_pieces = _parse_arrow(body)
    assert from_pieces is not None
    np.testing.assert_array_equal(
        from_pieces, csv_codec._parse_numpy(csv_codec._fill_empty_fields(body))
    )


def test_a_bad_cell_in_a_later_piece_is_named(big_rows: np.ndarray, in_pieces: int) -> None:
    lines = _csv(big_rows).split(b"\n")
    lines[3500] = lines[3500][: lines[3500].rindex(b",") + 1] + b"9x"
    with pytest.raises(BadRequest, match=r"text/csv row 3501, column 20: '9x' is not a number"):
        csv_codec.decode(b"\n".join(lines), LIMITS)


def test_a_blank_line_in_a_later_piece_is_named(big_rows: np.ndarray, in_pieces: int) -> None:
    lines = _csv(big_rows).split(b"\n")
    lines.insert(3000, b"")
    with pytest.raises(BadRequest, match=r"text/csv row 3001 is empty"):
        csv_codec.decode(b"\n".join(lines), LIMITS)


def test_large_csv_with_a_bad_cell_names_it(big_rows: np.ndarray) -> None:
    lines = _csv(big_rows).split(b"\n")
    lines[1] = b"xyz" + lines[1][lines[1].index(b",") :]
    body = b"\n".join(lines)
    with pytest.raises(BadRequest, match=r"text/csv row 2, column 1: 'xyz' is not a number"):
        csv_codec.decode(body, LIMITS)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"1,2,3", [[1, 2, 3]]),
        (b"1,2,3\r\n4,5,6\r\n", [[1, 2, 3], [4, 5, 6]]),
        (b"\xef\xbb\xbf1,2,3\n", [[1, 2, 3]]),
        (b",2,\n4,,6\n", [[np.nan, 2, np.nan], [4, np.nan, 6]]),
        (b"nan,NaN,-nan\n", [[np.nan, np.nan, np.nan]]),
        (b"nan,NaN,-nan\n" * 4000, [[np.nan, np.nan, np.nan]] * 4000),
        (b" 1 , 2,3 \n", [[1, 2, 3]]),
        (b"1e3,-2.5E-1,+3\n", [[1000, -0.25, 3]]),
    ],
    ids=[
        "no-newline",
        "crlf",
        "bom",
        "empty-fields",
        "nan-spellings",
        "nan-spellings-large",
        "spaces",
        "exponents",
    ],
)
def test_csv_edge_cases(body: bytes, expected: list) -> None:
    np.testing.assert_array_equal(csv_codec.decode(body, LIMITS), np.array(expected, np.float32))


def test_a_blank_line_among_empty_fields_is_named_as_blank() -> None:
    with pytest.raises(BadRequest, match=r"text/csv row 2 is empty\."):
        csv_codec.decode(b"1,,3\n\n,5,\n", LIMITS)


def test_csv_nul_byte_is_a_bad_cell() -> None:
    with pytest.raises(BadRequest, match=re.escape("row 1, column 2: '2\\x00' is not a number")):
        csv_codec.decode(b"1,2\x00,3\n", LIMITS)


def test_row_limit_is_checked_before_parsing() -> None:
    body = b"not,even,numbers\n" * 11
    with pytest.raises(PayloadTooLarge, match="holds 11 rows; the limit is 10"):
        csv_codec.decode(body, Limits(max_rows=10, max_columns=10))


def test_column_limit_is_checked_on_the_first_line() -> None:
    body = b"," * 2_000_000 + b"\n"
    with pytest.raises(PayloadTooLarge, match="holds 2000001 columns; the limit is 100000"):
        csv_codec.decode(body, LIMITS)


def test_libsvm_skips_label_and_qid_and_keeps_indices_as_columns() -> None:
    matrix = DECODERS["text/libsvm"](b"3 qid:1 1:0.5 3:2\n0 0:1\n", LIMITS)
    assert matrix.shape == (2, 4)
    np.testing.assert_array_equal(matrix.toarray(), [[0, 0.5, 0, 2], [1, 0, 0, 0]])


def test_json_nulls_are_missing_and_numeric_strings_are_numbers() -> None:
    matrix = DECODERS["application/json"](b'[[1, null, "2.5"]]', LIMITS)
    np.testing.assert_array_equal(matrix, np.array([[1, np.nan, 2.5]], np.float32))


SCORES = np.array([0.25, 0.5, np.nan], dtype=np.float32)
PROBS = np.array([[0.1, 0.9], [0.5, 0.5], [1.0, 0.0]], dtype=np.float32)


def _records(media_type: str, body: bytes) -> list:
    if media_type == recordio.MEDIA_TYPE:
        return [_labels_of(payload) for payload in recordio.read_payloads(io.BytesIO(body))]
    text = body.decode()
    if media_type == "application/json":
        return json.loads(text)["predictions"]
    if media_type == "application/jsonlines":
        return [json.loads(line) for line in text.splitlines()]
    return [
        [json.loads(cell.strip('"')) for cell in _csv_cells(line)] for line in text.splitlines()
    ]


def _labels_of(payload: bytes) -> dict[str, list[float]]:
    record = Record()
    record.ParseFromString(payload)
    return {key: list(value.float32_tensor.values) for key, value in record.label.items()}


def _csv_cells(line: str) -> list[str]:
    cells, quoted = [], ""
    for part in line.split(","):
        if quoted:
            quoted += "," + part
            if part.endswith('"'):
                cells.append(quoted)
                quoted = ""
        elif part.startswith('"') and not part.endswith('"'):
            quoted = part
        else:
            cells.append(part)
    return cells


@pytest.mark.parametrize("media_type", list(ENCODERS), ids=str)
@pytest.mark.parametrize("selected", [False, True], ids=["score", "selected-keys"])
def test_small_and_large_answers_hold_the_same_values(media_type: str, selected: bool) -> None:
    """Up to SMALL_ROWS rows are written by numpy, more by pyarrow: the values must agree."""
    small, large = 3, text_format.SMALL_ROWS * 3
    scores = np.resize(np.array([0.25, 0.125, 0.75], np.float32), large)
    probs = np.resize(PROBS, (large, 2))
    labels = np.resize(np.array([1, 0, 1]), large)

    def output(n: int) -> Output:
        if selected:
            return Output((("predicted_label", labels[:n]), ("probabilities", probs[:n])), True)
        return Output((("score", scores[:n]),), False)

    small_records = _records(media_type, ENCODERS[media_type](output(small), False))
    large_records = _records(media_type, ENCODERS[media_type](output(large), False))
    assert len(small_records) == small
    assert len(large_records) == large
    assert large_records[:small] == small_records


def test_json_writes_nan_as_null_and_csv_as_nan() -> None:
    output = Output((("score", SCORES),), selected=False)
    assert json.loads(ENCODERS["application/json"](output, False))["predictions"][2] == {
        "score": None
    }
    assert ENCODERS["text/csv"](output, False) == b"0.25\n0.5\nnan"
    assert ENCODERS["text/csv"](output, True) == b"0.25\n0.5\nnan\n"


def test_large_csv_output_matches_small_formatting_numerically() -> None:
    values = np.random.default_rng(1).random(500).astype(np.float32)
    output = Output((("score", values),), selected=False)
    text = ENCODERS["text/csv"](output, False).decode()
    np.testing.assert_array_equal(np.array(text.split(), dtype=np.float32), values)


@pytest.mark.parametrize("media_type", list(ENCODERS), ids=str)
@pytest.mark.parametrize("selected", [False, True], ids=["score", "selected-keys"])
@pytest.mark.parametrize("batch", [False, True], ids=["endpoint", "batch"])
def test_answers_written_in_blocks_equal_one_block(
    media_type: str, selected: bool, batch: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large answers are written `BLOCK_ROWS` rows at a time and joined: byte for byte the
    answer written in one block, across block boundaries and a short last block."""
    rows = 250
    rng = np.random.default_rng(3)
    probs = rng.random((rows, 3)).astype(np.float32)
    if selected:
        output = Output((("predicted_label", probs.argmax(1)), ("probabilities", probs)), True)
    else:
        output = Output((("score", probs),), False)
    monkeypatch.setattr(text_format, "BLOCK_ROWS", 10**9)
    whole = ENCODERS[media_type](output, batch)
    monkeypatch.setattr(text_format, "BLOCK_ROWS", 100)
    assert ENCODERS[media_type](output, batch) == whole
    assert len(_records(media_type, whole)) == rows
