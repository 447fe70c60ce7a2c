"""Ratios, goal checks and the printed table for the serving benchmark's results."""

from __future__ import annotations

from typing import Any

BATCH = "batch"
FLOOR_CORES = 2  # the "two-core floor": twice the one-core in-process rate


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def add_ratios(results: dict[str, Any]) -> None:
    """Add ratios to the floor and to the reference servers to every measured scenario."""
    for model in results["models"].values():
        floor = model["floor_1core"]
        outside = model.get("floor_outside_rounds")
        servers = model["servers"]
        for name, server in servers.items():
            for scenario, measured in server["scenarios"].items():
                one = floor[scenario]
                ratios = {
                    "vs_floor_1core": _ratio(measured["rows_per_s"], one["rows_per_s"]),
                    "vs_floor_2core": _ratio(
                        measured["rows_per_s"], FLOOR_CORES * one["rows_per_s"]
                    ),
                    "p50_vs_floor_p50": _ratio(measured["p50_ms"], one["p50_ms"]),
                }
                if outside is not None:  # the earlier reference: the best floor outside the rounds
                    ratios["vs_floor_2core_outside_rounds"] = _ratio(
                        measured["rows_per_s"],
                        FLOOR_CORES * outside["floor_1core"][scenario]["rows_per_s"],
                    )
                if scenario == BATCH:
                    ratios["vs_floor_batch"] = _ratio(
                        measured["rows_per_s"], model["floor_batch"]["rows_per_s"]
                    )
                    if outside is not None:
                        ratios["vs_floor_batch_outside_rounds"] = _ratio(
                            measured["rows_per_s"], outside["floor_batch"]["rows_per_s"]
                        )
                    ratios["concurrent_vs_floor_2core"] = _ratio(
                        measured["concurrent_rows_per_s"], FLOOR_CORES * one["rows_per_s"]
                    )
                for ref in ("classic", "tuned"):
                    if ref in servers and ref != name:
                        other = servers[ref]["scenarios"][scenario]["rows_per_s"]
                        ratios[f"vs_{ref}"] = _ratio(measured["rows_per_s"], other)
                measured["ratios"] = ratios


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The serving goals that this run measured, each with its value, limit and verdict."""
    rows: list[dict[str, Any]] = []

    def add(
        model: str,
        goal: str,
        value: float | None,
        limit: float,
        at_most: bool,
        outside_rounds: float | None = None,
    ) -> None:
        if value is None:
            return
        ok = value <= limit if at_most else value >= limit
        row = {"model": model, "goal": goal, "measured": value, "limit": limit, "met": ok}
        if outside_rounds is not None:  # against the best floor measured outside the rounds
            row["against_best_floor_outside_rounds"] = outside_rounds
        rows.append(row)

    for model_name, model in results["models"].items():
        ours = model["servers"].get("ours")
        if ours is None:
            continue
        s = ours["scenarios"]
        add(model_name, "1-row p50 at concurrency 1 (ms) <= 1.0", s["1row_c1"]["p50_ms"], 1.0, True)
        r8 = s["1row_c8"]["ratios"]
        add(model_name, "1-row req/s at c8 vs classic >= 20x", r8.get("vs_classic"), 20.0, False)
        add(model_name, "1-row req/s at c8 vs tuned Flask >= 1.3x", r8.get("vs_tuned"), 1.3, False)
        add(
            model_name,
            "1,000-row rows/s at c2 vs two-core floor >= 0.75x",
            s["1000row_c2"]["ratios"]["vs_floor_2core"],
            0.75,
            False,
            s["1000row_c2"]["ratios"].get("vs_floor_2core_outside_rounds"),
        )
        batch = s[BATCH]
        add(
            model_name,
            f"{batch['rows']:,}-row batch rows/s vs in-process floor >= 0.8x",
            batch["ratios"]["vs_floor_batch"],
            0.8,
            False,
            batch["ratios"].get("vs_floor_batch_outside_rounds"),
        )
        add(
            model_name,
            "batch RSS growth of the worker vs payload size <= 3x",
            batch["worker_rss_growth_per_payload"],
            3.0,
            True,
        )
        add(model_name, "serve start to first /ping 200 (s) <= 2", ours["start_to_ping_s"], 2, True)
    return rows


def _mb(n: float) -> str:
    return f"{n / 2**20:.0f}"


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def serve_table(results: dict[str, Any]) -> str:
    """A plain-text table of every server and scenario, then the goals."""
    lines = []
    head = (
        f"{'model':9} {'scenario':11} {'server':8} {'req/s':>9} {'rows/s':>10} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'RSS MB':>7} {'xfloor1':>7} {'xfloor2':>7} {'xclassic':>8} {'xtuned':>7}"
    )
    for model_name, model in results["models"].items():
        lines += [head, "-" * len(head)]
        floor = model["floor_1core"]
        for scenario in floor:
            f = floor[scenario]
            lines.append(
                f"{model_name:9} {scenario:11} {'floor1c':8} {f['req_per_s']:9.1f} "
                f"{f['rows_per_s']:10.0f} {f['p50_ms']:8.3f} {'':>8} {'':>7} "
                f"({f['parser']}, {f['formatter']})"
            )
            if scenario == BATCH:
                fb = model["floor_batch_all_cores"]
                lines.append(
                    f"{model_name:9} {scenario:11} {'floor' + str(fb['threads']) + 't':8} "
                    f"{fb['req_per_s']:9.2f} {fb['rows_per_s']:10.0f} {fb['p50_ms']:8.1f} "
                    f"{'':>8} {'':>7} ({fb['parser']}, {fb['formatter']})"
                )
            for name, server in model["servers"].items():
                m = server["scenarios"].get(scenario)
                if m is None:
                    continue
                r = m["ratios"]
                rps = m.get("req_per_s", 1000 / m["p50_ms"])
                lines.append(
                    f"{model_name:9} {scenario:11} {name:8} {rps:9.1f} {m['rows_per_s']:10.0f} "
                    f"{m['p50_ms']:8.3f} {m.get('p99_ms', float('nan')):8.3f} "
                    f"{_mb(m['rss_bytes']):>7} {_x(r['vs_floor_1core']):>7} "
                    f"{_x(r['vs_floor_2core']):>7} {_x(r.get('vs_classic')):>8} "
                    f"{_x(r.get('vs_tuned')):>7}"
                )
        lines.append(
            f"1-row inplace_predict after the CPU caches were overwritten (the cold floor of "
            f"1row_c1): {model['cold_1row_predict_ms']:.3f} ms"
        )
        starts = ", ".join(f"{n} {s['start_to_ping_s']:.2f}s" for n, s in model["servers"].items())
        lines.append(f"start to first /ping 200: {starts}")
        for name, server in model["servers"].items():
            b = server["scenarios"].get(BATCH)
            if b is None or b.get("worker_rss_growth_bytes") is None:
                continue
            lines.append(
                f"batch memory {name}: payload {_mb(b['payload_bytes'])} MB, busiest worker "
                f"+{_mb(b['worker_rss_growth_bytes'])} MB "
                f"({b['worker_rss_growth_per_payload']:.1f}x payload), whole tree "
                f"+{_mb(b['rss_growth_bytes'])} MB; "
                f"cold first request {b['cold_first_request_s']:.2f} s; "
                f"{b['concurrent_requests']} at once: {b['concurrent_rows_per_s']:,.0f} rows/s "
                f"({b['ratios']['concurrent_vs_floor_2core']:.2f}x the two-core floor)"
            )
        lines.append("")
    lines.append("Goals:")
    for g in results.get("goals", []):
        verdict = "met" if g["met"] else "NOT met"
        outside = g.get("against_best_floor_outside_rounds")
        extra = (
            ""
            if outside is None
            else f" (against the best floor outside the rounds: {outside:.3f})"
        )
        lines.append(f"  [{verdict:7}] {g['model']:9} {g['goal']}: {g['measured']:.3f}{extra}")
    return "\n".join(lines)
