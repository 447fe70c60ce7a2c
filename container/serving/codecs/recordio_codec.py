"""application/x-recordio-protobuf: SageMaker `Record` messages, one row each (what the SDK's
`RecordSerializer` and other SageMaker algorithms send); answers as one `Record` per row.

Rows are read by the RecordIO module training uses (`container.recordio`). Dense records become
float32 rows, sparse ones (`keys` and `shape`) a CSR matrix whose absent entries are missing
values; a record's label, if any, is ignored. An answer puts each output key in the record's
`label[key]` as a float32 tensor (`score` without a selection), as the built-in algorithm does.
"""

from __future__ import annotations

import io

import numpy as np
import scipy.sparse

from container import recordio
from container.errors import BadRequest
from container.serving.codecs.limits import Limits
from container.serving.predictions import Output

MEDIA_TYPE = recordio.MEDIA_TYPE
_HELP = (
    "Send SageMaker `Record` messages in RecordIO framing (the SDK's RecordSerializer), the "
    "features of each row in features['values'] as a dense or a sparse tensor."
)


def decode(body: bytes | bytearray, limits: Limits) -> np.ndarray | scipy.sparse.csr_matrix:
    """Dense rows as float32, sparse rows (or rows of different widths) as CSR."""
    try:
        rows = recordio.read_rows(io.BytesIO(body), with_labels=False)
    except recordio.RecordIOError as exc:
        raise BadRequest(f"The {MEDIA_TYPE} body is not readable: {exc}. {_HELP}") from None
    limits.check(rows.num_rows, rows.features.shape[1])
    return rows.features


def encode(output: Output, batch: bool) -> bytes:
    """One record per row, each key's value(s) in `label[key]`."""
    return recordio.write_labelled_rows(output.columns)
