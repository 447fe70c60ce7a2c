"""SageMaker's RecordIO-protobuf, read and written: one implementation for training channels,
serving requests and serving answers.

A stream is a run of records, each `magic, length` (two little-endian uint32), the payload, and
zero padding to a multiple of 4 bytes; each payload is a `Record` protobuf message (the
`record.proto` that the SageMaker SDK and the built-in algorithms share). Features are in
`features['values']`: a dense tensor holds every value of the row, a sparse one holds `keys`
(column indices), their `values` and the row's width in `shape`. Training reads the label from
`label['values']`; answers put each output key in `label[key]`, as the built-in algorithms do.

The framing is written here: sagemaker-training reads and writes it only in private functions
(`_read_recordio`), and it is a dozen lines. The message class is sagemaker-training's generated
`record_pb2.Record`.
"""

from __future__ import annotations

import io
import itertools
import math
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import scipy.sparse as sp

MEDIA_TYPE = "application/x-recordio-protobuf"
MAGIC = 0xCED7230A
MAGIC_BYTES = MAGIC.to_bytes(4, "little")
_HEADER = struct.Struct("<II")
_LENGTH_BITS = 29
"""The low 29 bits of the length word are the length; the top 3 flag a record split in parts."""
FEATURES_KEY = "values"
LABEL_KEY = "values"


class RecordIOError(ValueError):
    """The bytes are not RecordIO-protobuf as SageMaker writes it; the message says where."""


def read_payloads(stream: BinaryIO) -> Iterator[bytes]:
    """The payload of each record in `stream`, in order."""
    number = 0
    while header := stream.read(_HEADER.size):
        number += 1
        if len(header) < _HEADER.size:
            raise RecordIOError(f"record {number} is cut short inside its 8-byte header")
        magic, word = _HEADER.unpack(header)
        if magic != MAGIC:
            raise RecordIOError(
                f"record {number} does not start with the RecordIO magic number 0x{MAGIC:08X}"
            )
        flag, length = word >> _LENGTH_BITS, word & ((1 << _LENGTH_BITS) - 1)
        if flag:
            raise RecordIOError(
                f"record {number} is one part of a record split in parts (flag {flag}); "
                "only whole records are read"
            )
        payload = stream.read(length)
        if len(payload) < length:
            raise RecordIOError(
                f"record {number} is cut short: its header says {length} bytes, "
                f"{len(payload)} follow"
            )
        stream.read(-length % 4)
        yield payload


def write_payload(sink: BinaryIO, payload: bytes) -> None:
    """Append one record holding `payload` to `sink`."""
    sink.write(_HEADER.pack(MAGIC, len(payload)))
    sink.write(payload)
    sink.write(b"\0" * (-len(payload) % 4))


def _new_record() -> Any:
    """An empty `Record`; protobuf is imported on first use, not by every serving worker."""
    from sagemaker_training.record_pb2 import Record

    return Record()


def _tensor(value: Any) -> Any:
    """The tensor a `Value` holds (float32, float64 or int32), or None for none or bytes."""
    kind = value.WhichOneof("value")
    if kind is None or kind == "bytes":
        return None
    return getattr(value, kind)


@dataclass(frozen=True)
class RecordRows:
    """The rows of a RecordIO-protobuf stream, one per record.

    `features` is a float32 array when every record held a dense tensor of the same width, else
    CSR, whose absent entries (of the sparse records) are missing values. `labels` holds each
    record's `label['values']` when it was asked for.
    """

    features: np.ndarray | sp.csr_matrix
    labels: np.ndarray | None

    @property
    def num_rows(self) -> int:
        return int(self.features.shape[0])

    def as_csr(self) -> sp.csr_matrix:
        """The rows as CSR; a dense array's every entry is kept, zeros included."""
        if isinstance(self.features, sp.csr_matrix):
            return self.features
        rows, width = self.features.shape
        return sp.csr_matrix(
            (
                self.features.ravel(),
                np.tile(np.arange(width, dtype=np.int64), rows),
                np.arange(rows + 1, dtype=np.int64) * width,
            ),
            shape=(rows, width),
        )


def read_rows(stream: BinaryIO, with_labels: bool) -> RecordRows:
    """Decode every record of `stream`; with `with_labels`, each must hold one label value.

    Raises `RecordIOError` naming the record at fault.
    """
    return next(read_row_batches(stream, with_labels))


