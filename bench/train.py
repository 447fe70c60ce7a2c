"""Training benchmark: our `./train` against bare `xgb.train` on the same CSV.

    python -m bench.train                 # 1,000,000 rows × 50 features (about 0.5 GB of CSV)
    python -m bench.train --rows 20000    # a quick size
    python -m bench.train --scaling 1000000,4000000,16000000   # in memory vs external memory
    python -m bench.train --scaling 20000,80000                # the same, quick sizes

The CSV is generated once and cached under `bench/.cache/`. Both runs are separate processes
measured the same way: wall time from start to exit and peak RSS (the process's own high-water
mark, or its process tree's summed RSS if larger). The bare
run parses with pyarrow (multi-threaded, float32), builds a `QuantileDMatrix` and calls
`xgb.train` with the same parameters; its phases are timed separately. Our ingest time is read
from the training log. The two runs alternate `--repeat` times (default 2) with the CSV in the
page cache, and the fastest of each is kept: on a shared machine a busy moment then hits both.
Writes `train.json` into `--out` (default `bench/results/`).

`--scaling` runs `./train` on each size twice: in memory (`external_memory=false`, skipped
where the container's memory rule says it would not fit) and from external memory
(`external_memory=true`), and writes `train_scaling.json` and `train_scaling.png` (peak RSS
and wall time against rows). Sizes measured earlier with the same settings stay in the file,
so a long size can run on its own; each run's start and load average are kept.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import xgboost as xgb

from bench.charts import scaling_chart
from bench.processes import TreeSampler, peak_rss_bytes, start_group, tail
from bench.workload import DEPTH, FEATURES, write_training_csv

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / ".cache"
ROUNDS = 100
HYPERPARAMETERS = {
    "objective": "binary:logistic",
    "num_round": str(ROUNDS),
    "max_depth": str(DEPTH),
    "eta": "0.3",
    "tree_method": "hist",
}
BARE_PARAMS = {
    "objective": "binary:logistic",
    "max_depth": DEPTH,
    "eta": 0.3,
    "tree_method": "hist",
}
INGEST_TOTAL_LINE = re.compile(
    r"Ingest: (?P<mb>[\d.]+) MB into (?P<matrix>\w+) in (?P<seconds>[\d.]+) s "
    r"\((?P<mb_per_s>[\d.]+) MB/s"
)
"""Parse plus matrix build, as the training log reports it (comparable to the bare phases)."""
INGEST_LINE = re.compile(
    r"Channel '(?P<channel>[^']+)': (?P<rows>\d+) rows x (?P<features>\d+) features .*?"
    r"(?P<mb>[\d.]+) MB in (?P<seconds>[\d.]+) s \((?P<mb_per_s>[\d.]+) MB/s\)"
)


def training_csv(rows: int) -> Path:
    """The cached label-first CSV of `rows` rows, generated on first use."""
    path = CACHE / f"train-{rows}x{FEATURES}.csv"
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        write_training_csv(path, rows)
    return path


def measure(argv: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run `argv` to completion: wall seconds, exit code, peak RSS.

    The peak is the process's own high-water mark (`VmHWM`, exact since its last exec),
    read until it exits, or the summed RSS of its process tree if that is larger. `wait4`'s
    `ru_maxrss` is not used: after a vfork it also counts this (parent) process's memory.
    """
    start = time.perf_counter()
    proc = start_group(argv, env, log, cwd=REPO)
    high_water = 0
    with TreeSampler(proc.pid, interval_s=0.02) as sampler:
        while True:
            high_water = max(high_water, peak_rss_bytes([proc.pid]))
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak = max(sampler.peak, high_water)
    return {"wall_s": wall, "exit_code": proc.returncode, "peak_rss_bytes": peak}


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SAGEMAKER_", "SM_", "OMP_")) and k != "PYTHONPATH"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _opt_ml(base: Path, csv: Path, hyperparameters: dict[str, str]) -> None:
    """An /opt/ml tree whose train channel holds `csv` (hard-linked when possible)."""
    config = base / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(
        json.dumps({"train": {"ContentType": "text/csv", "TrainingInputMode": "File"}})
    )
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
    )
    channel = base / "input" / "data" / "train"
    channel.mkdir(parents=True)
    try:
        os.link(csv, channel / csv.name)
    except OSError:
        shutil.copyfile(csv, channel / csv.name)
    for folder in ("model", "output"):
        (base / folder).mkdir()


