"""text/csv: rows of numbers, no header, no label column; empty fields are missing values.

Small bodies are parsed by numpy's C reader (microseconds for one row), large ones streamed
through pyarrow's reader (threads as configured per worker); any body pyarrow refuses is re-read
by numpy for the exact message. Predictions go out one line per row.
"""

from __future__ import annotations

import io
import itertools
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from container.arrow_values import float_values
from container.errors import BadRequest
from container.serving.codecs import text_format
from container.serving.codecs.limits import Limits
from container.serving.predictions import Output

MEDIA_TYPE = "text/csv"
ARROW_MIN_BYTES = 32 * 1024
"""Bodies from this size on go to pyarrow. Measured here with 50 features on a busy 2-core
machine: numpy is ahead up to ~50 rows (22 KiB: 0.48 vs 0.57 ms), pyarrow from ~100 rows
(44 KiB: 0.93 vs 1.07 ms; 1,000 rows: 5.4 vs 9.0 ms)."""
PIECE_MIN_BYTES = 4 * 2**20
"""Bodies are read in parallel pieces of at least this size: below it, a thread's start-up and
a second reader cost more than they save."""

_EMPTY_FIELD = re.compile(rb"^(?=,)|(?<=,)(?=,|\r?$)", re.MULTILINE)
"""An empty field: first on its line before a comma, or after a comma before another or the
line's end. A line with nothing on it has no fields: it stays blank and is named as such."""
_BAD_VALUE = re.compile(r"could not convert string '(.*?)'? to float32 at row (\d+), column (\d+)")
"""numpy's message; it cuts a long value short without the closing quote."""
_WIDTH_CHANGE = re.compile(r"number of columns changed from (\d+) to (\d+) at row (\d+)")
_HELP = "text/csv rows hold numbers separated by commas; leave a field empty for a missing value."


def _with_line_feeds(body: bytes | bytearray) -> bytes | bytearray:
    """`body` with bare `\r` line ends (old Mac files) made `\n`, as `train`'s CSV reader
    (Arrow) reads them; a body without a bare `\r` is returned as it is, uncopied."""
    if b"\r" not in body or body.count(b"\r") == body.count(b"\r\n"):
        return body
    return body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _content_bounds(body: bytes | bytearray) -> tuple[int, int]:
    """Where the rows are: after a UTF-8 BOM, before trailing line breaks (no copy made)."""
    start = 3 if body.startswith(b"\xef\xbb\xbf") else 0
    end = len(body)
    while end > start and body[end - 1] in (10, 13):
        end -= 1
    return start, end


def _count_shape(
    body: bytes | bytearray, start: int, end: int, pieces: list[range]
) -> tuple[list[int], int]:
    """The lines in each piece of `body[start:end]` and the fields of its first line."""
    first_end = body.find(b"\n", start, end)
    columns = body.count(b",", start, end if first_end < 0 else first_end) + 1
    piece_rows = [body.count(b"\n", piece.start, piece.stop) for piece in pieces]
    if piece_rows:
        piece_rows[-1] += 1  # every piece but the last ends with its line break
    return piece_rows, columns


def _check_blank_lines(body: bytes | bytearray, start: int, end: int) -> None:
    for marker in (b"\n\n", b"\n\r\n"):
        at = body.find(marker, start, end)
        if at >= 0:
            row = body.count(b"\n", start, at) + 2
            raise BadRequest(f"text/csv row {row} is empty. {_HELP}")


def _fill_empty_fields(body: bytes) -> bytes:
    """Write `nan` into empty fields (numpy's reader has no notion of an empty field)."""
    if (
        b",," in body
        or body.startswith(b",")
        or body.endswith(b",")
        or b"\n," in body
        or b",\n" in body
        or b",\r" in body
    ):
        return _EMPTY_FIELD.sub(b"nan", body)
    return body


def _parse_numpy(body: bytes) -> np.ndarray:
    try:
        return np.loadtxt(
            io.BytesIO(body),
            delimiter=",",
            dtype=np.float32,
            ndmin=2,
            comments=None,
            encoding="latin1",
        )
    except ValueError as exc:
        raise _explain(str(exc)) from None


def _explain(message: str) -> BadRequest:
    bad = _BAD_VALUE.search(message)
    if bad:
        value, row, column = bad.group(1), int(bad.group(2)) + 1, int(bad.group(3))
        shown = value if len(value) <= 40 else value[:40] + "..."
        return BadRequest(
            f"text/csv row {row}, column {column}: '{shown}' is not a number. {_HELP}"
        )
    width = _WIDTH_CHANGE.search(message)
    if width:
        before, after, row = (int(g) for g in width.groups())
        return BadRequest(
            f"text/csv row {row} has {after} fields but the rows before it have {before}. "
            "Every row needs the same number of fields."
        )
    return BadRequest(f"text/csv body could not be read: {message}. {_HELP}")