def read_row_batches(
    stream: BinaryIO, with_labels: bool, batch_records: int | None = None
) -> Iterator[RecordRows]:
    """`read_rows` a batch of at most `batch_records` records at a time (all at once: None)."""
    payloads = read_payloads(stream)
    first = 1
    while True:
        batch = itertools.islice(payloads, batch_records)
        rows = _rows(batch, with_labels, first)
        if rows.num_rows == 0 and first > 1:
            return
        yield rows
        if batch_records is None or rows.num_rows < batch_records:
            return
        first += rows.num_rows


def _rows(payloads: Iterator[bytes], with_labels: bool, first: int) -> RecordRows:
    """Decode `payloads`, numbered from `first` in messages."""
    from google.protobuf.message import DecodeError

    record = _new_record()
    labels: list[float] = []
    data: list[np.ndarray] = []
    indices: list[np.ndarray | None] = []
    widths: list[int] = []
    for number, payload in enumerate(payloads, first):
        try:
            record.ParseFromString(payload)
        except DecodeError as exc:
            raise RecordIOError(
                f"record {number} is not a SageMaker `Record` protobuf message ({exc})"
            ) from None
        if FEATURES_KEY not in record.features:
            raise RecordIOError(f"record {number} has no features['{FEATURES_KEY}'] tensor")
        tensor = _tensor(record.features[FEATURES_KEY])
        values = (
            np.fromiter(tensor.values, np.float32, len(tensor.values))
            if tensor is not None
            else np.zeros(0, np.float32)
        )
        keys, width = _row_layout(tensor, values, number)
        if with_labels:
            labels.append(_label(record, number))
        data.append(values)
        indices.append(keys)
        widths.append(width)
    label_array = np.asarray(labels, dtype=np.float32) if with_labels else None
    values = np.concatenate(data) if data else np.zeros(0, np.float32)
    width = max(widths, default=0)
    if all(keys is None for keys in indices) and min(widths, default=0) == width:
        return RecordRows(values.reshape(len(data), width), label_array)
    columns = [
        np.arange(v.size, dtype=np.int64) if k is None else k
        for v, k in zip(data, indices, strict=True)
    ]
    indptr = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum([v.size for v in data], out=indptr[1:])
    features = sp.csr_matrix((values, np.concatenate(columns), indptr), shape=(len(data), width))
    return RecordRows(features, label_array)


def _row_layout(tensor: Any, values: np.ndarray, number: int) -> tuple[np.ndarray | None, int]:
    """The column indices of a sparse row's `values` (None for a dense row) and its width."""
    if tensor is None or (not len(tensor.keys) and not len(tensor.shape)):
        return None, values.size
    declared = math.prod(int(s) for s in tensor.shape) if len(tensor.shape) else None
    if not len(tensor.keys) and declared == values.size:
        return None, values.size
    keys = np.asarray(tensor.keys, dtype=np.int64)
    if keys.size != values.size:
        raise RecordIOError(
            f"record {number} is sparse with {keys.size} keys but {values.size} values"
        )
    width = declared if declared is not None else int(keys.max()) + 1 if keys.size else 0
    if keys.size and int(keys.max()) >= width:
        raise RecordIOError(
            f"record {number} has key {int(keys.max())}, outside its shape [{width}]"
        )
    return keys, width


def _label(record: Any, number: int) -> float:
    tensor = _tensor(record.label[LABEL_KEY]) if LABEL_KEY in record.label else None
    if tensor is None or len(tensor.values) != 1:
        raise RecordIOError(f"record {number} needs exactly one label['{LABEL_KEY}'] value")
    return float(tensor.values[0])


def write_labelled_rows(columns: Iterable[tuple[str, np.ndarray]]) -> bytes:
    """One record per row holding each column's value(s) as `label[name]`, a float32 tensor:
    how the built-in algorithms answer in RecordIO-protobuf."""
    named = [(name, np.asarray(values, dtype=np.float32)) for name, values in columns]
    num_rows = len(named[0][1]) if named else 0
    rows = [(name, values.reshape(num_rows, -1).tolist()) for name, values in named]
    sink = io.BytesIO()
    record = _new_record()
    for index in range(num_rows):
        record.Clear()
        for name, values in rows:
            record.label[name].float32_tensor.values.extend(values[index])
        write_payload(sink, record.SerializeToString())
    return sink.getvalue()