def run_ours(
    csv: Path, work: Path, hyperparameters: dict[str, str] = HYPERPARAMETERS
) -> dict[str, Any]:
    base = work / "opt_ml"
    _opt_ml(base, csv, hyperparameters)
    env = _env() | {"SAGEMAKER_BASE_DIR": str(base)}
    log = work / "train.log"
    result = measure([str(REPO / "train")], env, log)
    if result["exit_code"] != 0:
        failure = base / "output" / "failure"
        reason = failure.read_text() if failure.exists() else ""
        raise RuntimeError(f"./train failed ({result['exit_code']}): {reason}\n{tail(log, 30)}")
    if not (base / "model" / "xgboost-model").exists():
        raise RuntimeError(f"./train exited 0 but wrote no model; log:\n{tail(log, 30)}")
    text = log.read_text(errors="replace")
    read = INGEST_LINE.search(text)
    total = INGEST_TOTAL_LINE.search(text)
    result["read_s"] = float(read["seconds"]) if read else None
    result["read_mb_per_s"] = float(read["mb_per_s"]) if read else None
    result["ingest_rows"] = int(read["rows"]) if read else None
    result["ingest_s"] = float(total["seconds"]) if total else None
    result["ingest_mb_per_s"] = float(total["mb_per_s"]) if total else None
    result["ingest_matrix"] = total["matrix"] if total else None
    result["model_rounds"] = xgb.Booster(
        model_file=bytearray((base / "model" / "xgboost-model").read_bytes())
    ).num_boosted_rounds()
    return result


def run_bare(csv: Path, work: Path) -> dict[str, Any]:
    out = work / "bare.json"
    argv = [sys.executable, "-m", "bench.bare_train", str(csv), str(out)]
    argv += [json.dumps(BARE_PARAMS), str(ROUNDS)]
    log = work / "bare.log"
    result = measure(argv, _env(), log)
    if result["exit_code"] != 0:
        raise RuntimeError(f"bare training failed:\n{tail(log, 30)}")
    return result | json.loads(out.read_text())


def _reference_s(bare: dict[str, Any]) -> float:
    """Bare parse plus matrix build plus training: what `./train` is compared with."""
    return bare["parse_s"] + bare["to_numpy_s"] + bare["quantile_dmatrix_s"] + bare["train_s"]


