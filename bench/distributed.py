"""Distributed training on one machine: 1 vs 2 vs 3 hosts, time per round and what it is spent on.

Each host is a process that joins the group exactly as `./train` does
(`container.training.cluster.cluster`: tracker on the first host, XGBoost's collective),
builds a `QuantileDMatrix` of its share of the rows and runs `Booster.update` rounds. Per round
it reads its main thread's scheduler counters (`/proc/.../schedstat`): time on a CPU (compute,
one thread per host), time ready but waiting for a CPU (other processes on the machine), and
the rest of the wall time, when the thread sleeps: that is communication, sending, receiving
and waiting for the other hosts.

    python -m bench.distributed [--quick] [--hosts 1 2 3] [--rows 300000]

Writes `distributed.json` into `--out` (default `bench/results/`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from bench.processes import free_port
from container.settings import DistributedSettings
from container.training.cluster import Hosts, cluster

REPO = Path(__file__).resolve().parents[1]
PARAMS = {
    "objective": "binary:logistic",
    "tree_method": "hist",
    "max_depth": 6,
    "eta": 0.1,
    "max_bin": 256,
    "nthread": 1,
    "seed": 0,
}
"""One compute thread per host: the main thread's CPU time per round is its compute time."""


def thread_times() -> tuple[float, float]:
    """(seconds on a CPU, seconds waiting for one) of the calling thread, from the scheduler."""
    path = f"/proc/self/task/{threading.get_native_id()}/schedstat"
    on_cpu, waiting, _ = Path(path).read_text().split()
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def host_names(count: int) -> list[str]:
    """Loopback addresses as host names: every one resolves through the real lookup."""
    return [f"127.0.0.{i}" for i in range(1, count + 1)]


