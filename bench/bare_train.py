"""Bare training, the reference of `bench.train`: pyarrow parse, `QuantileDMatrix`, `xgb.train`.

    python -m bench.bare_train CSV OUT_JSON PARAMS_JSON ROUNDS

Each phase is timed on its own and written to OUT_JSON. The process is kept as lean as an
honest script can be: scikit-learn, which xgboost imports when it is installed (about 150 MB
and over a second here) and which training never uses, is kept out of it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.modules["sklearn"] = None  # type: ignore[assignment]

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import xgboost as xgb  # noqa: E402


def train(csv: Path, params: dict[str, object], rounds: int) -> dict[str, float]:
    """Parse `csv` (label first, no header), build the matrix, train; seconds per phase."""
    with csv.open("rb") as handle:
        width = handle.readline().count(b",") + 1
    names = [f"c{i}" for i in range(width)]
    t0 = time.perf_counter()
    table = pacsv.read_csv(
        csv,
        read_options=pacsv.ReadOptions(column_names=names, block_size=16 << 20),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.float32())),
    )
    t1 = time.perf_counter()
    label = table.column(0).to_numpy()
    features = np.empty((table.num_rows, width - 1), dtype=np.float32)
    for i in range(1, width):
        features[:, i - 1] = table.column(i).to_numpy()
    del table
    t2 = time.perf_counter()
    dtrain = xgb.QuantileDMatrix(features, label=label, max_bin=256)
    t3 = time.perf_counter()
    xgb.train(params, dtrain, rounds, evals=[(dtrain, "train")], verbose_eval=False)
    t4 = time.perf_counter()
    return {
        "parse_s": t1 - t0,
        "to_numpy_s": t2 - t1,
        "quantile_dmatrix_s": t3 - t2,
        "train_s": t4 - t3,
        "matrix_bytes": features.nbytes,
    }


if __name__ == "__main__":
    csv_path, out_path, params_json, rounds_text = sys.argv[1:5]
    result = train(Path(csv_path), json.loads(params_json), int(rounds_text))
    Path(out_path).write_text(json.dumps(result))
