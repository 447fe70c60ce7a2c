"""application/json: `[[...], ...]`, `{"instances": [[...], ...]}` or
`{"instances": [{"features": [...]}, ...]}` in; `{"predictions": [{...}, ...]}` out."""

from __future__ import annotations

import json

import numpy as np

from container.errors import BadRequest
from container.serving.codecs import text_format
from container.serving.codecs.limits import Limits
from container.serving.codecs.rows import rows_from_items, to_matrix
from container.serving.predictions import Output

MEDIA_TYPE = "application/json"
_SHAPES = (
    'send [[...], ...], {"instances": [[...], ...]} or {"instances": [{"features": [...]}, ...]}'
)


def parse_json(text: bytes, what: str) -> object:
    """`json.loads` with a 400 that names the position of a syntax error."""
    try:
        return json.loads(text)
    except RecursionError:
        raise BadRequest(f"{what} is nested too deeply; {_SHAPES}.") from None
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{what} is not valid UTF-8 (byte {exc.start + 1}).") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None
    except ValueError:  # Python refuses to convert an integer of more than 4,300 digits
        raise BadRequest(
            f"{what} holds an integer with thousands of digits; features are float32 numbers "
            f"(at most about 3.4e38)."
        ) from None


def decode(body: bytes | bytearray, limits: Limits) -> np.ndarray:
    """Parse a JSON body into float32 rows."""
    document = parse_json(body, "The application/json body")
    if isinstance(document, dict):
        if "instances" in document:
            items = document["instances"]
        elif "features" in document:
            items = [document]
        else:
            raise BadRequest(
                f"The application/json object has no 'instances' key (keys: "
                f"{', '.join(map(str, list(document)[:5]))}); {_SHAPES}."
            )
    else:
        items = document
    if not isinstance(items, list):
        raise BadRequest(f"The application/json body holds no list of rows; {_SHAPES}.")
    if not items:
        raise BadRequest("The request holds no rows; send at least one row of features.")
    return to_matrix(rows_from_items(items, "application/json"), limits, MEDIA_TYPE)


def encode(output: Output, batch: bool) -> bytes:
    """`{"predictions": [{"score": ...}, ...]}` (or the selected keys per row)."""
    return text_format.json_document(output)
