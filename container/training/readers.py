"""One reader per training content type: a file in, a `Batch` (features, label, weight) out.

CSV and LIBSVM are parsed by Arrow's multi-threaded C++ code (LIBSVM with Arrow compute
kernels, no Python loop per value); Python only walks a file line by line after Arrow has
refused it, to name the line and column at fault. Every reader takes gzip files too.
The dense formats (CSV, Parquet) are read as a stream of `Batch`es of a few thousand rows,
so a caller can pass the rows on without holding the whole file; `read_csv` and
`read_parquet` join a stream into one `Batch`.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import scipy.sparse as sp

from container import libsvm, recordio
from container.arrow_values import float_values
from container.errors import ClientError

GZIP_MAGIC = b"\x1f\x8b"
CSV_BLOCK_BYTES = 1 << 20
"""Arrow parses CSV in blocks of this size on all cores; bigger blocks cost memory, not speed."""
PARQUET_BATCH_ROWS = 65536
DASK_INDEX = "__null_dask_index__"
_MAX_INDEX_DIGITS = 18
"""Digits of the largest LIBSVM index Arrow reads as an int64."""
"""The column Dask writes an unnamed index to."""


class LabelledRows:
    """The shape of rows held as `features` (anything with a 2-D `shape`) and one `label` each."""

    features: Any
    label: np.ndarray

    @property
    def num_rows(self) -> int:
        return int(self.label.shape[0])

    @property
    def num_columns(self) -> int:
        return int(self.features.shape[1])


@dataclass
class Batch(LabelledRows):
    """The rows of one file. `features` is an Arrow table (dense) or a CSR matrix (sparse)."""

    features: pa.Table | sp.csr_matrix
    label: np.ndarray
    weight: np.ndarray | None = None
    qid: np.ndarray | None = None


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_stream(path: Path) -> pa.NativeFile:
    """An Arrow input stream, decompressing gzip whatever the file's extension."""
    return pa.input_stream(str(path), compression="gzip" if is_gzip(path) else None)


def read_head(path: Path, size: int = 65536) -> bytes:
    """The first bytes of a file, decompressed."""
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as handle:
        return handle.read(size)


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as raw:
        for number, line in enumerate(io.TextIOWrapper(raw, encoding="utf-8", errors="replace"), 1):
            yield number, line.rstrip("\r\n")


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn a read that fails half-way (truncated gzip, I/O error) into a sentence."""
    try:
        yield
    except (OSError, EOFError) as exc:
        raise ClientError(
            f"File {path} could not be read to the end ({exc}): is it truncated or corrupt?"
        ) from None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return "_" not in cell


# --- CSV -------------------------------------------------------------------------------------


def _first_csv_width(path: Path) -> int:
    for _, line in _text_lines(path):
        if line.strip():
            return line.count(",") + 1
    return 0


def read_csv(path: Path, csv_weights: bool) -> Batch:
    """Label in column 0, weight in column 1 when `csv_weights`, no header, empty = missing."""
    return join_batches(stream_csv(path, csv_weights))


def stream_csv(path: Path, csv_weights: bool) -> Iterator[Batch]:
    """`read_csv`'s rows block by block; a bad cell fails when its block is reached."""
    with _reading(path):
        width = _first_csv_width(path)
        if width == 0:
            return
        names = [f"c{i}" for i in range(width)]
        with open_stream(path) as source:
            try:
                reader = pcsv.open_csv(
                    source,
                    read_options=pcsv.ReadOptions(column_names=names, block_size=CSV_BLOCK_BYTES),
                    parse_options=pcsv.ParseOptions(delimiter=","),
                    convert_options=pcsv.ConvertOptions(
                        column_types=dict.fromkeys(names, pa.float32()),
                        null_values=[""],
                        strings_can_be_null=True,
                    ),
                )
                first_row = 0
                for record_batch in reader:
                    batch = _split_label(
                        pa.Table.from_batches([record_batch]), path, csv_weights, first_row
                    )
                    first_row += batch.num_rows
                    yield batch
            except pa.ArrowInvalid as exc:
                raise ClientError(_locate_csv_error(path, width) or f"{path}: {exc}") from None


