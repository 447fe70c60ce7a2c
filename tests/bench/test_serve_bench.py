"""`python -m bench.serve --quick` runs end to end against the real `./serve`; its output is sane.

No timings are asserted (the goals live in the benchmark); only that every number is there,
positive and consistent, that no request failed and that every server answered correctly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SCENARIOS = ("1row_c1", "1row_c8", "100row_c2", "1000row_c2")
SERVERS = ("classic", "tuned", "ours")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory, run_bench: Callable[..., Any]
) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("serve-bench")
    return run_bench("serve", out, "--quick") | {"_out": out}


@pytest.mark.parametrize("model", ["binary", "softprob"])
def test_floor_is_measured_for_every_scenario(
    results: dict[str, Any], model: str, positive: Callable[[Any], bool]
) -> None:
    floor = results["models"][model]["floor_1core"]
    assert set(floor) == {*SCENARIOS, "batch"}
    for scenario, measured in floor.items():
        assert positive(measured["req_per_s"]), scenario
        assert measured["rows_per_s"] == pytest.approx(measured["req_per_s"] * measured["rows"])
        assert measured["parser"] and measured["formatter"]
        # measured in every load round (after our batch requests for the batch): the median
        assert measured["rows_per_s"] in measured["rounds_rows_per_s"], scenario
    outside = results["models"][model]["floor_outside_rounds"]
    assert set(outside["floor_1core"]) == {*SCENARIOS, "batch"}
    assert positive(outside["floor_batch"]["rows_per_s"])
    assert positive(results["models"][model]["floor_batch_all_cores"]["rows_per_s"])
    assert positive(results["models"][model]["cold_1row_predict_ms"])


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("model", ["binary", "softprob"])
def test_every_server_answers_correctly_under_load(
    results: dict[str, Any], model: str, server: str, positive: Callable[[Any], bool]
) -> None:
    measured = results["models"][model]["servers"][server]
    assert measured["max_abs_diff"] < 1e-5
    assert 0 < measured["start_to_ping_s"] < 120
    assert set(measured["scenarios"]) == {*SCENARIOS, "batch"}
    for name in SCENARIOS:
        load = measured["scenarios"][name]
        assert load["errors"] == 0, name
        assert load["requests"] > 0, name
        assert load["p50_ms"] <= load["p99_ms"] <= load["max_ms"], name
        assert positive(load["rows_per_s"]) and positive(load["rss_bytes"]), name
        assert positive(load["ratios"]["vs_floor_1core"]), name
    batch = measured["scenarios"]["batch"]
    assert batch["max_abs_diff"] < 1e-5
    assert positive(batch["rows_per_s"]) and positive(batch["payload_bytes"])
    assert positive(batch["concurrent_rows_per_s"]) and batch["concurrent_requests"] >= 1
    assert batch["rss_peak_bytes"] >= batch["rss_peak_sampled_bytes"] > 0


def test_ratios_to_references_are_consistent(results: dict[str, Any]) -> None:
    servers = results["models"]["binary"]["servers"]
    ours, classic = servers["ours"]["scenarios"], servers["classic"]["scenarios"]
    expected = ours["1row_c8"]["rows_per_s"] / classic["1row_c8"]["rows_per_s"]
    assert ours["1row_c8"]["ratios"]["vs_classic"] == pytest.approx(expected)


def test_goals_table_covers_each_goal_per_model(
    results: dict[str, Any], positive: Callable[[Any], bool]
) -> None:
    goals = results["goals"]
    assert {g["model"] for g in goals} == {"binary", "softprob"}
    assert len(goals) == 14
    for goal in goals:
        assert isinstance(goal["met"], bool) and positive(goal["measured"])
    floor_goals = [g for g in goals if "against_best_floor_outside_rounds" in g]
    assert len(floor_goals) == 4  # the 1,000-row and batch goals of each model
    assert all(positive(g["against_best_floor_outside_rounds"]) for g in floor_goals)
    assert "Goals:" in results["_stdout"]


def test_chart_is_a_png(results: dict[str, Any]) -> None:
    png = Path(results["_out"], "serve.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


@pytest.mark.parametrize("server", SERVERS)
def test_hostile_load_is_measured_for_every_server(results: dict[str, Any], server: str) -> None:
    """/ping under each load for every server, and the 1-row rate beside it; ours answers
    every ping (the others' workers are the ones the load holds)."""
    hostile = results["models"]["binary"]["servers"][server]["hostile"]
    assert set(hostile) == {"none", "idle", "trickling", "batch"}
    for load, entry in hostile.items():
        assert entry["pings"] > 0 and 0 <= entry["healthy"] <= entry["pings"], load
        assert entry["p50_ms"] <= entry["p99_ms"], load
        assert ("req_per_s" in entry) == (load != "batch"), load
        if server == "ours":
            assert entry["healthy"] == entry["pings"], (load, entry)
    assert "hostile" not in results["models"]["softprob"]["servers"][server]
