"""Soak: `./serve` at a steady request rate for a fixed time, with its memory sampled throughout.

    python -m bench.soak --seconds 600      # the long soak (10 minutes)
    python -m bench.soak --seconds 20       # what CI runs (tests/serving/test_faults.py)

Requests go to 127.0.0.1 only, at `--rate` per second on a fixed schedule (open loop: a slow
answer does not slow the schedule down); one in ten is a malformed body that must get its 400,
so the error path is soaked too. Every second the RSS of the gunicorn master and of each worker
is read from /proc. Writes `soak.json` (counts, latencies, the RSS curve, the growth after
warm-up) and `soak.png` into `--out` (default `bench/results/`); the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xgboost as xgb

from bench.processes import (
    OURS_BESIDE_WORKERS,
    SERVE,
    free_port,
    process_tree,
    rss_by_process,
    running_group,
    serve_env,
)

REPO = Path(__file__).resolve().parents[1]
FEATURES = 20
MB = 1024 * 1024


def write_model(base: Path) -> Path:
    """A 50-round binary:logistic model on 20 random features at `base/model/xgboost-model`."""
    rng = np.random.default_rng(11)
    rows = rng.random((2000, FEATURES)).astype(np.float32)
    labels = (rows[:, 0] + rows[:, 1] > 1).astype(np.float32)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 6, "nthread": 1},
        xgb.DMatrix(rows, labels),
        num_boost_round=50,
    )
    model_dir = base / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / "xgboost-model.json"))
    (model_dir / "xgboost-model.json").rename(model_dir / "xgboost-model")
    return model_dir


def request_mix() -> list[tuple[str, bytes, str, int]]:
    """(name, body, content type, expected status), sent in turn: nine good, one bad."""
    rng = np.random.default_rng(3)

    def csv(rows: int) -> bytes:
        return "\n".join(
            ",".join(f"{v:.4f}" for v in row) for row in rng.random((rows, 20))
        ).encode()

    one = rng.random(FEATURES).round(4).tolist()
    good = [
        ("csv-1-row", csv(1), "text/csv", 200),
        ("csv-100-rows", csv(100), "text/csv", 200),
        ("json-10-rows", json.dumps({"instances": [one] * 10}).encode(), "application/json", 200),
        (
            "jsonlines-5-rows",
            "\n".join([json.dumps(one)] * 5).encode(),
            "application/jsonlines",
            200,
        ),
    ]
    bad = ("csv-bad-cell", b"0.1,x" + b",0.5" * (FEATURES - 2), "text/csv", 400)
    return [good[i % len(good)] for i in range(9)] + [bad]


@dataclass
class Tally:
    """What the load generator saw; shared by its threads under `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    late_starts: int = 0


def _send(port: int, body: bytes, content_type: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/invocations", body, {"Content-Type": content_type})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def run_load(port: int, rate: float, seconds: float, clients: int, tally: Tally) -> None:
    """Send request `i` at `start + i / rate` from `clients` threads until `seconds` pass."""
    mix = request_mix()
    start = time.monotonic()
    total = int(rate * seconds)
    counter = iter(range(total))
    counter_lock = threading.Lock()

    def client() -> None:
        while True:
            with counter_lock:
                i = next(counter, None)
            if i is None:
                return
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            name, body, content_type, expected = mix[i % len(mix)]
            began = time.monotonic()
            try:
                status = str(_send(port, body, content_type))
            except OSError as exc:
                status = type(exc).__name__
            elapsed_ms = (time.monotonic() - began) * 1000
            with tally.lock:
                tally.statuses[status] += 1
                tally.latencies_ms.append(elapsed_ms)
                tally.late_starts += delay < -0.1
                if status != str(expected):
                    tally.unexpected.append(f"request {i} ({name}): {status}, wanted {expected}")

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def sample_memory(master: int, stop: threading.Event, interval_s: float) -> list[dict]:
    """RSS of the master and each worker every `interval_s` until `stop` is set."""
    samples: list[dict] = []
    start = time.monotonic()
    while not stop.is_set():
        rss = rss_by_process(process_tree(master))
        workers = {str(pid): size for pid, size in rss.items() if pid != master}
        samples.append(
            {
                "t_s": round(time.monotonic() - start, 2),
                "master_bytes": rss.get(master, 0),
                "workers_bytes": workers,
                "total_bytes": sum(rss.values()),
            }
        )
        stop.wait(interval_s)
    return samples


def growth(samples: list[dict], warm_up_s: float) -> dict[str, float]:
    """Memory after warm-up: first vs last tenth of the samples, and a straight-line slope."""
    kept = [s for s in samples if s["t_s"] >= warm_up_s] or samples
    tenth = max(1, len(kept) // 10)
    first = float(np.mean([s["total_bytes"] for s in kept[:tenth]]))
    last = float(np.mean([s["total_bytes"] for s in kept[-tenth:]]))
    times = np.array([s["t_s"] for s in kept])
    totals = np.array([s["total_bytes"] for s in kept], dtype=float)
    slope = float(np.polyfit(times, totals, 1)[0]) if len(kept) > 2 else 0.0
    return {
        "warm_up_s": warm_up_s,
        "start_mb": round(first / MB, 2),
        "end_mb": round(last / MB, 2),
        "growth_mb": round((last - first) / MB, 2),
        "growth_percent": round(100 * (last - first) / first, 2),
        "slope_mb_per_minute": round(slope * 60 / MB, 3),
    }


def chart(samples: list[dict], path: Path) -> None:
    """RSS of the master, each worker and their sum over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [s["t_s"] for s in samples]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(times, [s["total_bytes"] / MB for s in samples], label="master + workers", lw=2)
    ax.plot(times, [s["master_bytes"] / MB for s in samples], label="master")
    for pid in sorted({p for s in samples for p in s["workers_bytes"]}):
        ax.plot(
            times,
            [s["workers_bytes"].get(pid, np.nan) / MB for s in samples],
            label=f"worker {pid}",
        )
    ax.set_xlabel("seconds")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title("serve under a steady request rate: resident memory")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def soak(args: argparse.Namespace, work: Path) -> dict:
    """Start `./serve`, load it for `args.seconds`, stop it; the results as a dict."""
    write_model(work)
    port = free_port()
    env = serve_env(work, port, args.workers)
    log = work / "serve.log"
    with running_group([str(SERVE)], env, port, log, args.workers + OURS_BESIDE_WORKERS) as (
        server,
        _,
    ):
        workers_before = sorted(p for p in process_tree(server.pid) if p != server.pid)
        tally = Tally()
        stop = threading.Event()
        samples: list[dict] = []
        sampler = threading.Thread(
            target=lambda: samples.extend(sample_memory(server.pid, stop, args.sample_s))
        )
        sampler.start()
        began = time.monotonic()
        run_load(port, args.rate, args.seconds, args.clients, tally)
        took = time.monotonic() - began
        stop.set()
        sampler.join()
        workers_after = sorted(p for p in process_tree(server.pid) if p != server.pid)
    latencies = np.array(tally.latencies_ms)
    sent = sum(tally.statuses.values())
    return {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "config": vars(args) | {"out": str(args.out)},
        "requests": sent,
        "achieved_rate": round(sent / took, 1),
        "statuses": dict(tally.statuses),
        "unexpected": len(tally.unexpected),
        "unexpected_examples": tally.unexpected[:10],
        "server_errors": sum(n for s, n in tally.statuses.items() if s.startswith("5")),
        "late_starts": tally.late_starts,
        "latency_ms": {
            "p50": round(float(np.percentile(latencies, 50)), 2),
            "p99": round(float(np.percentile(latencies, 99)), 2),
            "max": round(float(latencies.max()), 2),
        },
        "workers_replaced": workers_before != workers_after,
        "memory": growth(samples, min(args.warm_up_s, args.seconds / 4)),
        "rss_samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600, help="how long to load the server")
    parser.add_argument("--rate", type=float, default=100, help="requests per second")
    parser.add_argument("--clients", type=int, default=8, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--sample-s", type=float, default=1.0, help="seconds between RSS samples")
    parser.add_argument("--warm-up-s", type=float, default=30, help="left out of the growth")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="soak-") as work:
        results = soak(args, Path(work))
    (args.out / "soak.json").write_text(json.dumps(results, indent=1) + "\n")
    chart(results["rss_samples"], args.out / "soak.png")
    memory = results["memory"]
    print(
        f"{results['requests']} requests in {args.seconds:g} s ({results['achieved_rate']}/s), "
        f"statuses {results['statuses']}, unexpected {results['unexpected']}, "
        f"p50 {results['latency_ms']['p50']} ms, p99 {results['latency_ms']['p99']} ms; "
        f"RSS after {memory['warm_up_s']:g} s warm-up {memory['start_mb']} -> "
        f"{memory['end_mb']} MiB ({memory['growth_mb']:+} MiB, "
        f"{memory['slope_mb_per_minute']:+} MiB/min); workers replaced: "
        f"{results['workers_replaced']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
