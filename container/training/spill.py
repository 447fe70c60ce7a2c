"""A channel's float32 features parked on disk between `QuantileDMatrix`'s passes over them.

XGBoost builds a `QuantileDMatrix` from an iterator in several passes over the data (shape,
quantile sketch, bin index, column index: four, three with a reference matrix). Holding the
features in memory for them costs their whole float32 size next to the matrix being built;
parsing the files again costs a parse per pass. Instead the one pass that reads the files
appends the features here: they go, column by column in chunks of at most `CHUNK_BYTES`, to
an unnamed temporary file, which each pass reads back a chunk at a time. Memory then holds
one chunk, and the page cache (not the process) holds the file.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
import xgboost as xgb

from container.arrow_values import float_values
from container.errors import ClientError

CHUNK_BYTES = 32 << 20
"""Float32 bytes per chunk handed to XGBoost: bigger chunks cost memory, not speed."""


def _unnamed_file(near: Path | None) -> BinaryIO:
    """An unnamed temporary file in `near` (on SageMaker, the ML storage volume that holds the
    input data and is sized for it), else in TMPDIR when `near` takes no files (read-only)."""
    if near is not None:
        try:
            return tempfile.TemporaryFile(prefix=".features-", suffix=".f32", dir=near)
        except OSError:
            pass
    return tempfile.TemporaryFile(prefix="features-", suffix=".f32")


class FeatureSpill:
    """Dense float32 features in an unnamed temporary file; missing values are NaN there."""

    def __init__(
        self, num_columns: int, chunk_bytes: int | None = None, near: Path | None = None
    ) -> None:
        self.num_columns = num_columns
        self.num_rows = 0
        self.chunk_rows: list[int] = []
        self._rows_per_chunk = max(1, (chunk_bytes or CHUNK_BYTES) // (4 * num_columns))
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        # Closed by `close()`; having no name, it also goes when the process ends.
        self._file = _unnamed_file(near)

    @property
    def shape(self) -> tuple[int, int]:
        return self.num_rows, self.num_columns

    def append(self, features: pa.Table) -> None:
        """Add rows (float32 columns, `num_columns` of them); written once a chunk is full."""
        self._pending.append(features)
        self._pending_rows += features.num_rows
        while self._pending_rows >= self._rows_per_chunk:
            table = pa.concat_tables(self._pending)
            self._write_chunk(table.slice(0, self._rows_per_chunk))
            rest = table.slice(self._rows_per_chunk)
            self._pending, self._pending_rows = [rest], rest.num_rows

    def finish(self) -> None:
        """Write what is pending and give Arrow's freed parse buffers back to the system."""
        if self._pending_rows:
            self._write_chunk(pa.concat_tables(self._pending))
        self._pending, self._pending_rows = [], 0
        with self._writing(0):
            self._file.flush()
        pa.default_memory_pool().release_unused()

    def _write_chunk(self, table: pa.Table) -> None:
        with self._writing(table.num_rows):
            for column in table.columns:
                self._file.write(float_values(column.combine_chunks()))
        self.chunk_rows.append(table.num_rows)
        self.num_rows += table.num_rows

    @contextlib.contextmanager
    def _writing(self, rows: int) -> Iterator[None]:
        """A full disk (or any write error) as a sentence saying what to change."""
        try:
            yield
        except OSError as exc:
            raise ClientError(
                f"Could not write the temporary feature file ({self.num_rows + rows} rows x "
                f"{self.num_columns} float32 features so far): {exc}. It needs as much free "
                "disk as the features take as float32, on the volume that holds the input "
                "data; give the job a larger volume (VolumeSizeInGB)."
            ) from None

    def chunks(self) -> Iterator[tuple[slice, pa.Table]]:
        """Each chunk's rows (as a slice of the whole) and its features, read from the file."""
        self._file.seek(0)
        start = 0
        names = [f"f{i}" for i in range(self.num_columns)]
        # One buffer for every chunk: XGBoost is done with a chunk when it asks for the next.
        buffer = np.empty(max(self.chunk_rows, default=0) * self.num_columns, dtype=np.float32)
        for rows in self.chunk_rows:
            values = buffer[: rows * self.num_columns]
            if self._file.readinto(memoryview(values).cast("B")) != values.nbytes:
                raise OSError("The temporary feature file ended early: was it truncated?")
            columns = [
                pa.Array.from_buffers(pa.float32(), rows, [None, pa.py_buffer(column)])
                for column in values.reshape(self.num_columns, rows)
            ]
            yield slice(start, start + rows), pa.table(columns, names=names)
            start += rows

    def close(self) -> None:
        """Delete the file (it has no name, so it also goes when the process ends)."""
        with contextlib.suppress(OSError):  # unwritten bytes of a file being deleted
            self._file.close()


