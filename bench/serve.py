"""Serving benchmark: our `./serve` against the classic BYOC server, a tuned one-file
Flask app and the in-process floor, all measured in one run on this machine.

    python -m bench.serve            # full run, about 13 minutes on 2 cores
    python -m bench.serve --quick    # tiny models and 1-second runs: checks that it all works

Writes `serve.json` and `serve.png` into `--out` (default `bench/results/`) and prints a table.
Every server listens on 127.0.0.1 only, runs in its own process group and is killed at the end.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from bench import charts, report
from bench.floor import (
    FloorResult,
    choose_method,
    load_booster,
    measure_cold_predict,
    measure_floor,
    median_floor,
)
from bench.hostile import hostile_table, run_hostile
from bench.load import ensure_wrk, post_csv, run_wrk
from bench.processes import (
    OURS_BESIDE_WORKERS,
    SERVE,
    TreeSampler,
    base_env,
    free_port,
    peak_by_process,
    process_tree,
    pss_bytes,
    reset_peaks,
    rss_by_process,
    rss_bytes,
    running_group,
    serve_env,
)
from bench.workload import ModelSpec, make_features, model_specs, to_csv, train_model

REPO = Path(__file__).resolve().parents[1]
MODEL_FILENAME = "xgboost-model"
SERVERS = ("classic", "tuned", "ours")


@dataclass(frozen=True)
class Scenario:
    """A timed closed-loop load: `rows` rows per request, `connections` requests in flight."""

    name: str
    rows: int
    connections: int


SCENARIOS = (
    Scenario("1row_c1", 1, 1),
    Scenario("1row_c8", 1, 8),
    Scenario("100row_c2", 100, 2),
    Scenario("1000row_c2", 1000, 2),
)
BATCH = "batch"
HOSTILE_BATCH_ROWS = 10_000
"""Rows of the back-to-back requests of the hostile scenario: about 5 MB, under the 6 MB
real-time limit every server then runs with."""


@dataclass(frozen=True)
class Config:
    """Sizes and durations of one run."""

    quick: bool
    duration_s: float
    load_rounds: int
    warmup_s: float
    floor_s: float
    rounds: int
    train_rows: int
    batch_rows: int
    batch_repeats: int
    cold_calls: int
    workers: int
    servers: tuple[str, ...]
    hostile: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Config:
        quick = args.quick
        return cls(
            quick=quick,
            duration_s=args.duration or (1.0 if quick else 3.0),
            load_rounds=1 if quick else 3,
            warmup_s=0.2 if quick else 0.5,
            floor_s=0.3 if quick else 2.0,
            rounds=10 if quick else 100,
            train_rows=1_000 if quick else 20_000,
            batch_rows=args.batch_rows or (2_000 if quick else 100_000),
            batch_repeats=1 if quick else 3,
            cold_calls=5 if quick else 100,
            workers=os.cpu_count() or 1,
            servers=tuple(args.servers),
            hostile=not args.no_hostile,
        )


# --- servers -------------------------------------------------------------------------------


def _server_argv(
    name: str, base_dir: Path, port: int, workers: int, batch_mb: int | None
) -> tuple[list[str], dict[str, str]]:
    if name == "ours":
        batch = {}
        if batch_mb is not None:
            batch = {"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(batch_mb)}
        return [str(SERVE)], serve_env(base_dir, port, workers, **batch)
    env = base_env()
    env["PYTHONPATH"] = str(REPO)
    model = base_dir / "model" / MODEL_FILENAME
    module = {"classic": "bench.baseline_server", "tuned": "bench.tuned_server"}[name]
    argv = [sys.executable, "-m", "gunicorn", "-k", "sync", "-w", str(workers)]
    argv += ["-b", f"127.0.0.1:{port}", "--timeout", "600", "--log-level", "warning"]
    if name == "tuned":
        argv.append("--preload")
    return [*argv, f"{module}:create_app({str(model)!r})"], env


@dataclass
class RunningServer:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    start_to_ping_s: float

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def post(self, body: bytes) -> tuple[bytes, float]:
        """POST `body` as CSV: the answer and its seconds; raises unless the status is 200."""
        status, answer, seconds = post_csv(self.port, body)
        if status != 200:
            raise RuntimeError(f"{self.name} answered {status}: {answer[:300]!r}")
        return answer, seconds


@contextmanager
def running(
    name: str, base_dir: Path, workers: int, logs: Path, batch_mb: int | None = None
) -> Iterator[RunningServer]:
    """Start server `name` on a free 127.0.0.1 port, wait for /ping 200, stop it on exit."""
    port = free_port()
    argv, env = _server_argv(name, base_dir, port, workers, batch_mb)
    log = logs / f"{base_dir.name}-{name}{'-batch' if batch_mb else ''}.log"
    # ours: the supervisor, nginx's master and worker, gunicorn's master, the workers
    beside = OURS_BESIDE_WORKERS if name == "ours" else 1
    with running_group(argv, env, port, log, workers + beside, cwd=REPO) as (
        proc,
        start_to_ping_s,
    ):
        yield RunningServer(name, port, proc, start_to_ping_s)


# --- measurements --------------------------------------------------------------------------


def parse_answer(body: bytes, rows: int) -> np.ndarray:
    """Predictions from a text/csv answer (tolerates `[...]` around multi-class rows)."""
    text = body.replace(b"[", b"").replace(b"]", b"")
    values = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.float64, ndmin=2)
    return values.reshape(rows, -1).squeeze(axis=1) if values.size == rows else values


def check_answer(server: RunningServer, body: bytes, expected: np.ndarray) -> float:
    """Largest absolute difference between the server's predictions and in-process ones."""
    answer, _ = server.post(body)
    got = parse_answer(answer, len(expected))
    if got.shape != expected.shape:
        raise RuntimeError(f"{server.name} answered shape {got.shape}, expected {expected.shape}")
    return float(np.max(np.abs(got - expected)))


