"""The in-process floor: parse the CSV, `inplace_predict`, format the answer, with no HTTP.

This is the limit a server on the same machine approaches. For each payload the bench tries
every candidate parser and formatter on the very same bytes, keeps only those that give the
reference numbers, and times the fastest: "the best method" is measured, not assumed.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import xgboost as xgb


def _numpy_split(body: bytes) -> np.ndarray:
    lines = body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
    values = body.replace(b"\n", b",").rstrip(b",").split(b",")
    return np.array(values, dtype=np.float32).reshape(lines, -1)


def _numpy_loadtxt(body: bytes) -> np.ndarray:
    return np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.float32, ndmin=2)


def _pandas_c(body: bytes) -> np.ndarray:
    return pd.read_csv(io.BytesIO(body), header=None, engine="c").to_numpy(np.float32)


def _pyarrow(body: bytes, use_threads: bool = False) -> np.ndarray:
    columns = body[: body.find(b"\n")].count(b",") + 1
    options = pacsv.ConvertOptions(column_types={f"f{i}": pa.float32() for i in range(columns)})
    table = pacsv.read_csv(
        io.BytesIO(body),
        read_options=pacsv.ReadOptions(autogenerate_column_names=True, use_threads=use_threads),
        convert_options=options,
    )
    return np.column_stack([column.to_numpy() for column in table.columns])


PARSERS: dict[str, Callable[[bytes], np.ndarray]] = {
    "numpy_split": _numpy_split,
    "numpy_loadtxt": _numpy_loadtxt,
    "pandas_c": _pandas_c,
    "pyarrow": _pyarrow,
}
"""Parsers that use one thread: the candidates for a one-core floor."""

THREADED_PARSERS: dict[str, Callable[[bytes], np.ndarray]] = {
    "pyarrow_threads": partial(_pyarrow, use_threads=True),
}
"""Added to the candidates when the floor may use every core."""


def _str_join(predictions: np.ndarray) -> bytes:
    if predictions.ndim == 1:
        text = "\n".join(map(str, predictions.tolist()))
    else:
        text = "\n".join([",".join(map(str, row)) for row in predictions.tolist()])
    return (text + "\n").encode()


def _pyarrow_csv(predictions: np.ndarray) -> bytes:
    matrix = predictions.reshape(len(predictions), -1)
    table = pa.table({f"p{i}": matrix[:, i] for i in range(matrix.shape[1])})
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


FORMATTERS: dict[str, Callable[[np.ndarray], bytes]] = {
    "str_join": _str_join,
    "pyarrow_csv": _pyarrow_csv,
}


def _best_of(candidates: dict[str, Callable], arg: object, check: Callable, budget_s: float) -> str:
    """Name of the fastest candidate whose output passes `check` (min time over a few runs)."""
    timings: dict[str, float] = {}
    for name, func in candidates.items():
        if not check(func(arg)):
            continue
        best, start = float("inf"), time.perf_counter()
        for _ in range(50):
            t0 = time.perf_counter()
            func(arg)
            best = min(best, time.perf_counter() - t0)
            if time.perf_counter() - start > budget_s:
                break
        timings[name] = best
    return min(timings, key=timings.__getitem__)


@dataclass(frozen=True)
class FloorResult:
    """The in-process cost of one request of `rows` rows."""

    rows: int
    threads: int
    parser: str
    formatter: str
    calls: int
    p50_ms: float
    parse_ms: float
    predict_ms: float
    format_ms: float
    req_per_s: float
    rows_per_s: float
    rounds_rows_per_s: tuple[float, ...] = ()
    """Set on a median round (`median_floor`): the rate of every round."""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class FloorMethod:
    """The fastest parser and formatter that reproduce the numbers for one payload."""

    parser: str
    formatter: str
    threads: int


def median_floor(rounds: list[FloorResult]) -> FloorResult:
    """The round with the median rate, with every round's rate kept alongside."""
    ordered = sorted(rounds, key=lambda r: r.rows_per_s)
    return replace(
        ordered[len(ordered) // 2], rounds_rows_per_s=tuple(r.rows_per_s for r in rounds)
    )


def load_booster(model_path: str, threads: int) -> xgb.Booster:
    """The model at `model_path`, predicting with `threads` threads."""
    booster = xgb.Booster()
    booster.load_model(bytearray(Path(model_path).read_bytes()))  # no file-extension warning
    booster.set_param({"nthread": threads})
    return booster


EVICT_BYTES = 64 * 2**20
"""Written between two cold calls: twice this machine's 32 MiB L3, so no tree stays cached."""


def measure_cold_predict(booster: xgb.Booster, body: bytes, calls: int) -> float:
    """Median milliseconds of one `inplace_predict` of `body`'s rows after the CPU caches have
    been overwritten: what a worker pays when other work ran since its last request (at
    concurrency 1 a worker sleeps between requests while wrk, the kernel and the other worker
    run). XGBoost 3.2 walks every node of every tree on each call (the tree depths for its
    block layout), so for a large model this is mostly memory latency."""
    rows = _numpy_loadtxt(body)
    evict = np.zeros(EVICT_BYTES // 8)
    times = []
    for _ in range(calls):
        evict += 1.0
        start = time.perf_counter()
        booster.inplace_predict(rows)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def choose_method(booster: xgb.Booster, body: bytes, threads: int, budget_s: float) -> FloorMethod:
    """Time every parser and formatter on `body` (about `budget_s` each) and keep the fastest
    of those that reproduce the reference numbers."""
    reference = _numpy_loadtxt(body) if len(body) < 1_000_000 else _pandas_c(body)
    parsers = PARSERS | (THREADED_PARSERS if threads > 1 else {})
    parser = _best_of(parsers, body, lambda out: np.array_equal(out, reference), budget_s)
    expected = booster.inplace_predict(reference)
    formatter = _best_of(
        FORMATTERS,
        expected,
        lambda out: np.allclose(
            np.loadtxt(io.BytesIO(out), delimiter=",", ndmin=2).reshape(expected.shape),
            expected,
            rtol=1e-6,
        ),
        budget_s,
    )
    return FloorMethod(parser, formatter, threads)


def measure_floor(
    booster: xgb.Booster, body: bytes, method: FloorMethod, duration_s: float, min_calls: int = 3
) -> FloorResult:
    """Time parse → `inplace_predict` → format on `body` with `method` (chosen for `booster`'s
    thread count) for about `duration_s` seconds, at least `min_calls` calls."""
    parsers = PARSERS | THREADED_PARSERS
    parse, fmt = parsers[method.parser], FORMATTERS[method.formatter]
    parse_t, predict_t, format_t, total_t = [], [], [], []
    start = time.perf_counter()
    while len(total_t) < min_calls or time.perf_counter() - start < duration_s:
        t0 = time.perf_counter()
        rows = parse(body)
        t1 = time.perf_counter()
        predictions = booster.inplace_predict(rows)
        t2 = time.perf_counter()
        fmt(predictions)
        t3 = time.perf_counter()
        parse_t.append(t1 - t0)
        predict_t.append(t2 - t1)
        format_t.append(t3 - t2)
        total_t.append(t3 - t0)
    n_rows = len(rows)
    req_per_s = len(total_t) / sum(total_t)
    return FloorResult(
        rows=n_rows,
        threads=method.threads,
        parser=method.parser,
        formatter=method.formatter,
        calls=len(total_t),
        p50_ms=statistics.median(total_t) * 1000,
        parse_ms=statistics.median(parse_t) * 1000,
        predict_ms=statistics.median(predict_t) * 1000,
        format_ms=statistics.median(format_t) * 1000,
        req_per_s=req_per_s,
        rows_per_s=req_per_s * n_rows,
    )