class SparseSpill:
    """Sparse features (CSR pieces, as LIBSVM and RecordIO are read) in an unnamed temporary
    file, for external-memory training. The readers' pieces (a MB of text each) are joined into
    chunks of about `CHUNK_BYTES` (XGBoost makes a page of each batch, and walks every page
    at each tree level: a few big pages beat hundreds of small ones). A chunk is its row
    lengths (int64), column indices (int32) and values (float32). The width is the widest
    piece's, or more (`widen`)."""

    def __init__(self, near: Path | None = None, chunk_bytes: int | None = None) -> None:
        self.num_columns = 0
        self.num_rows = 0
        self.chunk_shapes: list[tuple[int, int]] = []
        """(rows, stored values) of each chunk, in order."""
        self._chunk_bytes = chunk_bytes or CHUNK_BYTES
        self._pending: list[sp.csr_matrix] = []
        self._pending_bytes = 0
        self._file = _unnamed_file(near)

    @property
    def shape(self) -> tuple[int, int]:
        return self.num_rows, self.num_columns

    def append(self, features: sp.csr_matrix) -> None:
        """Add a CSR piece; written once the pieces held make a chunk."""
        self._pending.append(features)
        self._pending_bytes += 8 * int(features.nnz) + 8 * features.shape[0]
        if self._pending_bytes >= self._chunk_bytes:
            self._write_pending()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        width = max(piece.shape[1] for piece in self._pending)
        features = sp.vstack(
            [
                sp.csr_matrix((p.data, p.indices, p.indptr), (p.shape[0], width))
                for p in self._pending
            ],
            format="csr",
        )
        self._pending, self._pending_bytes = [], 0
        rows, nnz = features.shape[0], int(features.nnz)
        with self._writing(rows):
            self._file.write(np.diff(features.indptr).astype(np.int64).tobytes())
            self._file.write(features.indices.astype(np.int32, copy=False).tobytes())
            self._file.write(features.data.astype(np.float32, copy=False).tobytes())
        self.chunk_shapes.append((rows, nnz))
        self.num_rows += rows
        self.num_columns = max(self.num_columns, features.shape[1])

    def widen(self, width: int) -> None:
        """Present every piece `width` columns wide (another host's or channel's width)."""
        self.num_columns = max(self.num_columns, width)

    def finish(self) -> None:
        self._write_pending()
        with self._writing(0):
            self._file.flush()
        pa.default_memory_pool().release_unused()

    @contextlib.contextmanager
    def _writing(self, rows: int) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise ClientError(
                f"Could not write the temporary feature file ({self.num_rows + rows} sparse "
                f"rows so far): {exc}. It needs about 8 bytes a stored value, on the volume "
                "that holds the input data; give the job a larger volume (VolumeSizeInGB)."
            ) from None

    def chunks(self) -> Iterator[tuple[slice, sp.csr_matrix]]:
        """Each piece's rows (as a slice of the whole) and its CSR features, from the file."""
        self._file.seek(0)
        start = 0
        for rows, nnz in self.chunk_shapes:
            lengths = self._read(np.int64, rows)
            indptr = np.zeros(rows + 1, dtype=np.int64)
            np.cumsum(lengths, out=indptr[1:])
            indices = self._read(np.int32, nnz)
            data = self._read(np.float32, nnz)
            matrix = sp.csr_matrix((data, indices, indptr), shape=(rows, self.num_columns))
            yield slice(start, start + rows), matrix
            start += rows

    def _read(self, dtype: type[np.generic], count: int) -> np.ndarray:
        values = np.empty(count, dtype=dtype)
        if self._file.readinto(memoryview(values).cast("B")) != values.nbytes:
            raise OSError("The temporary feature file ended early: was it truncated?")
        return values

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()


class SpillIterator(xgb.DataIter):
    """Hands a spill to XGBoost a chunk at a time, each with its rows' labels and weights.

    When `stopped()` turns true the pass ends early, as if the data had ended: XGBoost then
    returns (with an error, the passes no longer agreeing) rather than run the whole build.
    Raising instead would not do: XGBoost's ctypes callback swallows what `next` raises.
    With `cache_prefix` (external memory), XGBoost writes its binned pages to files there."""

    def __init__(
        self,
        spill: FeatureSpill | SparseSpill,
        label: np.ndarray,
        weight: np.ndarray | None,
        stopped: Callable[[], bool] | None = None,
        qid: np.ndarray | None = None,
        cache_prefix: str | None = None,
        window: slice | None = None,
    ) -> None:
        super().__init__(cache_prefix=cache_prefix, release_data=True, on_host=False)
        self._spill = spill
        self._label = label
        self._weight = weight
        self._qid = qid
        self._stopped = stopped
        self._window = window
        """Only these rows of the spill (this host's part); `label` etc. hold just them."""
        self._chunks: Iterator[tuple[slice, pa.Table | sp.csr_matrix]] | None = None

    def reset(self) -> None:
        self._chunks = None

    def next(self, input_data: Callable[..., None]) -> bool:
        if self._stopped is not None and self._stopped():
            return False
        if self._chunks is None:
            self._chunks = self._spill.chunks()
            if self._window is not None:
                self._chunks = _within(self._chunks, self._window)
        chunk = next(self._chunks, None)
        if chunk is None:
            return False
        rows, features = chunk
        weight = None if self._weight is None else self._weight[rows]
        qid = None if self._qid is None else self._qid[rows]
        input_data(data=features, label=self._label[rows], weight=weight, qid=qid)
        return True


def _within(
    chunks: Iterator[tuple[slice, pa.Table | sp.csr_matrix]], window: slice
) -> Iterator[tuple[slice, pa.Table | sp.csr_matrix]]:
    """The chunks' rows inside `window`, numbered from its start."""
    for rows, features in chunks:
        low, high = max(rows.start, window.start), min(rows.stop, window.stop)
        if low >= high:
            continue
        part = slice(low - rows.start, high - rows.start)
        if isinstance(features, pa.Table):
            features = features.slice(part.start, part.stop - part.start)
        else:
            features = features[part]
        yield slice(low - window.start, high - window.start), features
