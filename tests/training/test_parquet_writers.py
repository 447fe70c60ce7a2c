"""Parquet as pandas, Dask and Spark write it: index columns are not features, and a Spark
output folder (part files beside `_SUCCESS`, `.crc` and commit markers) trains as written.

Dask is not installed here: its files are made the way Dask's pyarrow engine makes them, a
pandas frame whose unnamed index is renamed `__null_dask_index__` and kept by
`Table.from_pandas(preserve_index=True)`, so that the `pandas` metadata lists it among the
index columns.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xgboost as xgb

from container.training import data_loading
from tests.support.opt_ml import make_job

from .helpers import regression_rows, write_tree

ROWS = regression_rows(200, 4, seed=3)
"""Label first, then 4 features."""


def frame(rows: np.ndarray = ROWS) -> pd.DataFrame:
    columns = ["y"] + [f"x{i}" for i in range(rows.shape[1] - 1)]
    return pd.DataFrame(rows, columns=columns)


def parquet_of(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def pandas_default_index(df: pd.DataFrame) -> bytes:
    """A shuffled frame keeps its integer index: pandas stores it as `__index_level_0__`."""
    return parquet_of(pa.Table.from_pandas(df.sample(frac=1.0, random_state=0)))


def pandas_named_index(df: pd.DataFrame) -> bytes:
    return parquet_of(pa.Table.from_pandas(df.rename_axis("customer_id"), preserve_index=True))


def dask_partition(df: pd.DataFrame) -> bytes:
    """One partition as Dask's `to_parquet` writes it (an unnamed index, `write_index=True`)."""
    named = df.rename_axis("__null_dask_index__")
    return parquet_of(pa.Table.from_pandas(named, preserve_index=True))


def spark_part(df: pd.DataFrame) -> bytes:
    """A Spark part file: no pandas metadata, Spark's own schema key instead."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    spark_schema = {"type": "struct", "fields": [{"name": n} for n in df.columns]}
    metadata = {b"org.apache.spark.sql.parquet.row.metadata": json.dumps(spark_schema).encode()}
    return parquet_of(table.replace_schema_metadata(metadata))


def spark_folder(df: pd.DataFrame) -> dict[str, bytes]:
    """Spark's layout: part files, an empty `_SUCCESS`, hidden `.crc` checksums, and the
    commit markers Databricks adds."""
    job = uuid.UUID(int=7)
    files: dict[str, bytes] = {"_SUCCESS": b"", "._SUCCESS.crc": b"crc\x00\x00\x00\x00\x01"}
    for number, part in enumerate(np.array_split(np.arange(len(df)), 2)):
        name = f"part-{number:05d}-{job}-c000.snappy.parquet"
        files[name] = spark_part(df.iloc[part])
        files[f".{name}.crc"] = b"crc\x00\x12\x34\x56\x78"
    files["_started_4513"] = b""
    files["_committed_4513"] = json.dumps({"added": sorted(files), "removed": []}).encode()
    return files


def features(dataset: data_loading.Dataset) -> np.ndarray:
    columns = dataset.features.columns
    return np.column_stack([c.to_numpy(zero_copy_only=False) for c in columns])


def load(directory: Path, spill: bool, content_type: str | None = "application/x-parquet"):
    config = {"ContentType": content_type} if content_type else {}
    return data_loading.load_channel("train", directory, config, False, spill=spill)


def spilled_features(dataset: data_loading.Dataset) -> np.ndarray:
    tables = [table for _, table in dataset.features.chunks()]
    return np.concatenate([np.column_stack([c.to_numpy() for c in t.columns]) for t in tables])


WRITERS = {
    "pandas-default-index": lambda df: {"data.parquet": pandas_default_index(df)},
    "pandas-named-index": lambda df: {"data.parquet": pandas_named_index(df)},
    "dask": lambda df: {
        "part.0.parquet": dask_partition(df.iloc[:120]),
        "part.1.parquet": dask_partition(df.iloc[120:]),
    },
    "spark": spark_folder,
}


@pytest.mark.parametrize("spill", [False, True], ids=["in-memory", "spilled"])
@pytest.mark.parametrize("writer", list(WRITERS))
def test_index_columns_and_markers_are_not_data(tmp_path: Path, writer: str, spill: bool) -> None:
    df = frame()
    write_tree(tmp_path, WRITERS[writer](df))
    dataset = load(tmp_path, spill)

    assert dataset.num_rows == len(df)
    assert dataset.num_columns == ROWS.shape[1] - 1  # the four features, no index
    values = spilled_features(dataset) if spill else features(dataset)
    if writer == "pandas-default-index":
        df = df.sample(frac=1.0, random_state=0)  # the file holds the shuffled rows
    np.testing.assert_array_equal(dataset.label, df["y"].to_numpy(np.float32))
    np.testing.assert_array_equal(values, df.drop(columns="y").to_numpy(np.float32))


def test_spark_folder_without_content_type_is_detected_from_a_part_file(tmp_path: Path) -> None:
    write_tree(tmp_path, spark_folder(frame()))
    dataset = load(tmp_path, spill=False, content_type=None)
    assert dataset.content_type == data_loading.PARQUET
    assert dataset.files == 2


def test_a_column_the_metadata_does_not_declare_stays_a_feature(tmp_path: Path) -> None:
    """A RangeIndex is stored as metadata only: every stored column is data."""
    df = frame()
    table = pa.Table.from_pandas(df, preserve_index=None)  # RangeIndex: no index column
    assert table.schema.pandas_metadata["index_columns"][0]["kind"] == "range"
    write_tree(tmp_path, {"d.parquet": parquet_of(table)})
    assert load(tmp_path, spill=False).num_columns == ROWS.shape[1] - 1


def test_dask_written_channel_trains_a_model_that_takes_the_real_width(tmp_path: Path) -> None:
    df = frame()
    job = make_job(
        tmp_path,
        {"num_round": 5, "objective": "reg:squarederror"},
        {
            "train": {"content_type": "application/x-parquet", "files": WRITERS["dask"](df)},
            "validation": {"content_type": "application/x-parquet", "files": spark_folder(df)},
        },
    )
    result = job.run()
    assert result.returncode == 0, result.stdout + result.stderr
    booster = xgb.Booster()
    booster.load_model(bytearray(job.model_file.read_bytes()))
    assert booster.num_features() == ROWS.shape[1] - 1