def _locate_csv_error(path: Path, width: int) -> str | None:
    for number, line in _text_lines(path):
        if not line.strip():
            continue
        cells = line.split(",")
        if len(cells) != width:
            return (
                f"File {path}, line {number} has {len(cells)} columns but the first row has "
                f"{width}: every CSV row must have the same number of columns."
            )
        for column, cell in enumerate(cells, 1):
            text = cell.strip().strip('"')
            if text and not _is_number(text):
                hint = (
                    " Training CSV has no header row (label in column 1): remove the header."
                    if number == 1
                    else ""
                )
                return (
                    f"File {path}, line {number}, column {column}: {cell[:40]!r} is not a "
                    f"number; CSV cells must be numbers or empty (missing).{hint}"
                )
    return None


def _split_label(table: pa.Table, path: Path, with_weight: bool, first_row: int = 0) -> Batch:
    """Column 0 is the label, column 1 the weight when asked; the rest are features.

    `first_row` is the file's row number of the table's first row, for messages.
    """
    first_feature = 2 if with_weight else 1
    if table.num_columns <= first_feature:
        raise ClientError(
            f"File {path} has {table.num_columns} column(s): it needs a label"
            f"{', a weight' if with_weight else ''} and at least one feature column."
        )
    label = _column_to_numpy(table.column(0))
    weight = _column_to_numpy(table.column(1)) if with_weight else None
    _check_present(label, path, "label", 1, first_row)
    if weight is not None:
        _check_present(weight, path, "weight", 2, first_row)
    features = table.select(range(first_feature, table.num_columns))
    return Batch(features=features, label=label, weight=weight)


def _column_to_numpy(column: pa.ChunkedArray) -> np.ndarray:
    return float_values(column.combine_chunks())


def _check_present(
    values: np.ndarray, path: Path, what: str, column: int, first_row: int = 0
) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ClientError(
            f"File {path}, row {first_row + bad[0] + 1}: the {what} (column {column}) is "
            f"missing or not finite; every row needs a numeric {what}."
        )


def join_batches(batches: Iterable[Batch]) -> Batch:
    """The rows of a stream of dense `Batch`es as one (an empty stream is an empty batch)."""
    parts = [batch for batch in batches if batch.num_rows]
    if not parts:
        return _empty_batch()
    weights = [batch.weight for batch in parts]
    return Batch(
        features=pa.concat_tables([batch.features for batch in parts]),
        label=np.concatenate([batch.label for batch in parts]),
        weight=None if weights[0] is None else np.concatenate(weights),
    )


def _empty_batch() -> Batch:
    return Batch(features=pa.table({}), label=np.empty(0, np.float32))


# --- LIBSVM ----------------------------------------------------------------------------------


def read_libsvm(path: Path) -> Batch:
    """`label[:weight] [qid:N] index:value ...` per line; indices as written (0-based).

    The grammar is `container/libsvm.py`'s, which serving reads too: `index:` with no value
    (seen in the built-in algorithm's own test data) is a missing value.
    """
    with _reading(path):
        return _read_libsvm(path)


_LINE_OPTIONS = {
    "read_options": pcsv.ReadOptions(column_names=["line"], block_size=CSV_BLOCK_BYTES),
    "parse_options": pcsv.ParseOptions(delimiter="\x1e", quote_char=False),
    "convert_options": pcsv.ConvertOptions(column_types={"line": pa.string()}),
}
"""A text file as one string column, a line a row (LIBSVM holds no commas to split on)."""


def _read_libsvm(path: Path) -> Batch:
    try:
        lines = pcsv.read_csv(open_stream(path), **_LINE_OPTIONS).column("line")
        return _parse_libsvm_lines(lines.combine_chunks() if lines.num_chunks else lines)
    except (pa.ArrowInvalid, ValueError) as exc:
        raise ClientError(_locate_libsvm_error(path) or f"{path}: {exc}") from None