def warm_up(server: RunningServer, body: bytes, seconds: float, connections: int = 1) -> None:
    """Send requests on `connections` connections for `seconds` so every worker has answered."""

    def loop() -> int:
        end, sent = time.perf_counter() + seconds, 0
        while sent < 4 or time.perf_counter() < end:
            server.post(body)
            sent += 1
        return sent

    with ThreadPoolExecutor(connections) as pool:
        for future in [pool.submit(loop) for _ in range(connections)]:
            future.result()


def run_scenario(
    server: RunningServer, wrk: str, scenario: Scenario, body: bytes, cfg: Config
) -> dict[str, object]:
    """One timed wrk round after a warm-up, with the server's memory after it."""
    warm_up(server, body, cfg.warmup_s, scenario.connections)
    load = run_wrk(wrk, server.port, body, scenario.connections, cfg.duration_s)
    pids = server.pids()
    return {
        **load.as_dict(),
        "rows": scenario.rows,
        "connections": scenario.connections,
        "rows_per_s": load.req_per_s * scenario.rows,
        "rss_bytes": rss_bytes(pids),
        "pss_bytes": pss_bytes(pids),
    }


def median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median throughput (all of it, so latency and rate stay consistent),
    with every round's rate kept alongside."""
    ordered = sorted(rounds, key=lambda r: r["req_per_s"])
    return ordered[len(ordered) // 2] | {
        "rounds_req_per_s": [r["req_per_s"] for r in rounds],
        "errors": sum(r["errors"] for r in rounds),
    }


def _concurrent_batches(server: RunningServer, body: bytes, requests: int) -> float:
    """Seconds for `requests` batch requests sent at once (SageMaker's MaxConcurrentTransforms
    is the worker count, so a batch transform job keeps every worker busy like this)."""

    start = time.perf_counter()
    with ThreadPoolExecutor(requests) as pool:
        for future in [pool.submit(server.post, body) for _ in range(requests)]:
            future.result()
    return time.perf_counter() - start


def run_batch(
    server: RunningServer,
    body: bytes,
    warm_body: bytes,
    expected: np.ndarray,
    cfg: Config,
    after_each: Callable[[], None] | None = None,
) -> dict[str, object]:
    """The batch request cold (first of this server), then warm: every worker first answers
    smaller requests, then one untimed and `batch_repeats` timed batch requests, each followed
    by `after_each`. Memory growth is the peak over all of them against the resident size
    before the first."""
    rows = len(expected)
    pids = server.pids()
    before = rss_by_process(pids)
    rss_before = sum(before.values())
    peaks_reset = reset_peaks(pids)
    times: list[float] = []
    with TreeSampler(server.proc.pid, interval_s=0.01) as sampler:
        answer, cold_s = server.post(body)
        diff = float(np.max(np.abs(parse_answer(answer, rows) - expected)))
        warm_up(server, warm_body, cfg.warmup_s, connections=2 * cfg.workers)
        for i in range(cfg.batch_repeats + 1):
            answer, seconds = server.post(body)
            if i:
                times.append(seconds)
                if after_each is not None:
                    with sampler.paused():
                        after_each()
        concurrent_s = _concurrent_batches(server, body, cfg.workers)
    peaks = peak_by_process(server.pids()) if peaks_reset else {}
    peak = max(sum(peaks.values()), sampler.peak)
    # What one request costs: the largest growth of a single process (the worker that took it).
    worker_growth = max((p - before.get(pid, 0) for pid, p in peaks.items()), default=None)
    median = float(np.median(times))
    return {
        "rows": rows,
        "requests": len(times),
        "seconds": times,
        "cold_first_request_s": cold_s,
        "p50_ms": median * 1000,
        "rows_per_s": rows / median,
        "payload_bytes": len(body),
        "answer_bytes": len(answer),
        "rss_before_bytes": rss_before,
        "rss_peak_bytes": peak,
        "rss_peak_sampled_bytes": sampler.peak,
        "rss_growth_bytes": peak - rss_before,
        "rss_growth_per_payload": (peak - rss_before) / len(body),
        "worker_rss_growth_bytes": worker_growth,
        "worker_rss_growth_per_payload": None
        if worker_growth is None
        else worker_growth / len(body),
        "max_abs_diff": diff,
        "concurrent_requests": cfg.workers,
        "concurrent_rows_per_s": rows * cfg.workers / concurrent_s,
        "rss_bytes": rss_bytes(server.pids()),
        "pss_bytes": pss_bytes(server.pids()),
    }


