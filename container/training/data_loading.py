"""Training channels into XGBoost matrices: find the files, pick the reader, check the data.

A channel is every non-hidden file under `input/data/<channel>/`, nested folders included.
Its rows become one `Dataset`, which `to_dmatrix` hands to XGBoost without another copy
(a `QuantileDMatrix` for the `hist` tree method, which is also the default). With `spill`,
dense channels (CSV, Parquet) are read as a stream whose features go to a `FeatureSpill` on
disk, so that memory never holds them whole; labels and weights stay in memory. With
`external`, every channel is spilled (sparse ones too, as CSR pieces) and becomes an
`ExtMemQuantileDMatrix` whose pages live on disk (`container.training.external_memory`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
import xgboost as xgb
from werkzeug.http import parse_options_header

from container import recordio
from container.errors import ClientError
from container.training import readers
from container.training.hyperparameters import Hyperparameters
from container.training.spill import FeatureSpill, SparseSpill, SpillIterator
from container.training.termination import MATRIX_BUILD, PARSING, SPILLING, StopRequest

logger = logging.getLogger(__name__)

CSV = "text/csv"
LIBSVM = "text/libsvm"
PARQUET = "application/x-parquet"
RECORDIO_PROTOBUF = recordio.MEDIA_TYPE

READERS: dict[str, Callable[[Path, bool], readers.Batch]] = {
    CSV: readers.read_csv,
    LIBSVM: lambda path, _weights: readers.read_libsvm(path),
    PARQUET: readers.read_parquet,
    RECORDIO_PROTOBUF: lambda path, _weights: readers.read_recordio_protobuf(path),
}
"""Content type → reader. Adding a type is one reader and one line here."""
STREAMS: dict[str, Callable[[Path, bool], Iterator[readers.Batch]]] = {
    CSV: readers.stream_csv,
    PARQUET: readers.stream_parquet,
}
"""Dense content types → their streaming reader, for channels spilled to disk."""
SPARSE_STREAMS: dict[str, Callable[[Path, bool], Iterator[readers.Batch]]] = {
    LIBSVM: readers.stream_libsvm,
    RECORDIO_PROTOBUF: readers.stream_recordio_protobuf,
}
"""Sparse content types → their streaming reader, for external-memory training."""

ALIASES = {
    "csv": CSV,
    "libsvm": LIBSVM,
    "text/x-libsvm": LIBSVM,
    "parquet": PARQUET,
    "recordio-protobuf": RECORDIO_PROTOBUF,
    "application/x-recordio": RECORDIO_PROTOBUF,
}
EXTENSIONS = {
    ".csv": CSV,
    ".libsvm": LIBSVM,
    ".svm": LIBSVM,
    ".parquet": PARQUET,
    ".pq": PARQUET,
    ".pb": RECORDIO_PROTOBUF,
    ".pbr": RECORDIO_PROTOBUF,
    ".recordio": RECORDIO_PROTOBUF,
}
PARQUET_MAGIC = b"PAR1"


@dataclass
class Dataset(readers.LabelledRows):
    """Every row of one channel, ready for XGBoost."""

    channel: str
    content_type: str
    features: pa.Table | sp.csr_matrix | FeatureSpill | SparseSpill
    label: np.ndarray
    weight: np.ndarray | None
    qid: np.ndarray | None
    files: int
    bytes_read: int
    seconds: float
    spill_rows: slice | None = None
    """The rows of a spilled channel this host keeps, when hosts split rows (labels etc. hold
    only those already)."""

    @property
    def is_sparse(self) -> bool:
        return isinstance(self.features, sp.csr_matrix)

    @property
    def is_spilled(self) -> bool:
        return isinstance(self.features, (FeatureSpill, SparseSpill))


def supported_content_types() -> str:
    return ", ".join(READERS)


def normalize_content_type(raw: str, channel: str) -> str:
    """`text/csv; label_size=1` → `text/csv`; unknown types fail with the supported list."""
    mime, params = parse_options_header(raw)
    mime = ALIASES.get(mime.lower(), mime.lower())
    if mime not in READERS:
        raise ClientError(
            f"Channel '{channel}' has ContentType {raw!r}, which is not supported; "
            f"use one of {supported_content_types()}."
        )
    label_size = params.get("label_size")
    if label_size is not None and label_size.strip() != "1":
        raise ClientError(
            f"Channel '{channel}' has ContentType {raw!r}: only label_size=1 is supported."
        )
    return mime


SPARK_MARKERS = ("_SUCCESS", "_metadata", "_common_metadata")
SPARK_MARKER_PREFIXES = ("_committed_", "_started_")
"""Files Spark and Hadoop write beside their part files: job markers, Parquet summary files
(footers of the part files, no rows of their own) and Databricks' commit logs."""


