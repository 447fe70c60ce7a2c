"""Vectorised writing of predictions as CSV, JSON and JSON Lines text.

Numbers become text in their shortest round-trip form. Large answers go through pyarrow's casts
and string kernels (C++ loops, assembled column by column: no Python loop per value), in blocks
of `BLOCK_ROWS` rows joined at the end, so the intermediate strings of only one block are alive
at a time; answers of up to `SMALL_ROWS` rows use numpy's cast and plain string joins, whose
fixed cost is a few microseconds instead of a hundred.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from container.serving.predictions import Output

SMALL_ROWS = 64
BLOCK_ROWS = 16_384
"""Rows written per block. Written whole, a 100,000-row, 10-class answer (12 MB of text) held
every column's strings, the joined rows and two copies of the text at once: a fresh worker's
peak while writing it was 60-72 MB above the request's start, 44 MB in blocks of this size.
Measured at 8k-32k rows a block, or whole, the time was the same (94-160 ms, noise)."""


def _small_numbers(values: np.ndarray, as_json: bool) -> list[str]:
    text = values.astype(str)
    if as_json and values.dtype.kind == "f" and not np.isfinite(values).all():
        text[~np.isfinite(values)] = "null"
    return text.tolist()


def _small_cells(values: np.ndarray, as_json: bool, as_list: bool) -> list[str]:
    if values.ndim == 1:
        return _small_numbers(values, as_json)
    rows = _small_numbers(values, as_json)
    if not as_list:
        return [",".join(row) for row in rows]
    separator = "," if as_json else ", "
    return ["[" + separator.join(row) + "]" for row in rows]


def _small_csv(output: Output, batch: bool) -> bytes:
    cells = []
    for _, values in output.columns:
        cell = _small_cells(values, as_json=False, as_list=output.selected)
        if output.selected and values.ndim == 2:
            cell = [f'"{c}"' for c in cell]
        cells.append(cell)
    lines = [",".join(parts) for parts in zip(*cells, strict=True)]
    return ("\n".join(lines) + ("\n" if batch else "")).encode()


def _small_objects(output: Output) -> list[str]:
    keys = [f'"{key}":' for key, _ in output.columns]
    cells = [_small_cells(values, as_json=True, as_list=True) for _, values in output.columns]
    return [
        "{" + ",".join(k + v for k, v in zip(keys, parts, strict=True)) + "}"
        for parts in zip(*cells, strict=True)
    ]


def _from_numpy(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values)
    arrow_type = pa.from_numpy_dtype(values.dtype)
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(values)])


def _text(value: str) -> pa.StringScalar:
    """An Arrow string scalar. Built from buffers: `pa.scalar` and `pa.array` import pandas on
    first use (about a second in every worker), which serving otherwise never loads."""
    data = value.encode()
    offsets = np.array([0, len(data)], dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])[
        0
    ]


def _numbers(values: np.ndarray, as_json: bool) -> pa.Array:
    array = _from_numpy(values)
    text = pc.cast(array, pa.string())
    if as_json and values.dtype.kind == "f" and not np.isfinite(values).all():
        text = pc.if_else(pc.is_finite(array), text, _text("null"))
    return text


def _join_columns(parts: list[pa.Array], separator: str) -> pa.Array:
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, _text(separator))


def _wrap(text: pa.Array, prefix: str, suffix: str) -> pa.Array:
    return pc.binary_join_element_wise(_text(prefix), text, _text(suffix), _text(""))


def _cells(values: np.ndarray, as_json: bool, as_list: bool) -> pa.Array:
    """One string per row: a number, or a row of numbers (`[a, b]` when `as_list`)."""
    if values.ndim == 1:
        return _numbers(values, as_json)
    parts = [_numbers(values[:, j], as_json) for j in range(values.shape[1])]
    if not as_list:
        return _join_columns(parts, ",")
    return _wrap(_join_columns(parts, ", " if not as_json else ","), "[", "]")


def _blocks(output: Output) -> list[Output]:
    """`output` cut into consecutive blocks of at most `BLOCK_ROWS` rows."""
    return [
        Output(
            tuple((key, values[start : start + BLOCK_ROWS]) for key, values in output.columns),
            output.selected,
        )
        for start in range(0, output.num_rows, BLOCK_ROWS)
    ]


def _joined(rows: pa.Array, separator: str) -> bytes:
    offsets = _from_numpy(np.array([0, len(rows)], dtype=np.int32))
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, rows), _text(separator))[0]
    return joined.as_buffer().to_pybytes()


def _document(
    output: Output,
    rows: Callable[[Output], pa.Array],
    separator: str,
    prefix: str = "",
    suffix: str = "",
) -> bytes:
    """The `rows` of every block of `output`, joined by `separator`, between prefix and suffix."""
    pieces = [_joined(rows(block), separator) for block in _blocks(output)]
    return b"".join([prefix.encode(), separator.encode().join(pieces), suffix.encode()])


def _csv_rows(output: Output) -> pa.Array:
    cells = []
    for _, values in output.columns:
        cell = _cells(values, as_json=False, as_list=output.selected)
        if output.selected and values.ndim == 2:
            cell = _wrap(cell, '"', '"')
        cells.append(cell)
    return _join_columns(cells, ",")


def csv_lines(output: Output, batch: bool) -> bytes:
    """One line per row; a selected list-valued key is one quoted cell such as `"[0.1, 0.9]"`."""
    if output.num_rows <= SMALL_ROWS:
        return _small_csv(output, batch)
    return _document(output, _csv_rows, "\n", suffix="\n" if batch else "")


def _json_objects(output: Output) -> pa.Array:
    parts = []
    for index, (key, values) in enumerate(output.columns):
        cell = _cells(values, as_json=True, as_list=True)
        opener = ("{" if index == 0 else ",") + f'"{key}":'
        parts.append(_wrap(cell, opener, ""))
    return _wrap(_join_columns(parts, ""), "", "}")


def json_document(output: Output) -> bytes:
    """`{"predictions": [{"score": ...}, ...]}`, as the built-in algorithm answers."""
    if output.num_rows <= SMALL_ROWS:
        return ('{"predictions":[' + ",".join(_small_objects(output)) + "]}").encode()
    return _document(output, _json_objects, ",", prefix='{"predictions":[', suffix="]}")


def jsonlines_document(output: Output) -> bytes:
    """One JSON object per row, every line ended by a newline (JSON Lines), in every mode."""
    if output.num_rows <= SMALL_ROWS:
        return ("\n".join(_small_objects(output)) + "\n").encode()
    return _document(output, _json_objects, "\n", suffix="\n")