def _rate(floor: FloorResult) -> float:
    return floor.rows_per_s


def bench_model(
    spec: ModelSpec, cfg: Config, work: Path, wrk: str, logs: Path, hostile: bool = False
) -> dict[str, object]:
    """Floor and every server for one model.

    The floor of each scenario is measured in every load round, right after the servers' turn
    (the batch floor right after each of our timed batch requests), and its median round is the
    reference: this machine's speed moves by up to 2x within minutes, and a floor measured at
    another moment moved the ratios more than any change to the server did. The best floor
    measured outside the rounds (before and after the servers, the earlier method) is kept too
    and reported beside it."""
    base_dir = work / spec.name
    model_path = base_dir / "model" / MODEL_FILENAME
    print(f"[{spec.name}] training {spec.rounds} rounds ...", flush=True)
    train_model(spec, cfg.train_rows, model_path, nthread=cfg.workers)
    bodies = {s.name: to_csv(make_features(s.rows, seed=100 + s.rows)) for s in SCENARIOS}
    batch_features = make_features(cfg.batch_rows, seed=999)
    bodies[BATCH] = to_csv(batch_features)
    check_features = make_features(1000, seed=5)
    check_body = to_csv(check_features)

    one = load_booster(str(model_path), threads=1)
    every = load_booster(str(model_path), threads=cfg.workers)

    print(f"[{spec.name}] in-process floor: choosing parsers and formatters ...", flush=True)
    budget = max(0.05, cfg.floor_s / 10)
    methods = {s.name: choose_method(one, bodies[s.name], 1, budget) for s in SCENARIOS}
    # A batch call takes 0.3-1.5 s: a longer budget, so each parser is timed more than once.
    methods[BATCH] = choose_method(one, bodies[BATCH], 1, cfg.floor_s)
    batch_all_method = choose_method(every, bodies[BATCH], cfg.workers, cfg.floor_s)

    def floors_outside_rounds() -> tuple[dict[str, FloorResult], FloorResult]:
        floors = {
            name: measure_floor(one, bodies[name], method, cfg.floor_s, 2)
            for name, method in methods.items()
        }
        every_core = measure_floor(every, bodies[BATCH], batch_all_method, cfg.floor_s, 2)
        return floors, every_core

    print(f"[{spec.name}] in-process floor, before the servers ...", flush=True)
    outside, outside_all = floors_outside_rounds()
    cold_predict_ms = measure_cold_predict(one, bodies["1row_c1"], cfg.cold_calls)
    expected_check = one.inplace_predict(check_features).astype(np.float64)
    expected_batch = one.inplace_predict(batch_features).astype(np.float64)

    batch_mb = max(6, 2 * len(bodies[BATCH]) // 2**20 + 1)
    servers: dict[str, dict[str, Any]] = {name: {"scenarios": {}} for name in cfg.servers}
    floor: dict[str, FloorResult] = {}
    # Every server runs at once (idle ones cost nothing) and each scenario visits them in turn,
    # then measures the floor, so a busy moment on a shared machine does not fall on one only.
    with ExitStack() as stack:
        live: dict[str, RunningServer] = {}
        for name in cfg.servers:
            print(f"[{spec.name}] starting {name} ...", flush=True)
            server = live[name] = stack.enter_context(running(name, base_dir, cfg.workers, logs))
            servers[name]["start_to_ping_s"] = server.start_to_ping_s
            servers[name]["max_abs_diff"] = check_answer(server, check_body, expected_check)
            servers[name]["idle_rss_bytes"] = rss_bytes(server.pids())
            servers[name]["idle_pss_bytes"] = pss_bytes(server.pids())
        for scenario in SCENARIOS:
            print(f"[{spec.name}] {scenario.name} ...", flush=True)
            body = bodies[scenario.name]
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in live}
            floor_rounds: list[FloorResult] = []
            for _ in range(cfg.load_rounds):
                for name, server in live.items():
                    rounds[name].append(run_scenario(server, wrk, scenario, body, cfg))
                floor_rounds.append(
                    measure_floor(one, body, methods[scenario.name], cfg.duration_s)
                )
            for name in live:
                servers[name]["scenarios"][scenario.name] = median_round(rounds[name])
            floor[scenario.name] = median_floor(floor_rounds)
        if hostile:  # last: it leaves the baselines' workers with connections to finish
            print(f"[{spec.name}] hostile load ...", flush=True)
            hostile_results = run_hostile(
                {name: server.port for name, server in live.items()},
                wrk,
                bodies["1row_c1"],
                to_csv(make_features(HOSTILE_BATCH_ROWS, seed=7)),
                cfg.workers,
                window_s=2 * cfg.duration_s,
                duration_s=cfg.duration_s,
            )
            for name, entry in hostile_results.items():
                servers[name]["hostile"] = entry
    # Batch: fresh servers, one at a time (memory is measured); ours in batch mode, with the
    # floor (one thread and every thread) measured after each of its timed requests.
    batch_one: list[FloorResult] = []
    batch_all: list[FloorResult] = []

    def batch_floor() -> None:
        batch_one.append(measure_floor(one, bodies[BATCH], methods[BATCH], 0, 1))
        batch_all.append(measure_floor(every, bodies[BATCH], batch_all_method, 0, 1))

    paired_with = "ours" if "ours" in cfg.servers else cfg.servers[0]
    for name in cfg.servers:
        print(f"[{spec.name}] {BATCH} {name} ...", flush=True)
        mode_mb = batch_mb if name == "ours" else None
        with running(name, base_dir, cfg.workers, logs, batch_mb=mode_mb) as server:
            servers[name]["batch_start_to_ping_s"] = server.start_to_ping_s
            servers[name]["scenarios"][BATCH] = run_batch(
                server,
                bodies[BATCH],
                bodies["1000row_c2"],
                expected_batch,
                cfg,
                after_each=batch_floor if name == paired_with else None,
            )
    floor[BATCH] = median_floor(batch_one)
    floor_batch_all = median_floor(batch_all)
    print(f"[{spec.name}] in-process floor, after the servers ...", flush=True)
    again, again_all = floors_outside_rounds()
    outside = {k: max(v, again[k], key=_rate) for k, v in outside.items()}
    outside_all = max(outside_all, again_all, key=_rate)
    # A batch floor is the better of one thread and all threads on one request.
    return {
        "spec": {
            "objective": spec.objective,
            "rounds": spec.rounds,
            "num_class": spec.num_class,
            "trees": one.num_boosted_rounds() * max(1, spec.num_class),
            "model_bytes": model_path.stat().st_size,
        },
        "floor_1core": {k: v.as_dict() for k, v in floor.items()},
        "floor_batch_all_cores": floor_batch_all.as_dict(),
        "cold_1row_predict_ms": cold_predict_ms,
        "floor_batch": max(floor[BATCH], floor_batch_all, key=_rate).as_dict(),
        "floor_outside_rounds": {
            "floor_1core": {k: v.as_dict() for k, v in outside.items()},
            "floor_batch": max(outside[BATCH], outside_all, key=_rate).as_dict(),
        },
        "servers": servers,
    }