def stream_libsvm(path: Path, _csv_weights: bool = False) -> Iterator[Batch]:
    """`read_libsvm`'s rows block by block (CSR pieces as wide as their widest row), for
    external-memory training; a bad line fails when its block is reached."""
    with _reading(path), open_stream(path) as source:
        try:
            for record_batch in pcsv.open_csv(source, **_LINE_OPTIONS):
                yield _parse_libsvm_lines(record_batch.column(0))
        except (pa.ArrowInvalid, ValueError) as exc:
            raise ClientError(_locate_libsvm_error(path) or f"{path}: {exc}") from None


def _parse_libsvm_lines(lines: Any) -> Batch:
    if len(lines) == 0:
        return _empty_batch()
    # Arrow's split makes an empty token of leading or trailing whitespace; XGBoost skips it.
    tokens = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(lines))
    tokens = tokens.filter(pc.greater(pc.list_value_length(tokens), 0))
    counts = pc.list_value_length(tokens).to_numpy().astype(np.int64)
    head = pc.split_pattern(pc.list_element(tokens, 0), ":", max_splits=1)
    label = pc.cast(pc.list_element(head, 0), pa.float32()).to_numpy()
    weight = None
    has_weight = pc.greater(pc.list_value_length(head), 1).to_numpy(zero_copy_only=False)
    if has_weight.any():
        weight = np.ones(len(label), dtype=np.float32)
        weight_text = pc.list_flatten(pc.list_slice(head, 1, 2))
        weight[has_weight] = pc.cast(weight_text, pa.float32()).to_numpy()
    flat = pc.list_flatten(tokens)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    is_feature = np.ones(len(flat), dtype=bool)
    is_feature[starts] = False
    qid = None
    second = np.minimum(starts + 1, len(flat) - 1)
    has_qid = (counts > 1) & pc.starts_with(flat.take(pa.array(second)), "qid:").to_numpy(
        zero_copy_only=False
    )
    if has_qid.any():
        if not has_qid.all():
            raise ValueError("some rows have qid: and some do not")
        qid_text = pc.utf8_slice_codeunits(flat.take(pa.array(second)), 4)
        qid = pc.cast(qid_text, pa.int64()).to_numpy()
        is_feature[second] = False
    pairs = pc.split_pattern(flat.filter(pa.array(is_feature)), ":", max_splits=1)
    if len(pairs) and pc.min(pc.list_value_length(pairs)).as_py() != 2:
        raise ValueError("a feature token is not index:value")
    indices = pc.cast(pc.list_element(pairs, 0), pa.int64()).to_numpy()
    value_text = pc.list_element(pairs, 1)
    value_text = pc.if_else(pc.equal(value_text, ""), "nan", value_text)  # `8:` is missing
    values = pc.cast(value_text, pa.float32()).to_numpy()
    if indices.size and indices.min() < 0:
        raise ValueError("a feature index is negative")
    per_row = counts - 1 - (qid is not None)
    indptr = np.concatenate([[0], np.cumsum(per_row)])
    width = int(indices.max()) + 1 if indices.size else 0
    matrix = sp.csr_matrix((values, indices, indptr), shape=(len(counts), width))
    return Batch(features=matrix, label=label, weight=weight, qid=qid)


def _locate_libsvm_error(path: Path) -> str | None:
    """The first line that breaks the grammar (`container/libsvm.py`), as a sentence."""
    for number, line in _text_lines(path):
        try:
            parsed = libsvm.parse_line(line)
        except libsvm.GrammarError as exc:
            return f"File {path}, line {number}, {exc} {libsvm.HELP}"
        for index, _ in parsed.pairs:
            if len(index) > _MAX_INDEX_DIGITS:
                return (
                    f"File {path}, line {number}: index {index[:20]}... ({len(index)} digits) "
                    "is too large for a column position."
                )
    return None


