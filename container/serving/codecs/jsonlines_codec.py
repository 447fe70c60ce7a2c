"""application/jsonlines: one `[...]` or `{"features": [...]}` per line in; one object per line
out (`{"score": ...}` or the selected keys), every line ended by a newline."""

from __future__ import annotations

import numpy as np

from container.errors import BadRequest
from container.serving.codecs import text_format
from container.serving.codecs.json_codec import parse_json
from container.serving.codecs.limits import Limits
from container.serving.codecs.rows import rows_from_items, to_matrix
from container.serving.predictions import Output

MEDIA_TYPE = "application/jsonlines"


def decode(body: bytes | bytearray, limits: Limits) -> np.ndarray:
    """Parse JSON Lines into float32 rows, one per line (trailing blank lines are ignored)."""
    lines = body.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    limits.check(len(lines), 0)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise BadRequest(
                f"application/jsonlines line {number} is empty; every line must hold one row."
            )
    try:
        items = parse_json(b"[" + b",".join(lines) + b"]", "body")
    except BadRequest:
        for number, line in enumerate(lines, start=1):
            parse_json(line, f"application/jsonlines line {number}")
        raise
    for number, item in enumerate(items, start=1):
        if not isinstance(item, (list, dict)):
            raise BadRequest(
                f"application/jsonlines line {number} is not a list of features or "
                '{"features": [...]}.'
            )
        if _holds_rows(item):
            raise BadRequest(
                f"application/jsonlines line {number} holds more than one row; each line holds "
                'one row ([...] or {"features": [...]}) and gets one line of answer, so put '
                "each row on its own line."
            )
    return to_matrix(rows_from_items(items, "application/jsonlines line"), limits, MEDIA_TYPE)


def _holds_rows(item: list | dict) -> bool:
    """A line that is a list of rows, or an object of `instances`: several rows on one line."""
    if isinstance(item, dict):
        return "instances" in item and "features" not in item
    return bool(item) and isinstance(item[0], (list, dict))


def encode(output: Output, batch: bool) -> bytes:
    """One JSON object per row, each line ended by a newline, endpoint and batch alike."""
    return text_format.jsonlines_document(output)
