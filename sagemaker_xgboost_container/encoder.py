"""Request bodies as `xgb.DMatrix`, for an inference script's `input_fn`, decoded by the same
codecs as the built-in serving (`text/csv`, `text/libsvm`, JSON, JSON Lines, NPY)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xgboost as xgb
from werkzeug.http import parse_options_header

from container.serving.codecs import DECODERS, Limits, decode_rows
from container.settings import Settings


def _limits() -> Limits:
    serving = Settings.from_environ().serving
    return Limits(max_rows=serving.max_rows, max_columns=serving.max_columns)


def _to_bytes(data: str | bytes | bytearray) -> bytes | bytearray:
    return data.encode("utf-8") if isinstance(data, str) else data


def decode(obj: str | bytes | bytearray, content_type: str) -> xgb.DMatrix:
    """The rows of a request body of `content_type` as a `DMatrix` (features only)."""
    media_type = parse_options_header(content_type)[0].lower()
    if media_type not in DECODERS:
        raise ValueError(
            f"Content type {content_type!r} is not supported; use one of {', '.join(DECODERS)}."
        )
    return xgb.DMatrix(decode_rows(media_type, _to_bytes(obj), _limits()))


def csv_to_dmatrix(input: str | bytes, dtype: Any = None) -> xgb.DMatrix:
    """CSV rows (features only, empty fields missing) as a `DMatrix`; `dtype` is accepted for
    the built-in's signature (values are read as float32, as XGBoost keeps them)."""
    matrix = decode(input, "text/csv")
    if dtype is not None and np.dtype(dtype).kind not in "fiu":
        raise ValueError(f"csv_to_dmatrix: dtype {dtype!r} is not numeric.")
    return matrix


def libsvm_to_dmatrix(string_like: str | bytes) -> xgb.DMatrix:
    """LIBSVM rows (`[label] index:value ...`, any label ignored) as a `DMatrix`."""
    return decode(string_like, "text/libsvm")
