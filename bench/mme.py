"""Multi-model endpoint benchmark: `./serve` with `SAGEMAKER_MULTI_MODEL=true` holding 1,000
models of 100 trees, against the single-model `./serve` of the same model, in one run.

    python -m bench.mme            # 1,000 models, about 3 minutes on 2 cores
    python -m bench.mme --quick    # 40 models and 1-second load runs: checks that it all works

It measures what SageMaker sees: the time of `POST /models` (a cold load) and of the first
invoke after it (in the worker that did not load the model, that includes its own load), warm
1-row invoke latency on one of the 1,000 models next to the single-model endpoint's /invocations
(rounds alternate between the two servers), load throughput, and resident memory per loaded
model next to the budget's estimate (`model_memory.model_cost_bytes`). Writes `mme.json` into
`--out` (default `bench/results/`) and prints a summary. Servers listen on 127.0.0.1 only, each
in its own process group, and are stopped at the end.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import xgboost as xgb

from bench.load import ensure_wrk, run_wrk
from bench.processes import (
    OURS_BESIDE_WORKERS,
    free_port,
    process_tree,
    pss_bytes,
    rss_by_process,
    start_group,
    stop_group,
    wait_for_ping,
    wait_for_processes,
)
from bench.workload import ModelSpec, make_features, to_csv, train_model
from container.serving.model_memory import model_cost_bytes

REPO = Path(__file__).resolve().parents[1]
MODEL_FILENAME = "xgboost-model"
WORKERS = 2
DISTINCT = 4
"""Distinct trained models; the fleet repeats them under other names (loading and memory do
not depend on whether two folders hold the same trees, and training 1,000 would take long)."""
COLD_SAMPLES = 30


def build_fleet(root: Path, count: int, rounds: int) -> list[str]:
    """`count` model folders under `root/models/NAME/model`, as SageMaker extracts them."""
    spec = ModelSpec("binary", "binary:logistic", rounds)
    trained = []
    for seed in range(DISTINCT):
        path = root / "trained" / f"{seed}.ubj"
        booster = train_model(spec, 1000 + 100 * seed, path, nthread=os.cpu_count() or 1)
        trained.append((booster, path.read_bytes()))
    names = [f"model-{i:04d}" for i in range(count)]
    for i, name in enumerate(names):
        folder = root / "models" / name / "model"
        folder.mkdir(parents=True)
        (folder / MODEL_FILENAME).write_bytes(trained[i % DISTINCT][1])
    return names


def start_serve(base: Path, log: Path, **extra: str) -> tuple[object, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "XGB_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.update(
        SAGEMAKER_BASE_DIR=str(base),
        SAGEMAKER_BIND_TO_PORT=str(port),
        SAGEMAKER_MODEL_SERVER_WORKERS=str(WORKERS),
        XGB_SERVER_HOST="127.0.0.1",
        **extra,
    )
    proc = start_group([str(REPO / "serve")], env, log)
    wait_for_ping(proc, port, 120, log)
    wait_for_processes(proc.pid, WORKERS + OURS_BESIDE_WORKERS, 60)
    return proc, port


def call(
    port: int, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
) -> tuple[int, bytes, float]:
    """One request: (status, body, seconds until the answer was read)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        start = time.perf_counter()
        conn.request(method, path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - start
    finally:
        conn.close()


def load(port: int, base: Path, name: str, folder: str) -> float:
    body = json.dumps({"model_name": name, "url": str(base / "models" / folder / "model")})
    status, data, seconds = call(port, "POST", "/models", body.encode())
    if status != 200:
        raise RuntimeError(f"loading {name} answered {status}: {data[:300]!r}")
    return seconds


def invoke(port: int, name: str, row: bytes) -> float:
    status, data, seconds = call(port, "POST", f"/models/{name}/invoke", row, "text/csv")
    if status != 200:
        raise RuntimeError(f"invoking {name} answered {status}: {data[:300]!r}")
    return seconds


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p90_ms": ordered[int(0.9 * (len(ordered) - 1))] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def workers_rss(pid: int) -> dict[int, int]:
    return {p: rss for p, rss in rss_by_process(process_tree(pid)).items() if p != pid}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--models", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=100, help="trees per model")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    count = args.models or (40 if args.quick else 1000)
    duration = 1.0 if args.quick else 3.0
    repeats = 1 if args.quick else 3
    wrk = ensure_wrk()
    row = to_csv(make_features(1, seed=3))
    results: dict[str, object] = {
        "meta": {
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "quick": args.quick,
            "cpus": os.cpu_count(),
            "workers": WORKERS,
            "models": count,
            "trees_per_model": args.rounds,
            "python": platform.python_version(),
            "xgboost": xgb.__version__,
            "load_average_before": os.getloadavg(),
        }
    }
    with tempfile.TemporaryDirectory(prefix="bench-mme-") as tmp:
        root = Path(tmp)
        names = build_fleet(root, count, args.rounds)
        single_base = root / "single"
        (single_base / "model").mkdir(parents=True)
        target = names[count // 2]
        model_bytes = (root / "models" / target / "model" / MODEL_FILENAME).read_bytes()
        (single_base / "model" / MODEL_FILENAME).write_bytes(model_bytes)
        booster = xgb.Booster()
        booster.load_model(bytearray(model_bytes))
        cost = model_cost_bytes((booster,))

        mme, mme_port = start_serve(root, root / "mme.log", SAGEMAKER_MULTI_MODEL="true")
        single, single_port = start_serve(single_base, root / "single.log")
        try:
            idle = workers_rss(mme.pid)
            load_seconds = []
            started = time.perf_counter()
            for name in names:
                load_seconds.append(load(mme_port, root, name, name))
            load_wall = time.perf_counter() - started
            loaded = workers_rss(mme.pid)
            grown = sum(loaded.values()) - sum(idle.values())

            # Cold: a model not loaded yet, then its first prediction (SageMaker's first call).
            cold_load, cold_first, cold_total = [], [], []
            for i in range(COLD_SAMPLES):
                name = f"cold-{i:03d}"
                seconds = load(mme_port, root, name, names[i % count])
                first = invoke(mme_port, name, row)
                cold_load.append(seconds)
                cold_first.append(first)
                cold_total.append(seconds + first)
                call(mme_port, "DELETE", f"/models/{name}")

            for _ in range(20):  # both workers hold their copy of the target, then steady state
                invoke(mme_port, target, row)
                call(single_port, "POST", "/invocations", row, "text/csv")
            warm: dict[str, dict[str, list[dict[str, float]]]] = {}
            for connections in (1, 8):
                scenario = f"1row_c{connections}"
                warm[scenario] = {"single_model": [], "multi_model": []}
                for _ in range(repeats):
                    for label, port, path in (
                        ("single_model", single_port, "/invocations"),
                        ("multi_model", mme_port, f"/models/{target}/invoke"),
                    ):
                        result = run_wrk(wrk, port, row, connections, duration, path)
                        if result.errors:
                            raise RuntimeError(f"{label} {scenario}: {result.errors} errors")
                        warm[scenario][label].append(result.as_dict())
            both = workers_rss(mme.pid)
            pss = pss_bytes(process_tree(mme.pid))
        finally:
            stop_group(mme)
            stop_group(single)

    warm_summary = {}
    for scenario, runs in warm.items():
        medians = {
            label: {
                "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
                "req_per_s": statistics.median(r["req_per_s"] for r in rounds),
            }
            for label, rounds in runs.items()
        }
        medians["p50_ratio"] = medians["multi_model"]["p50_ms"] / medians["single_model"]["p50_ms"]
        warm_summary[scenario] = {**medians, "rounds": runs}
    results.update(
        {
            "model": {"trees": args.rounds, "ubj_bytes": len(model_bytes), "cost_bytes": cost},
            "loads": {
                **summary_ms(load_seconds),
                "loads_per_s": count / load_wall,
                "goal_cold_load_ms": 50,
            },
            "cold_invoke": {
                "load": summary_ms(cold_load),
                "first_invoke": summary_ms(cold_first),
                "load_plus_first_invoke": summary_ms(cold_total),
            },
            "warm_invoke": {**warm_summary, "goal_p50_ratio": 1.10},
            "memory": {
                "workers_rss_idle_bytes": sum(idle.values()),
                "workers_rss_after_loads_bytes": sum(loaded.values()),
                "rss_per_loaded_copy_bytes": grown / count,
                "estimate_per_copy_bytes": cost,
                "workers_rss_end_bytes": sum(both.values()),
                "tree_pss_end_bytes": pss,
                "note": "after the loads each model has one copy, in the worker that loaded it",
            },
        }
    )
    results["meta"]["load_average_after"] = os.getloadavg()  # type: ignore[index]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mme.json").write_text(json.dumps(results, indent=2) + "\n")
    _print(results)
    return 0


def _print(results: dict) -> None:
    loads, cold, memory = results["loads"], results["cold_invoke"], results["memory"]
    print(
        f"{results['meta']['models']} models of {results['model']['trees']} trees, "
        f"{results['model']['ubj_bytes'] / 1024:.0f} kB each"
    )
    print(
        f"load: p50 {loads['p50_ms']:.1f} ms, p90 {loads['p90_ms']:.1f} ms, "
        f"{loads['loads_per_s']:.0f} loads/s (goal: under {loads['goal_cold_load_ms']} ms)"
    )
    print(
        f"cold invoke (load + first prediction): p50 "
        f"{cold['load_plus_first_invoke']['p50_ms']:.1f} ms "
        f"(first prediction alone {cold['first_invoke']['p50_ms']:.1f} ms)"
    )
    for scenario, row in results["warm_invoke"].items():
        if not isinstance(row, dict):
            continue
        print(
            f"warm {scenario}: multi-model p50 {row['multi_model']['p50_ms']:.3f} ms "
            f"({row['multi_model']['req_per_s']:.0f} req/s), single-model p50 "
            f"{row['single_model']['p50_ms']:.3f} ms ({row['single_model']['req_per_s']:.0f} "
            f"req/s): ratio {row['p50_ratio']:.2f} (goal at most 1.10)"
        )
    print(
        f"memory: {memory['rss_per_loaded_copy_bytes'] / 1024:.0f} kB resident per loaded copy, "
        f"estimate {memory['estimate_per_copy_bytes'] / 1024:.0f} kB"
    )


if __name__ == "__main__":
    raise SystemExit(main())
