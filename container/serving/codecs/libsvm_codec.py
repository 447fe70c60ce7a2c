"""text/libsvm: `[label] index:value ...` per line, read as XGBoost reads LIBSVM files.

Indices are column positions (XGBoost's own LIBSVM reader counts from 0, so a file written with
indices 1..8 trains a 9-feature model); a leading token without `:` (the label) and `qid:`
tokens are ignored; absent indices are missing values. The result is a sparse CSR matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from container.errors import BadRequest, PayloadTooLarge
from container.serving.codecs.limits import Limits

MEDIA_TYPE = "text/libsvm"
_HELP = (
    "text/libsvm rows look like `[label] index:value index:value ...` with integer indices "
    "in ASCII digits."
)


def decode(body: bytes | bytearray, limits: Limits) -> scipy.sparse.csr_matrix:
    """Parse LIBSVM rows into a CSR matrix as wide as the largest index + 1."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"The text/libsvm body is not valid UTF-8 (byte {exc.start + 1})."
        ) from None
    lines = text.strip().splitlines()
    limits.check(len(lines), 0)
    indptr = [0]
    indices: list[int] = []
    values: list[str] = []
    for row, line in enumerate(lines, start=1):
        for position, token in enumerate(line.split()):
            index, colon, value = token.partition(":")
            if not colon:
                if position == 0:
                    continue  # the label column
                raise BadRequest(
                    f"text/libsvm row {row}: token {token!r} is not index:value. {_HELP}"
                )
            if index == "qid":
                continue
            if not (index.isascii() and index.isdigit()):
                raise BadRequest(
                    f"text/libsvm row {row}: index {index[:40]!r} in {token[:60]!r} is not a "
                    f"non-negative integer. {_HELP}"
                )
            if len(index) > len(str(limits.max_columns)):
                raise PayloadTooLarge(
                    f"text/libsvm row {row}: index {index[:20]}... ({len(index)} digits) is "
                    f"beyond the {limits.max_columns} columns a row may hold "
                    "(XGB_SERVER_MAX_COLUMNS)."
                )
            indices.append(int(index))
            values.append(value)
        indptr.append(len(indices))
    try:
        data = np.array(values, dtype=np.float32)
    except ValueError:
        bad = next(v for v in values if not _is_number(v))
        at = values.index(bad)
        row = int(np.searchsorted(indptr, at, side="right"))
        raise BadRequest(f"text/libsvm row {row}: value {bad!r} is not a number. {_HELP}") from None
    columns = max(indices) + 1 if indices else 0
    limits.check(len(lines), columns)
    return scipy.sparse.csr_matrix(
        (data, np.array(indices, dtype=np.int64), np.array(indptr, dtype=np.int64)),
        shape=(len(lines), columns),
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