def channel_files(directory: Path) -> list[Path]:
    """Every non-empty data file under `directory`, nested folders included, sorted.

    Hidden files and folders are skipped, and so are the marker and checksum files of a Spark
    output folder (`_SUCCESS`, `*.crc`, `_committed_*`, ...): such a folder trains as written.
    """
    if not directory.is_dir():
        return []
    files = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts) or _is_spark_marker(path.name):
            continue
        if path.is_file() and path.stat().st_size > 0:
            files.append(path)
    return files


def _is_spark_marker(name: str) -> bool:
    return (
        name in SPARK_MARKERS
        or name.startswith(SPARK_MARKER_PREFIXES)
        or name.lower().endswith(".crc")
    )


def detect_content_type(path: Path) -> str:
    """Guess a file's format from its extension, else from its first bytes."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in EXTENSIONS:
        return EXTENSIONS[suffixes[-1]]
    head = readers.read_head(path)
    if head.startswith(PARQUET_MAGIC):
        return PARQUET
    if head.startswith(recordio.MAGIC_BYTES):
        return RECORDIO_PROTOBUF
    first_line = next((line for line in head.decode("utf-8", "replace").splitlines() if line), "")
    tokens = first_line.split()
    if len(tokens) > 1 and all(":" in token for token in tokens[1:]):
        return LIBSVM
    return CSV


def load_channel(
    channel: str,
    directory: Path,
    channel_config: Mapping[str, Any],
    csv_weights: bool,
    files: Sequence[Path] | None = None,
    spill: bool = False,
    stop: StopRequest | None = None,
    external: bool = False,
) -> Dataset:
    """Read every file of a channel (or just `files`, this host's share) into one `Dataset`.

    With `spill`, a CSV or Parquet channel's features go to a `FeatureSpill` (only
    `to_dmatrix`'s `QuantileDMatrix` can use it); other formats are read into memory.
    With `external`, sparse formats are streamed to a `SparseSpill` as well.
    `stop`, when given, is told the phase (spilling or parsing): SIGTERM then stops the read.
    """
    started = time.perf_counter()
    mode = str(channel_config.get("TrainingInputMode", "File"))
    if mode.lower() == "pipe":
        raise ClientError(
            f"Channel '{channel}' uses Pipe input mode, which this image does not support; "
            "use File or FastFile mode."
        )
    files = channel_files(directory) if files is None else list(files)
    if not files:
        raise ClientError(
            f"Channel '{channel}' is empty: no data files under {directory} "
            "(hidden and empty files are ignored)."
        )
    content_type = channel_content_type(channel, files, channel_config)
    stream = STREAMS.get(content_type) if spill or external else None
    if external and stream is None:
        stream = SPARSE_STREAMS[content_type]
    if stop is not None:
        stop.enter(SPILLING if stream else PARSING, f"channel '{channel}'")
    if stream is not None:
        dataset = _spill(channel, content_type, stream, files, csv_weights, directory.parent)
    else:
        reader = READERS[content_type]
        batches = [(path, reader(path, csv_weights)) for path in files]
        batches = [(path, batch) for path, batch in batches if batch.num_rows]
        dataset = _combine(channel, content_type, batches) if batches else None
    if dataset is None:
        raise ClientError(f"Channel '{channel}' has files under {directory} but no rows.")
    dataset.files = len(files)
    dataset.bytes_read = sum(path.stat().st_size for path in files)
    dataset.seconds = time.perf_counter() - started
    logger.info(
        "Channel '%s': %d rows x %d features from %d %s file(s), %.1f MB in %.2f s (%.1f MB/s)%s.",
        channel,
        dataset.num_rows,
        dataset.num_columns,
        dataset.files,
        content_type,
        dataset.bytes_read / 1e6,
        dataset.seconds,
        dataset.bytes_read / 1e6 / max(dataset.seconds, 1e-9),
        "; features spilled to a temporary file" if dataset.is_spilled else "",
    )
    return dataset


def channel_content_type(channel: str, files: Sequence[Path], config: Mapping[str, Any]) -> str:
    """The channel's `ContentType`, normalised, else the type detected from its first file."""
    raw_type = config.get("ContentType")
    if raw_type:
        return normalize_content_type(str(raw_type), channel)
    content_type = detect_content_type(files[0])
    logger.info(
        "Channel '%s' has no ContentType: detected %s from %s.",
        channel,
        content_type,
        files[0].name,
    )
    return content_type


def _combine(channel: str, content_type: str, batches: list[tuple[Path, readers.Batch]]) -> Dataset:
    first_path, first = batches[0]
    with_weight = [batch.weight is not None for _, batch in batches]
    with_qid = [batch.qid is not None for _, batch in batches]
    if any(with_weight) and not all(with_weight):
        raise ClientError(f"Channel '{channel}': some files have weights and others do not.")
    if any(with_qid) and not all(with_qid):
        raise ClientError(f"Channel '{channel}': some files have qid and others do not.")
    if isinstance(first.features, pa.Table):
        for path, batch in batches[1:]:
            _check_width(channel, path, batch.num_columns, first_path, first.num_columns)
        tables = [batch.features for _, batch in batches]
        features: pa.Table | sp.csr_matrix = pa.concat_tables(tables).combine_chunks()
    else:
        width = max(batch.num_columns for _, batch in batches)
        mats = [_with_width(batch.features, width) for _, batch in batches]
        features = mats[0] if len(mats) == 1 else sp.vstack(mats, format="csr")
    return Dataset(
        channel=channel,
        content_type=content_type,
        features=features,
        label=np.concatenate([batch.label for _, batch in batches]),
        weight=np.concatenate([b.weight for _, b in batches]) if all(with_weight) else None,
        qid=np.concatenate([b.qid for _, b in batches]) if all(with_qid) else None,
        files=0,
        bytes_read=0,
        seconds=0.0,
    )


def _spill(
    channel: str,
    content_type: str,
    stream: Callable[[Path, bool], Iterator[readers.Batch]],
    files: Sequence[Path],
    csv_weights: bool,
    near: Path,
) -> Dataset | None:
    """Stream every file: check it, keep labels and weights, spill the features to disk (in
    `near`, the folder holding the channels, when it takes files). Dense batches go to a
    `FeatureSpill`, sparse (CSR) ones to a `SparseSpill`."""
    spill: FeatureSpill | SparseSpill | None = None
    first_path = files[0]
    labels: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    qids: list[np.ndarray] = []
    try:
        for path in files:
            for batch in stream(path, csv_weights):
                if not batch.num_rows:
                    continue
                sparse = isinstance(batch.features, sp.csr_matrix)
                if spill is None:
                    width = batch.num_columns
                    spill = SparseSpill(near) if sparse else FeatureSpill(width, near=near)
                    first_path = path
                if not sparse:
                    _check_width(channel, path, batch.num_columns, first_path, spill.num_columns)
                spill.append(batch.features)
                labels.append(batch.label)
                if batch.weight is not None:
                    weights.append(batch.weight)
                if batch.qid is not None:
                    qids.append(batch.qid)
        if spill is None:
            return None
        _check_parts(channel, len(labels), weights, qids)
        spill.finish()
    except BaseException:
        if spill is not None:
            spill.close()
        raise
    return Dataset(
        channel=channel,
        content_type=content_type,
        features=spill,
        label=np.concatenate(labels),
        weight=np.concatenate(weights) if weights else None,
        qid=np.concatenate(qids) if qids else None,
        files=0,
        bytes_read=0,
        seconds=0.0,
    )


def _check_parts(channel: str, batches: int, weights: list, qids: list) -> None:
    """Weights and qid must be on every row or none (LIBSVM's are per line)."""
    if weights and len(weights) != batches:
        raise ClientError(f"Channel '{channel}': some rows have weights and others do not.")
    if qids and len(qids) != batches:
        raise ClientError(f"Channel '{channel}': some files have qid and others do not.")


def _check_width(channel: str, path: Path, width: int, first_path: Path, first_width: int) -> None:
    if width != first_width:
        raise ClientError(
            f"Channel '{channel}': {path} has {width} feature columns but "
            f"{first_path} has {first_width}; every file needs the same columns."
        )


def _with_width(matrix: sp.csr_matrix, width: int) -> sp.csr_matrix:
    if matrix.shape[1] == width:
        return matrix
    return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), (matrix.shape[0], width))


