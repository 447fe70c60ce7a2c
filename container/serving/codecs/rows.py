"""Turn decoded JSON values (lists of rows) into a float32 matrix, naming the first bad cell."""

from __future__ import annotations

import numbers

import numpy as np

from container.errors import BadRequest
from container.serving.codecs.limits import Limits

_HELP = "Features are numbers (null for a missing value)."


def _features_of(item: object, where: str) -> object:
    if isinstance(item, dict):
        if "features" not in item:
            raise BadRequest(
                f"{where} is an object without a 'features' key; send {{\"features\": [...]}} "
                "or a plain list of numbers."
            )
        return item["features"]
    return item


def rows_from_items(items: list, where: str) -> list:
    """Each item is a list of features or `{"features": [...]}`; a flat list is one row."""
    if items and not isinstance(items[0], (list, dict)):
        return [items]
    return [_features_of(item, f"{where} item {i + 1}") for i, item in enumerate(items)]


def to_matrix(rows: list, limits: Limits, media_type: str) -> np.ndarray:
    """A float32 (rows, features) matrix; 400 naming the row and column of the first bad cell."""
    width = len(rows[0]) if rows and isinstance(rows[0], list) else 0
    limits.check(len(rows), width)
    try:
        matrix = np.array(rows, dtype=np.float32)
    except (ValueError, TypeError, OverflowError):
        raise _first_problem(rows, width, media_type) from None
    if matrix.ndim != 2:
        raise _first_problem(rows, width, media_type)
    return matrix


def _first_problem(rows: list, width: int, media_type: str) -> BadRequest:
    for r, row in enumerate(rows, start=1):
        if not isinstance(row, list):
            return BadRequest(f"{media_type} row {r} is not a list of features. {_HELP}")
        if len(row) != width:
            return BadRequest(
                f"{media_type} row {r} has {len(row)} features but row 1 has {width}. "
                "Every row needs the same number of features."
            )
        for c, cell in enumerate(row, start=1):
            if cell is None:
                continue
            shown = repr(cell)
            shown = shown if len(shown) <= 40 else shown[:40] + "..."
            try:
                float(cell)
            except OverflowError:
                return BadRequest(f"{media_type} row {r}, column {c}: {shown} is too large.")
            except (TypeError, ValueError):
                return BadRequest(
                    f"{media_type} row {r}, column {c}: {shown} is not a number. {_HELP}"
                )
            if not isinstance(cell, (numbers.Real, str)):
                return BadRequest(
                    f"{media_type} row {r}, column {c}: {shown} is not a number. {_HELP}"
                )
    return BadRequest(f"{media_type} rows must be flat lists of numbers. {_HELP}")