def _line_ranges(body: bytes | bytearray, start: int, end: int, pieces: int) -> list[range]:
    """`body[start:end]` cut into up to `pieces` ranges of about equal size, each ending at a line
    break (the last one at `end`)."""
    cuts = [start]
    for i in range(1, pieces):
        at = body.find(b"\n", max(cuts[-1], start + (end - start) * i // pieces), end)
        if at < 0:
            break
        cuts.append(at + 1)
    cuts.append(end)
    return [range(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _fill_from_arrow(piece: memoryview, by_column: np.ndarray, columns: int) -> bool:
    """Stream one piece of the body through pyarrow's reader into `by_column` (columns × its
    rows); False when pyarrow refuses it or it holds another number of rows (blank lines)."""
    names = [f"f{i}" for i in range(columns)]
    rows = by_column.shape[1]
    filled = 0
    try:
        with pa_csv.open_csv(
            pa.py_buffer(piece),
            read_options=pa_csv.ReadOptions(column_names=names),
            parse_options=pa_csv.ParseOptions(quote_char=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.float64()),
                null_values=[""],
                strings_can_be_null=False,
            ),
        ) as reader:
            for batch in reader:
                count = batch.num_rows
                if filled + count > rows:
                    return False
                with np.errstate(over="ignore"):  # beyond float32: inf, refused later by name
                    for i, column in enumerate(batch.columns):
                        by_column[i, filled : filled + count] = float_values(column)
                filled += count
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return False  # numpy re-reads it and names the bad cell
    return filled == rows


def _piece_count(size: int) -> int:
    """Pieces a body of `size` bytes is read in: one per thread pyarrow may use, each of at
    least `PIECE_MIN_BYTES`."""
    return min(pa.cpu_count(), max(1, size // PIECE_MIN_BYTES))


def _parse_arrow(
    body: bytes | bytearray, pieces: list[range], piece_rows: list[int], columns: int
) -> np.ndarray | None:
    """Parse the `pieces` of `body` (with `piece_rows` lines each) with pyarrow's streaming
    reader into one preallocated matrix.

    Streaming keeps the parser's working memory to a few blocks (a 52 MB body: the 20 MB matrix
    and about 1 MB more, against 110 MB for pandas' `read_csv`). The reader parses one block at
    a time, so a body of `PIECE_MIN_BYTES` or more comes cut at line breaks into one piece per
    thread pyarrow may use (one per worker, two in batch mode: `server.py`), each read by its
    own reader into its own rows, at once. Values are parsed as float64 and rounded to
    float32, as numpy's reader does (and 10-20% faster than pyarrow's own float32 conversion).
    The matrix is filled column by column and handed on in Fortran order: XGBoost reads strided
    arrays. None when any piece is refused: numpy then re-reads the body for the message.
    """
    by_column = np.empty((columns, sum(piece_rows)), dtype=np.float32)
    offsets = np.cumsum([0, *piece_rows])
    view = memoryview(body)
    jobs = [
        (view[piece.start : piece.stop], by_column[:, first:stop])
        for piece, (first, stop) in zip(pieces, itertools.pairwise(offsets), strict=True)
    ]
    if len(jobs) == 1:
        filled = [_fill_from_arrow(*jobs[0], columns)]
    else:
        with ThreadPoolExecutor(len(jobs)) as pool:
            filled = list(pool.map(lambda job: _fill_from_arrow(*job, columns), jobs))
    return by_column.T if all(filled) else None


def decode(body: bytes | bytearray, limits: Limits) -> np.ndarray:
    """Parse a CSV body into float32 rows (NaN for empty fields).

    Shape and limits are checked on the raw bytes first; large bodies then go to pyarrow as a
    zero-copy view, small ones (and any pyarrow refuses) to numpy. Blank lines are looked for
    only when the rows parsed are fewer than the lines counted (both parsers skip them).
    """
    body = _with_line_feeds(body)
    start, end = _content_bounds(body)
    pieces = _line_ranges(body, start, end, _piece_count(end - start))
    piece_rows, columns = _count_shape(body, start, end, pieces)
    rows = sum(piece_rows)
    limits.check(rows, columns)
    if end - start >= ARROW_MIN_BYTES:
        parsed = _parse_arrow(body, pieces, piece_rows, columns)
        if parsed is not None:
            return parsed
    parsed = _parse_numpy(_fill_empty_fields(bytes(memoryview(body)[start:end])))
    if len(parsed) != rows:
        _check_blank_lines(body, start, end)
    return parsed


def encode(output: Output, batch: bool) -> bytes:
    """One line per row: the selected keys in order, list-valued keys as a quoted list."""
    return text_format.csv_lines(output, batch)