def check_labels(dataset: Dataset, hyperparameters: Hyperparameters) -> None:
    """Labels must suit the objective: classes 0..num_class-1, or 0/1 for binary."""
    objective = hyperparameters.objective
    label = dataset.label
    if objective.startswith("multi:"):
        num_class = hyperparameters.num_class or 0
        bad = np.flatnonzero((label < 0) | (label >= num_class) | (label != np.floor(label)))
        if bad.size:
            raise ClientError(
                f"Channel '{dataset.channel}', row {bad[0] + 1}: label {label[bad[0]]:g} is not "
                f"a class for {objective} with num_class={num_class}; labels must be whole "
                f"numbers in [0, {num_class})."
            )
    elif objective in ("binary:logistic", "binary:logitraw", "binary:hinge"):
        bad = np.flatnonzero((label < 0) | (label > 1))
        if bad.size:
            raise ClientError(
                f"Channel '{dataset.channel}', row {bad[0] + 1}: label {label[bad[0]]:g} is "
                f"outside [0, 1], which {objective} requires."
            )


def match_width(validation: Dataset, train: Dataset) -> None:
    """Validation needs train's features: same width when dense, at most it when sparse."""
    if validation.num_columns == train.num_columns:
        return
    if isinstance(validation.features, SparseSpill) and isinstance(train.features, SparseSpill):
        validation.features.widen(train.num_columns)
        train.features.widen(validation.num_columns)  # the sketch sees every column
        return
    if validation.is_sparse and train.is_sparse and validation.num_columns < train.num_columns:
        validation.features = _with_width(validation.features, train.num_columns)
        return
    raise ClientError(
        f"Channel 'validation' has {validation.num_columns} feature columns but 'train' has "
        f"{train.num_columns}; both channels need the same features in the same order."
    )


