"""The benchmarks' charts: one PNG a person can read at a glance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLOURS = {"classic": "#b0b0b0", "tuned": "#6a9fd8", "ours": "#e07b39"}
BATCH = "batch"


def _panels(model: dict[str, Any]) -> list[tuple[str, str, dict[str, float], float | None]]:
    """(title, unit, value per server, floor) for the four headline measurements."""
    servers = model["servers"]
    floor = model["floor_1core"]

    def values(scenario: str, key: str, scale: float = 1.0) -> dict[str, float]:
        return {n: s["scenarios"][scenario][key] * scale for n, s in servers.items()}

    batch_rows = floor[BATCH]["rows"]
    return [
        (
            "1 row, 1 client: p50",
            "ms (lower is better)",
            values("1row_c1", "p50_ms"),
            floor["1row_c1"]["p50_ms"],
        ),
        (
            "1 row, 8 clients",
            "requests/s",
            values("1row_c8", "req_per_s"),
            2 * floor["1row_c8"]["req_per_s"],
        ),
        (
            "1,000 rows, 2 clients",
            "thousand rows/s",
            values("1000row_c2", "rows_per_s", 1e-3),
            2 * floor["1000row_c2"]["rows_per_s"] * 1e-3,
        ),
        (
            f"{batch_rows:,}-row batch request",
            "thousand rows/s",
            values(BATCH, "rows_per_s", 1e-3),
            model["floor_batch"]["rows_per_s"] * 1e-3,
        ),
    ]


def serve_chart(results: dict[str, Any], path: Path) -> None:
    """Bars per server for each model and headline scenario, the in-process floor as a line."""
    models = results["models"]
    fig, axes = plt.subplots(len(models), 4, figsize=(16, 3.6 * len(models)), squeeze=False)
    for row, (model_name, model) in enumerate(models.items()):
        for col, (title, unit, values, floor) in enumerate(_panels(model)):
            ax = axes[row][col]
            names = list(values)
            bars = ax.bar(
                names, [values[n] for n in names], color=[COLOURS.get(n, "#888") for n in names]
            )
            ax.bar_label(bars, fmt=lambda v: f"{v:,.0f}" if v >= 100 else f"{v:.3g}", fontsize=8)
            if floor is not None:
                ax.axhline(floor, color="#2a7a2a", linestyle="--", linewidth=1.2)
            if col < 2:  # the classic server is 10-100x off: a log axis keeps every bar visible
                ax.set_yscale("log")
                low = min([*values.values(), floor or float("inf")])
                high = max([*values.values(), floor or 0])
                ax.set_ylim(low / 3, high * 5)
            floor_of = ("1 core", "2 cores", "2 cores", "best in-process")[col]
            ax.set_title(f"{model_name}: {title}\n(floor: {floor_of})", fontsize=10)
            ax.set_ylabel(unit, fontsize=8)
            ax.tick_params(labelsize=8)
            if col >= 2:
                ax.margins(y=0.15)
    fig.legend(
        handles=[plt.Line2D([], [], color="#2a7a2a", linestyle="--", label="in-process floor")],
        loc="upper left",
        fontsize=9,
    )
    meta = results["meta"]
    fig.suptitle(
        f"Serving on {meta['cpus']} cores, {meta['workers']} workers, XGBoost {meta['xgboost']}"
        f" (floor: parse + inplace_predict + format in-process; 2 cores = 2 x one core)"
        + ("  [QUICK RUN: tiny sizes]" if meta["quick"] else ""),
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


EXTERNAL_GOAL_BYTES = 1 << 30
"""External memory's peak RSS goal: under 1 GiB at every size."""


def scaling_chart(results: dict[str, Any], path: Path) -> None:
    """Peak RSS and wall time against rows, in memory and from external memory."""
    points = results["points"]
    fig, (memory, wall) = plt.subplots(1, 2, figsize=(12, 4.5))
    for mode, label, colour in (
        ("in_memory", "in memory", COLOURS["tuned"]),
        ("external", "external memory", COLOURS["ours"]),
    ):
        done = [p for p in points if p[mode]]
        rows = [p["rows"] for p in done]
        memory.plot(
            rows, [p[mode]["peak_rss_bytes"] / 2**20 for p in done], "o-", color=colour, label=label
        )
        wall.plot(rows, [p[mode]["wall_s"] for p in done], "o-", color=colour, label=label)
    matrix = [p["float32_matrix_bytes"] / 2**20 for p in points]
    memory.plot([p["rows"] for p in points], matrix, ":", color="#888", label="float32 matrix")
    memory.axhline(EXTERNAL_GOAL_BYTES / 2**20, color="#2a7a2a", linestyle="--", label="1 GiB")
    for ax, title, unit in (
        (memory, "Peak RSS", "MiB"),
        (wall, "Wall time of ./train", "seconds"),
    ):
        ax.set_xscale("log")
        ax.set_xlabel(f"rows x {results['meta']['features']} features")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
    meta = results["meta"]
    fig.suptitle(
        f"In memory vs external memory, {meta['cpus']} cores, XGBoost {meta['xgboost']}, "
        f"memory limit {meta['memory_limit_bytes'] / 2**30:.1f} GiB",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
