"""Run under the SageMaker SDK 2.x venv (.venv-sdk2): the SDK's own RecordIO code, both ways.

encode ROWS.npy OUT_DIR   writes OUT_DIR/dense.rec (RecordSerializer on the rows) and
                          OUT_DIR/sparse.rec (write_spmatrix_to_sparse_tensor on the rows
                          as CSR: NaN and 0 entries left out, so missing), and prints
                          the serializer's CONTENT_TYPE
decode ANSWER             prints, as JSON, what RecordDeserializer reads from the answer:
                          one {key: [values]} per record, from each record's label map
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import scipy.sparse
from sagemaker.amazon.common import (
    RecordDeserializer,
    RecordSerializer,
    write_spmatrix_to_sparse_tensor,
)


def encode(rows_file: Path, out_dir: Path) -> None:
    rows = np.load(rows_file)
    serializer = RecordSerializer()
    (out_dir / "dense.rec").write_bytes(serializer.serialize(rows).read())
    present = np.nan_to_num(rows, nan=0.0)
    sparse = scipy.sparse.csr_matrix(present)
    sink = io.BytesIO()
    write_spmatrix_to_sparse_tensor(sink, sparse)
    (out_dir / "sparse.rec").write_bytes(sink.getvalue())
    print(serializer.CONTENT_TYPE)


def decode(answer: Path) -> None:
    deserializer = RecordDeserializer()
    records = deserializer.deserialize(io.BytesIO(answer.read_bytes()), deserializer.ACCEPT[0])
    print(
        json.dumps(
            [
                {key: list(value.float32_tensor.values) for key, value in record.label.items()}
                for record in records
            ]
        )
    )


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "encode":
        encode(Path(args[0]), Path(args[1]))
    elif command == "decode":
        decode(Path(args[0]))
    else:
        raise SystemExit(f"unknown command {command!r}; use encode or decode")