def to_dmatrix(
    dataset: Dataset,
    hyperparameters: Hyperparameters,
    reference: xgb.DMatrix | None = None,
    sliceable: bool = False,
    stop: StopRequest | None = None,
    cache: Path | None = None,
) -> xgb.DMatrix:
    """Hand the rows to XGBoost: a `QuantileDMatrix` for hist (binned, no float copy).

    With `cache` (a folder), a spilled dataset becomes an `ExtMemQuantileDMatrix` whose binned
    pages XGBoost keeps in files there rather than in memory (external memory).

    A spilled dataset is read back from disk once per pass of XGBoost's, then deleted. With
    `sliceable`, always a plain `DMatrix`, which `DMatrix.slice` can cut into folds. With
    `stop`, SIGTERM ends the spill's pass early (XGBoost then fails the build, which is read
    as the stop) or, for data in memory, once XGBoost returns: `TrainingStopped` either way.
    """
    if stop is not None:
        stop.enter(MATRIX_BUILD, f"channel '{dataset.channel}'")
    stopped = (lambda: stop.requested) if stop is not None else None
    meta: dict[str, Any] = {"label": dataset.label, "weight": dataset.weight, "qid": dataset.qid}
    params = hyperparameters.xgboost_params
    nthread = params.get("nthread", -1)
    try:
        if dataset.is_spilled:
            if not hyperparameters.uses_quantile_matrix:
                raise ValueError("a spilled channel can only become a QuantileDMatrix")
            prefix = None if cache is None else str(cache / dataset.channel)
            matrix_type = xgb.QuantileDMatrix if cache is None else xgb.ExtMemQuantileDMatrix
            with closing(dataset.features) as spill:
                batches = SpillIterator(
                    spill,
                    dataset.label,
                    dataset.weight,
                    stopped,
                    qid=dataset.qid,
                    cache_prefix=prefix,
                    window=dataset.spill_rows,
                )
                matrix = matrix_type(
                    batches, ref=reference, max_bin=params.get("max_bin", 256), nthread=nthread
                )
        elif hyperparameters.uses_quantile_matrix and not sliceable:
            matrix = xgb.QuantileDMatrix(
                dataset.features,
                **meta,
                ref=reference,
                max_bin=params.get("max_bin", 256),
                nthread=nthread,
            )
        else:
            matrix = xgb.DMatrix(dataset.features, **meta, nthread=nthread)
    except xgb.core.XGBoostError as exc:
        if stop is not None:
            stop.check()  # the build failed because the spill's pass was ended by a stop
        raise ClientError(
            f"XGBoost could not use channel '{dataset.channel}': {first_line(exc)}"
        ) from None
    if stop is not None:
        stop.check()
    matrix.feature_names = None
    return matrix


def first_line(exc: BaseException) -> str:
    """XGBoost's messages start with a timestamp and end in a C++ stack trace: keep the gist."""
    for line in str(exc).splitlines():
        text = line.strip()
        if text and not text.startswith(("Stack trace", "[bt]")):
            head, sep, rest = text.partition(": ")
            return rest if sep and head.startswith("[") and "/" in head else text
    return type(exc).__name__