def run(rows: int, out: Path, repeats: int) -> dict[str, Any]:
    csv = training_csv(rows)
    with csv.open("rb") as handle:  # both runs start with the file in the page cache
        while handle.read(1 << 24):
            pass
    bares, ourses = [], []
    with tempfile.TemporaryDirectory(prefix="bench-train-", dir=CACHE) as tmp:
        for attempt in range(repeats):  # alternated, so a busy moment hits both alike
            work = Path(tmp) / str(attempt)
            (work / "bare").mkdir(parents=True)
            (work / "ours").mkdir()
            print(f"bare xgb.train ({attempt + 1}/{repeats}) ...", flush=True)
            bares.append(run_bare(csv, work / "bare"))
            print(f"./train ({attempt + 1}/{repeats}) ...", flush=True)
            ourses.append(run_ours(csv, work / "ours"))
    # The fastest run of each; memory is the same every time (the largest is kept).
    bare = min(bares, key=_reference_s) | {
        "peak_rss_bytes": max(b["peak_rss_bytes"] for b in bares)
    }
    ours = min(ourses, key=lambda r: r["wall_s"])
    ours = ours | {"peak_rss_bytes": max(r["peak_rss_bytes"] for r in ourses)}
    reference_s = _reference_s(bare)
    matrix_bytes = rows * FEATURES * 4
    results = {
        "meta": {
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "rows": rows,
            "repeats": repeats,
            "all_wall_s": {
                "bare": [b["wall_s"] for b in bares],
                "ours": [o["wall_s"] for o in ourses],
            },
            "features": FEATURES,
            "csv_bytes": csv.stat().st_size,
            "float32_matrix_bytes": matrix_bytes,
            "hyperparameters": HYPERPARAMETERS,
            "cpus": os.cpu_count(),
            "xgboost": xgb.__version__,
            "load_average": os.getloadavg(),
        },
        "bare": bare,
        "ours": ours,
        "reference_s": reference_s,
        "ratios": {
            "wall_vs_bare_parse_plus_train": ours["wall_s"] / reference_s,
            "peak_rss_vs_float32_matrix": ours["peak_rss_bytes"] / matrix_bytes,
            "bare_peak_rss_vs_float32_matrix": bare["peak_rss_bytes"] / matrix_bytes,
        },
    }
    results["goals"] = [
        {
            "goal": "wall time <= 1.1x bare parse + xgb.train",
            "measured": results["ratios"]["wall_vs_bare_parse_plus_train"],
            "limit": 1.1,
            "met": results["ratios"]["wall_vs_bare_parse_plus_train"] <= 1.1,
        },
        {
            "goal": "peak RSS <= 2x the float32 matrix",
            "measured": results["ratios"]["peak_rss_vs_float32_matrix"],
            "limit": 2.0,
            "met": results["ratios"]["peak_rss_vs_float32_matrix"] <= 2.0,
        },
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


SCALING_SETTINGS = ("features", "hyperparameters", "memory_limit_bytes", "cpus", "xgboost")
"""What must match for points of two runs to sit in one table."""


def run_scaling(sizes: list[int], out: Path) -> dict[str, Any]:
    """`./train` in memory and from external memory on each size: peak RSS and wall time."""
    from container.training import data_loading, external_memory

    limit = external_memory.memory_limit()
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    points = []
    for rows in sizes:
        csv = training_csv(rows)
        estimate = external_memory.estimate_data_bytes([csv], data_loading.CSV)
        fits = not external_memory.decide("auto", estimate, limit).external
        point: dict[str, Any] = {
            "rows": rows,
            "csv_bytes": csv.stat().st_size,
            "float32_matrix_bytes": rows * FEATURES * 4,
        }
        with tempfile.TemporaryDirectory(prefix="bench-scaling-", dir=CACHE) as tmp:
            for mode, setting in (("in_memory", "false"), ("external", "true")):
                if mode == "in_memory" and not fits:
                    point[mode] = None  # would not fit: the job would refuse to start
                    continue
                print(f"{rows:,} rows, {mode.replace('_', ' ')} ...", flush=True)
                work = Path(tmp) / mode
                work.mkdir()
                hyperparameters = HYPERPARAMETERS | {"external_memory": setting}
                result = run_ours(csv, work, hyperparameters)
                point[mode] = {
                    key: result[key] for key in ("wall_s", "peak_rss_bytes", "ingest_s")
                } | {"matrix": result["ingest_matrix"], "rounds": result["model_rounds"]}
        if point["in_memory"]:
            point["external_vs_in_memory_wall"] = (
                point["external"]["wall_s"] / point["in_memory"]["wall_s"]
            )
        points.append(point)
    run = {
        "sizes": sizes,
        "started": started,
        "load_average": os.getloadavg(),
    }
    results = {
        "meta": {
            "started": started,
            "features": FEATURES,
            "hyperparameters": HYPERPARAMETERS,
            "memory_limit_bytes": limit[0],
            "memory_limit_source": limit[1],
            "cpus": os.cpu_count(),
            "xgboost": xgb.__version__,
            "runs": [run],
        },
        "points": points,
    }
    path = out / "train_scaling.json"
    if path.exists():
        results = _merged(json.loads(path.read_text()), results)
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    scaling_chart(results, out / "train_scaling.png")
    return results


def _merged(earlier: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new`'s points plus `earlier`'s of the sizes `new` did not run (same settings only), and
    every run's date and load: a slow size can run on its own and join the others."""
    same = all(earlier["meta"].get(key) == new["meta"][key] for key in SCALING_SETTINGS)
    if not same:
        return new
    sizes = {point["rows"] for point in new["points"]}
    points = [p for p in earlier["points"] if p["rows"] not in sizes] + new["points"]
    runs = [r for r in earlier["meta"].get("runs", []) if set(r["sizes"]) - sizes]
    meta = new["meta"] | {"runs": runs + new["meta"]["runs"]}
    return {"meta": meta, "points": sorted(points, key=lambda point: point["rows"])}


def scaling_table(results: dict[str, Any]) -> str:
    mib = 2**20
    lines = [f"{'rows':>12}  {'float32':>9}  {'in memory':>22}  {'external':>22}  ext/in wall"]
    for point in results["points"]:
        cells = []
        for mode in ("in_memory", "external"):
            run = point[mode]
            cells.append(
                "would not fit"
                if run is None
                else f"{run['wall_s']:7.1f} s {run['peak_rss_bytes'] / mib:7.0f} MiB"
            )
        ratio = point.get("external_vs_in_memory_wall")
        lines.append(
            f"{point['rows']:>12,}  {point['float32_matrix_bytes'] / mib:>5.0f} MiB  "
            f"{cells[0]:>22}  {cells[1]:>22}  {'' if ratio is None else f'{ratio:.2f}x'}"
        )
    return "\n".join(lines)


def _s(seconds: float | None) -> str:
    return "not logged" if seconds is None else f"{seconds:.2f} s"


def table(results: dict[str, Any]) -> str:
    bare, ours, meta = results["bare"], results["ours"], results["meta"]
    mb = 2**20
    lines = [
        f"{meta['rows']:,} rows x {meta['features']} features, CSV {meta['csv_bytes'] / mb:.0f} MB,"
        f" float32 matrix {meta['float32_matrix_bytes'] / mb:.0f} MB",
        f"bare:  wall {bare['wall_s']:.2f} s (parse {bare['parse_s']:.2f} + to numpy "
        f"{bare['to_numpy_s']:.2f} + QuantileDMatrix {bare['quantile_dmatrix_s']:.2f} + "
        f"train {bare['train_s']:.2f} = {results['reference_s']:.2f} s), "
        f"peak RSS {bare['peak_rss_bytes'] / mb:.0f} MB",
        f"ours:  wall {ours['wall_s']:.2f} s (read {_s(ours['read_s'])}, read + "
        f"{ours['ingest_matrix'] or 'matrix'} {_s(ours['ingest_s'])}), "
        f"peak RSS {ours['peak_rss_bytes'] / mb:.0f} MB",
        "Goals:",
    ]
    for g in results["goals"]:
        verdict = "met" if g["met"] else "NOT met"
        lines.append(f"  [{verdict:7}] {g['goal']}: {g['measured']:.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the training CSV")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--repeat", type=int, default=2, help="alternated runs of each (best kept)")
    parser.add_argument(
        "--scaling",
        metavar="ROWS,ROWS,...",
        help="in memory vs external memory on these sizes (e.g. 1000000,4000000,16000000)",
    )
    args = parser.parse_args()
    if args.scaling:
        sizes = [int(size) for size in args.scaling.split(",")]
        print(scaling_table(run_scaling(sizes, args.out)))
        return
    print(table(run(args.rows, args.out, args.repeat)))


if __name__ == "__main__":
    main()
