"""text/libsvm: the grammar training reads (`container/libsvm.py`, XGBoost's reading), a line
per row; the label, weight and qid are read and ignored.

Indices are column positions (XGBoost's own LIBSVM reader counts from 0, so a file written with
indices 1..8 trains a 9-feature model); absent indices and `index:` with no value are missing
values. The result is a sparse CSR matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from container.errors import BadRequest, PayloadTooLarge
from container.libsvm import HELP, GrammarError, is_number, parse_line
from container.serving.codecs.limits import Limits

MEDIA_TYPE = "text/libsvm"


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
    most_digits = len(str(limits.max_columns))
    # numpy converts the values in one call; it also reads `1_0` and non-ASCII digits, which
    # the grammar does not, so a body that holds either has each value checked as it is read.
    check_values = not text.isascii() or "_" in text
    indptr = [0]
    indices: list[int] = []
    values: list[str] = []
    for row, line in enumerate(lines, start=1):
        try:
            pairs = parse_line(line, check_values).pairs
        except GrammarError as exc:
            raise BadRequest(f"text/libsvm row {row}, {exc} {HELP}") from None
        for index, value in pairs:
            if len(index) > most_digits:
                raise PayloadTooLarge(
                    f"text/libsvm row {row}: index {index[:20]}... ({len(index)} digits) is "
                    f"beyond the {limits.max_columns} columns a row may hold "
                    "(XGB_SERVER_MAX_COLUMNS)."
                )
            indices.append(int(index))
            values.append(value or "nan")
        indptr.append(len(indices))
    columns = max(indices) + 1 if indices else 0
    limits.check(len(lines), columns)
    try:
        data = np.array(values, dtype=np.float32)
    except ValueError:
        at = next(i for i, value in enumerate(values) if not is_number(value))
        row = int(np.searchsorted(indptr, at, side="right"))
        raise BadRequest(
            f"text/libsvm row {row}: value {values[at][:40]!r} is not a number. {HELP}"
        ) from None
    return scipy.sparse.csr_matrix(
        (
            data,
            np.array(indices, dtype=np.int64),
            np.array(indptr, dtype=np.int64),
        ),
        shape=(len(lines), columns),
    )
