"""Beyond the floor (optional): does a compiled predictor lower the 1-row cost?

For single rows the in-process floor is XGBoost's per-call overhead, not the tree walk.
treelite + tl2cgen turn the model into C, compiled with gcc into a shared library. This
measures, on the same models as `bench.serve`: the start-up cost (conversion + compile),
whether predictions are identical, and the per-call time for 1 and 1,000 rows, with and
without parsing and formatting. It changes nothing in the server.

    python -m bench.compiled_predictor [--quick]

Needs the `treelite` and `tl2cgen` packages (pinned in the `test` extra) and a C compiler at
run time. Writes `compiled_predictor.json` into `--out` (default `bench/results/`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from bench.floor import FORMATTERS, PARSERS, load_booster
from bench.workload import make_features, model_specs, to_csv, train_model

REPO = Path(__file__).resolve().parents[1]
IDENTICAL_ATOL = 1e-6
"""float32 rounding: the compiled code sums leaves in a different order than XGBoost."""


def per_call_us(func: Callable[[], object], seconds: float) -> float:
    """Median microseconds of `func()` over about `seconds` seconds (at least 20 calls)."""
    times: list[float] = []
    end = time.perf_counter() + seconds
    while len(times) < 20 or time.perf_counter() < end:
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def compile_model(model_path: Path, libdir: Path) -> tuple[Any, dict[str, float]]:
    """treelite conversion and a gcc build of the model; the loaded predictor and timings."""
    t0 = time.perf_counter()
    import tl2cgen
    import treelite

    t1 = time.perf_counter()
    model = treelite.frontend.from_xgboost(
        _booster(model_path)  # the same bytes the server loads
    )
    t2 = time.perf_counter()
    lib = libdir / "predictor.so"
    tl2cgen.export_lib(
        model,
        toolchain="gcc",
        libpath=str(lib),
        params={"parallel_comp": os.cpu_count() or 1},
        nthread=os.cpu_count() or 1,
    )
    t3 = time.perf_counter()
    predictor = tl2cgen.Predictor(str(lib), nthread=1)
    t4 = time.perf_counter()
    return predictor, {
        "import_s": t1 - t0,
        "convert_s": t2 - t1,
        "compile_s": t3 - t2,
        "load_s": t4 - t3,
        "library_bytes": lib.stat().st_size,
    }


def _booster(model_path: Path) -> xgb.Booster:
    return load_booster(str(model_path), threads=1)


def compiled_predict(predictor: Any, rows: np.ndarray, num_class: int) -> np.ndarray:
    """Predictions in XGBoost's shape: (n,) for binary, (n, classes) for softprob."""
    import tl2cgen

    out = predictor.predict(tl2cgen.DMatrix(rows, dtype="float32"))
    return out.reshape(len(rows), -1) if num_class > 1 else out.reshape(len(rows))


def bench_model(spec: Any, cfg: argparse.Namespace, work: Path) -> dict[str, Any]:
    model_path = work / spec.name / "xgboost-model"
    train_model(spec, cfg.train_rows, model_path, nthread=os.cpu_count() or 1)
    booster = _booster(model_path)
    predictor, startup = compile_model(model_path, model_path.parent)

    check = make_features(1000, seed=5)
    expected = booster.inplace_predict(check)
    got = compiled_predict(predictor, check, spec.num_class)
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))

    one = make_features(1, seed=101)
    body = to_csv(one)
    parse, fmt = PARSERS["numpy_split"], FORMATTERS["str_join"]
    thousand = make_features(1000, seed=1100)
    s = cfg.seconds
    timings = {
        "xgboost_1row_predict_us": per_call_us(lambda: booster.inplace_predict(one), s),
        "compiled_1row_predict_us": per_call_us(
            lambda: compiled_predict(predictor, one, spec.num_class), s
        ),
        "xgboost_1row_floor_us": per_call_us(lambda: fmt(booster.inplace_predict(parse(body))), s),
        "compiled_1row_floor_us": per_call_us(
            lambda: fmt(compiled_predict(predictor, parse(body), spec.num_class)), s
        ),
        "xgboost_1000row_predict_us": per_call_us(lambda: booster.inplace_predict(thousand), s),
        "compiled_1000row_predict_us": per_call_us(
            lambda: compiled_predict(predictor, thousand, spec.num_class), s
        ),
    }
    return {
        "rounds": spec.rounds,
        "num_class": spec.num_class,
        "startup": startup,
        "max_abs_diff": float(diff.max()),
        "exactly_equal_fraction": float(np.mean(got == expected)),
        "identical_within_float32": bool(diff.max() <= IDENTICAL_ATOL),
        "timings": timings,
        "speedup_1row_predict": timings["xgboost_1row_predict_us"]
        / timings["compiled_1row_predict_us"],
        "speedup_1row_floor": timings["xgboost_1row_floor_us"] / timings["compiled_1row_floor_us"],
        "speedup_1000row_predict": timings["xgboost_1000row_predict_us"]
        / timings["compiled_1000row_predict_us"],
    }


def table(results: dict[str, Any]) -> str:
    lines = [f"{'model':9} {'measurement':22} {'xgboost':>9} {'compiled':>9} {'speed-up':>8}"]
    for name, r in results["models"].items():
        t = r["timings"]
        for what in ("1row_predict", "1row_floor", "1000row_predict"):
            x, c = t[f"xgboost_{what}_us"], t[f"compiled_{what}_us"]
            lines.append(f"{name:9} {what + ' (µs)':22} {x:9.0f} {c:9.0f} {x / c:7.1f}x")
        st = r["startup"]
        startup = st["import_s"] + st["convert_s"] + st["compile_s"] + st["load_s"]
        lines.append(
            f"{name:9} start-up {startup:.1f} s (gcc {st['compile_s']:.1f} s), "
            f"max |diff| {r['max_abs_diff']:.1e}, identical: {r['identical_within_float32']}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny models, short timings")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    cfg = parser.parse_args()
    cfg.rounds = 10 if cfg.quick else 100
    cfg.train_rows = 1_000 if cfg.quick else 20_000
    cfg.seconds = 0.2 if cfg.quick else 2.0
    if shutil.which("gcc") is None:
        raise SystemExit("tl2cgen compiles the model with gcc at run time; gcc is not on PATH.")
    results: dict[str, Any] = {
        "meta": {
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "quick": cfg.quick,
            "xgboost": xgb.__version__,
            "cpus": os.cpu_count(),
        },
        "models": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-compiled-") as tmp:
        for spec in model_specs(cfg.rounds):
            print(f"[{spec.name}] ...", flush=True)
            results["models"][spec.name] = bench_model(spec, cfg, Path(tmp))
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "compiled_predictor.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
