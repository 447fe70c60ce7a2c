"""Float Arrow arrays as numpy, read from Arrow's buffers.

pyarrow's `to_numpy` and `fill_null` import pandas on first use (about a second and 40 MB in
every process), which neither serving nor training otherwise loads.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_NUMPY_TYPES = {pa.float32(): np.float32, pa.float64(): np.float64}


def float_values(array: pa.Array) -> np.ndarray:
    """A float32 or float64 array as numpy of the same type, nulls as NaN (a view of Arrow's
    buffer when there are none)."""
    dtype = _NUMPY_TYPES[array.type]
    if not len(array):
        return np.empty(0, dtype=dtype)
    validity, data = array.buffers()
    end = array.offset + len(array)
    values = np.frombuffer(data, dtype=dtype, count=end)[array.offset :]
    if not array.null_count:
        return values
    bits = np.frombuffer(validity, dtype=np.uint8)
    valid = np.unpackbits(bits, count=end, bitorder="little")[array.offset :].astype(bool)
    return np.where(valid, values, dtype(np.nan))
