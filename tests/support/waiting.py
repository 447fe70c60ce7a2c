"""Waiting for an observable condition with a deadline, never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest
import requests

POLL_S = 0.05
T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout_s: float,
    what: str,
    *,
    alive: Callable[[], bool] = lambda: True,
    context: Callable[[], str] = lambda: "",
    poll_s: float = POLL_S,
) -> T:
    """Poll `condition` every `poll_s` until it returns something truthy, and return that. Fail
    the test saying `what` was awaited, with `context()` (a log), when `alive()` turns false or
    after `timeout_s` (an upper bound, not a speed assertion)."""
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        if not alive():
            pytest.fail(f"ended while waiting for {what}:\n{context()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout_s:g} s:\n{context()}")
        time.sleep(poll_s)
    return result


def ping_ok(url: str) -> bool:
    """Whether `GET url/ping` answers 200 now."""
    try:
        return requests.get(f"{url}/ping", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_for_ping(
    url: str,
    timeout_s: float,
    *,
    alive: Callable[[], bool] = lambda: True,
    context: Callable[[], str] = lambda: "",
    poll_s: float = POLL_S,
) -> None:
    """Until `url/ping` answers 200; fails when `alive()` turns false or at the deadline."""
    what = f"200 from {url}/ping"
    wait_until(lambda: ping_ok(url), timeout_s, what, alive=alive, context=context, poll_s=poll_s)