# --- Parquet ---------------------------------------------------------------------------------


def read_parquet(path: Path, csv_weights: bool) -> Batch:
    """Column 0 is the label (column 1 the weight with `csv_weights`); every column numeric."""
    return join_batches(stream_parquet(path, csv_weights))


def stream_parquet(path: Path, csv_weights: bool) -> Iterator[Batch]:
    """`read_parquet`'s rows a batch at a time (a row group is read when reached)."""
    import pyarrow.parquet as pq

    with open_stream(path) as source:
        try:
            parquet = pq.ParquetFile(source)
            record_batches = parquet.iter_batches(
                batch_size=PARQUET_BATCH_ROWS, columns=data_columns(parquet.schema_arrow)
            )
            first_row = 0
            for record_batch in record_batches:
                table = _float_columns(pa.Table.from_batches([record_batch]), path)
                batch = _split_label(table, path, csv_weights, first_row)
                first_row += batch.num_rows
                yield batch
        except (pa.ArrowInvalid, OSError) as exc:
            raise ClientError(f"File {path} is not a readable Parquet file: {exc}") from None


def data_columns(schema: pa.Schema) -> list[str] | None:
    """The columns of a Parquet file that hold data, or None when all of them do.

    pandas (and Dask and Spark's pandas API, through it) store a DataFrame's index as extra
    columns named in the `pandas` schema metadata (`__index_level_0__`, Dask's
    `__null_dask_index__`, or the index's own name): row labels, never a label or a feature.
    Those reserved names are dropped even where the metadata was lost.
    """
    declared: set[str] = set()
    metadata = schema.pandas_metadata or {}
    for entry in metadata.get("index_columns", []):
        if isinstance(entry, str):  # a RangeIndex is a dict and stored as no column at all
            declared.add(entry)
    index = [name for name in schema.names if name in declared or _is_index_name(name)]
    if not index:
        return None
    return [name for name in schema.names if name not in index]


def _is_index_name(name: str) -> bool:
    return name == DASK_INDEX or re.fullmatch(r"__index_level_\d+__", name) is not None


def _float_columns(table: pa.Table, path: Path) -> pa.Table:
    columns = []
    for index, (name, column) in enumerate(zip(table.column_names, table.columns, strict=True)):
        try:
            columns.append(pc.cast(column, pa.float32()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ClientError(
                f"File {path}, column {index + 1} ({name!r}) has type {column.type}; "
                "Parquet training columns must be numeric."
            ) from None
    return pa.table(columns, names=[f"c{i}" for i in range(len(columns))])


# --- RecordIO-protobuf -----------------------------------------------------------------------


def read_recordio_protobuf(path: Path) -> Batch:
    """SageMaker's RecordIO-wrapped `Record` protobufs, dense or sparse (`container.recordio`)."""
    return next(_recordio_batches(path, None), None) or _empty_batch()


RECORDIO_BATCH_RECORDS = 65536
"""Records per batch when a RecordIO file is streamed (external memory)."""


def stream_recordio_protobuf(path: Path, _csv_weights: bool = False) -> Iterator[Batch]:
    """`read_recordio_protobuf`'s rows `RECORDIO_BATCH_RECORDS` records at a time."""
    return _recordio_batches(path, RECORDIO_BATCH_RECORDS)


def _recordio_batches(path: Path, batch_records: int | None) -> Iterator[Batch]:
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as handle:
        try:
            for rows in recordio.read_row_batches(handle, True, batch_records):
                if rows.num_rows:
                    assert rows.labels is not None
                    yield Batch(features=rows.as_csr(), label=rows.labels)
        except (ValueError, OSError, EOFError) as exc:
            raise ClientError(
                f"File {path} is not valid RecordIO-protobuf: {exc}. Records must be "
                "SageMaker `Record` messages with features['values'] and label['values']."
            ) from None
