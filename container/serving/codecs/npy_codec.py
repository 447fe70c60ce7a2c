"""application/x-npy: a NumPy array file (what the SageMaker SDK's NumpySerializer sends).

Read with `allow_pickle=False` (object arrays are refused); the header's shape is checked
against the limits before the data is read. A 1-D array is one row.
"""

from __future__ import annotations

import io

import numpy as np

from container.errors import BadRequest
from container.serving.codecs.limits import Limits

MEDIA_TYPE = "application/x-npy"


def _header(stream: io.BytesIO) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(stream)
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, _, dtype = read_header(stream)
    if dtype.hasobject:
        raise ValueError("object arrays are not accepted (they would need pickle)")
    if dtype.kind not in "biuf":
        raise ValueError(f"dtype {dtype} is not numeric")
    return shape, dtype


def decode(body: bytes | bytearray, limits: Limits) -> np.ndarray:
    """Parse an .npy body into float32 rows."""
    stream = io.BytesIO(body)
    try:
        shape, dtype = _header(stream)
        if len(shape) not in (1, 2):
            raise ValueError(f"the array has {len(shape)} dimensions; send 1 (one row) or 2")
        rows, columns = (1, shape[0]) if len(shape) == 1 else shape
        limits.check(rows, columns)
        # numpy allocates the whole declared array before it reads: a header that lies about
        # the shape must not cost gigabytes.
        declared = rows * columns * dtype.itemsize
        present = len(body) - stream.tell()
        if present < declared:
            raise ValueError(
                f"the header declares shape {shape} of {dtype} ({declared} bytes) but the body "
                f"holds {present} bytes after it"
            )
        stream.seek(0)
        array = np.load(stream, allow_pickle=False)
    except BadRequest:
        raise
    except (ValueError, EOFError, OSError) as exc:
        raise BadRequest(
            f"The application/x-npy body is not a readable NumPy array: {exc}. "
            "Send the bytes of `numpy.save` for a 1-D or 2-D numeric array."
        ) from None
    return np.asarray(array.reshape(rows, columns), dtype=np.float32)
