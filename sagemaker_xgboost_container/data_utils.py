"""`get_dmatrix`: a channel folder (or file, or list of them) as one `xgb.DMatrix`, read by the
same readers as the built-in training (CSV, LIBSVM, Parquet, RecordIO-protobuf; gzip too)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import xgboost as xgb

from container.training import data_loading
from container.training.hyperparameters import Hyperparameters

_PLAIN_MATRIX = Hyperparameters(xgboost_params={}, num_round=1)
"""No training settings: `to_dmatrix(..., sliceable=True)` then builds a plain `DMatrix`."""


def get_dmatrix(
    data_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    content_type: str,
    csv_weights: int = 0,
    is_pipe: bool = False,
    combine: bool = False,
) -> xgb.DMatrix | None:
    """The rows under `data_path` (a folder, nested folders included, a file, or a list of
    them, read as one) with the label in column 0, and the weight in column 1 when
    `csv_weights` is 1; None when the path is missing or holds no data files.

    `content_type` is `csv`, `libsvm`, `parquet`, `recordio-protobuf` or a MIME type such as
    `text/csv`. Pipe mode is not supported (this image reads File and FastFile channels);
    `combine` is accepted for the built-in's signature: a list is always read as one.
    """
    if is_pipe:
        raise ValueError("get_dmatrix: Pipe input mode is not supported; use File or FastFile.")
    del combine
    paths = [] if data_path is None else _as_list(data_path)
    files = [file for path in paths for file in _data_files(Path(path))]
    if not files:
        return None
    channel = Path(paths[0]).name or "data"
    mime = data_loading.normalize_content_type(content_type, channel)
    dataset = data_loading.load_channel(
        channel, Path(paths[0]), {"ContentType": mime}, bool(csv_weights), files
    )
    return data_loading.to_dmatrix(dataset, _PLAIN_MATRIX, sliceable=True)


def _as_list(
    data_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> list[str | os.PathLike[str]]:
    if isinstance(data_path, str | os.PathLike):
        return [data_path]
    return list(data_path)


def _data_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.stat().st_size > 0 else []
    return data_loading.channel_files(path)