# --- main ------------------------------------------------------------------------------------


def run(cfg: Config, out: Path) -> dict[str, object]:
    wrk = ensure_wrk()
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout
    results: dict[str, object] = {
        "meta": {
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "quick": cfg.quick,
            "cpus": os.cpu_count(),
            "workers": cfg.workers,
            "python": platform.python_version(),
            "xgboost": xgb.__version__,
            "wrk": wrk_version.split("\n", 1)[0].strip(),
            "duration_s": cfg.duration_s,
            "batch_rows": cfg.batch_rows,
            "load_average_before": os.getloadavg(),
        },
        "models": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        logs = work / "logs"
        logs.mkdir()
        try:
            for index, spec in enumerate(model_specs(cfg.rounds)):
                results["models"][spec.name] = bench_model(
                    spec, cfg, work, wrk, logs, hostile=index == 0 and cfg.hostile
                )
        except Exception:
            for log in sorted(logs.iterdir()):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
            raise
    results["meta"]["load_average_after"] = os.getloadavg()
    report.add_ratios(results)
    results["goals"] = report.goals(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve.json").write_text(json.dumps(results, indent=2) + "\n")
    charts.serve_chart(results, out / "serve.png")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1-second runs")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--duration", type=float, help="seconds per timed scenario")
    parser.add_argument("--batch-rows", type=int, help="rows in the batch request")
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    parser.add_argument(
        "--no-hostile", action="store_true", help="skip the hostile-load scenario (~2 min)"
    )
    args = parser.parse_args()
    results = run(Config.from_args(args), args.out)
    print(report.serve_table(results))
    print(hostile_table(results))


if __name__ == "__main__":
    main()