def make_data(rows: int, features: int, path: Path) -> None:
    """A binary task with informative and noise columns, saved as one `.npy` (label first)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    weights = rng.normal(size=features // 2)
    logit = x[:, : features // 2] @ weights + 0.5 * np.sin(3 * x[:, 0]) * x[:, 1]
    y = (logit + rng.logistic(size=rows) > 0).astype(np.float32)
    np.save(path, np.column_stack([y, x]))


def run_worker(args: argparse.Namespace) -> None:
    """One host: join, build its matrix, time each round, write its timings as JSON."""
    names = tuple(sorted(args.names.split(",")))
    hosts = Hosts(names=names, current=args.host)
    settings = DistributedSettings(
        tracker_port=args.port, resolve_timeout_s=10, collective_timeout_s=120
    )
    rows = np.load(args.data, mmap_mode="r")
    share = np.array_split(np.arange(rows.shape[0]), hosts.count)[hosts.index]
    local = np.ascontiguousarray(rows[share[0] : share[-1] + 1])
    started = time.perf_counter()
    with cluster(hosts, settings) as group:
        joined = time.perf_counter()
        cpu_before_matrix = time.process_time()
        matrix = xgb.QuantileDMatrix(local[:, 1:], local[:, 0], max_bin=PARAMS["max_bin"])
        matrix_s = time.perf_counter() - joined
        matrix_cpu_s = time.process_time() - cpu_before_matrix
        booster = xgb.Booster(PARAMS, [matrix])
        walls, cpus, queued = [], [], []
        for iteration in range(args.rounds):
            wall, (cpu, queue) = time.perf_counter(), thread_times()
            booster.update(matrix, iteration)
            after_cpu, after_queue = thread_times()
            walls.append(time.perf_counter() - wall)
            cpus.append(after_cpu - cpu)
            queued.append(after_queue - queue)
        rank = group.rank
    result = {
        "host": args.host,
        "rank": rank,
        "rows": int(local.shape[0]),
        "join_s": joined - started,
        "matrix_s": matrix_s,
        "matrix_cpu_s": matrix_cpu_s,
        "round_wall_s": walls,
        "round_cpu_s": cpus,
        "round_cpu_wait_s": queued,
        "trees": booster.num_boosted_rounds(),
    }
    Path(args.result).write_text(json.dumps(result))


def run_hosts(count: int, data: Path, rounds: int, work: Path) -> dict[str, Any]:
    """Start `count` host processes, wait for all, and summarise their rounds."""
    names = host_names(count)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes = []
    for name in names:
        result = work / f"{count}-{name}.json"
        argv = [
            *(sys.executable, "-m", "bench.distributed", "--worker"),
            f"--host={name}",
            f"--names={','.join(names)}",
            f"--port={port}",
            f"--data={data}",
            f"--rounds={rounds}",
            f"--result={result}",
        ]
        log = (work / f"{count}-{name}.log").open("wb")
        processes.append(
            (subprocess.Popen(argv, env=env, cwd=REPO, stdout=log, stderr=log), result, log)
        )
    hosts = []
    for process, result, log in processes:
        code = process.wait(timeout=1800)
        log.close()
        if code != 0:
            raise SystemExit(f"host process exited with {code}; see {log.name}")
        hosts.append(json.loads(result.read_text()))
    return summarise(count, hosts)


def summarise(count: int, hosts: list[dict[str, Any]]) -> dict[str, Any]:
    """Per host: median round time and the split of all rounds' time (the first excluded)."""
    per_host = []
    for host in hosts:
        walls = host["round_wall_s"][1:]
        cpus, queued = host["round_cpu_s"][1:], host["round_cpu_wait_s"][1:]
        total = sum(walls)
        communication = max(0.0, total - sum(cpus) - sum(queued))
        per_host.append(
            {
                "host": host["host"],
                "rank": host["rank"],
                "rows": host["rows"],
                "round_s": statistics.median(walls),
                "compute_s": sum(cpus) / len(walls),
                "communication_s": communication / len(walls),
                "compute_share": sum(cpus) / total,
                "cpu_wait_share": sum(queued) / total,
                "communication_share": communication / total,
                "matrix_s": host["matrix_s"],
            }
        )
    master = next(h for h in per_host if h["rank"] == 0)
    return {
        "hosts": count,
        "round_s": master["round_s"],
        "compute_s": statistics.mean(h["compute_s"] for h in per_host),
        "communication_s": statistics.mean(h["communication_s"] for h in per_host),
        "compute_share": statistics.mean(h["compute_share"] for h in per_host),
        "cpu_wait_share": statistics.mean(h["cpu_wait_share"] for h in per_host),
        "communication_share": statistics.mean(h["communication_share"] for h in per_host),
        "matrix_s": master["matrix_s"],
        "per_host": per_host,
    }


def table(results: dict[str, Any]) -> str:
    """Round time (master, median) and, averaged over hosts, where a round's time goes."""
    lines = [
        "hosts  rows/host  s/round  speed-up  compute s  comm s  compute  CPU wait  communication"
    ]
    base = results["runs"][0]["round_s"]
    for run in results["runs"]:
        lines.append(
            f"{run['hosts']:>5}  {run['per_host'][0]['rows']:>9}  {run['round_s']:>7.4f}  "
            f"{base / run['round_s']:>7.2f}x  {run['compute_s']:>9.4f}  "
            f"{run['communication_s']:>6.4f}  {run['compute_share']:>7.1%}  "
            f"{run['cpu_wait_share']:>8.1%}  {run['communication_share']:>13.1%}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, few rounds")
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--features", type=int, default=28)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("host", "names", "data", "result"):
        parser.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return
    if args.quick:
        args.rows, args.rounds = 20_000, 8
    results: dict[str, Any] = {
        "meta": {
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "quick": args.quick,
            "xgboost": xgb.__version__,
            "cpus": os.cpu_count(),
            "rows": args.rows,
            "features": args.features,
            "rounds": args.rounds,
            "params": PARAMS,
            "load_average_at_start": os.getloadavg(),
            "note": "all hosts are processes on this one machine; shares are of the main "
            "thread's round time: on a CPU, waiting for a CPU, asleep in communication",
        },
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        work = Path(tmp)
        data = work / "data.npy"
        make_data(args.rows, args.features, data)
        for count in args.hosts:
            print(f"[{count} host(s)] ...", flush=True)
            results["runs"].append(run_hosts(count, data, args.rounds, work))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "distributed.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
