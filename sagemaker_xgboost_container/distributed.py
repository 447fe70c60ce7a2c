"""`rabit_run` and `wait_hostname_resolution` as AWS's framework container names them, on this
image's collective (`container.training.cluster`: the hosts' own tracker and timeouts).

Hosts are sorted and the first one is the master, as with the framework container.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from container.settings import Settings
from container.training import cluster

logger = logging.getLogger(__name__)


def wait_hostname_resolution(sm_hosts: Iterable[str]) -> None:
    """Wait until every host name resolves (bounded by `XGB_RESOLVE_TIMEOUT_S`)."""
    timeout_s = Settings.from_environ().distributed.resolve_timeout_s
    for host in sm_hosts:
        cluster.resolve_host(host, timeout_s)


def rabit_run(
    exec_fun: Callable[..., Any],
    args: Mapping[str, Any],
    include_in_training: bool,
    hosts: Iterable[str],
    current_host: str,
    first_port: int | None = None,
    second_port: int | None = None,
    max_connect_attempts: int | None = None,
    connect_retry_timeout: int = 3,
    update_rabit_args: bool = False,
) -> None:
    """Run `exec_fun(**args)` on every host that has data, inside one training collective.

    The hosts first agree on which of them have data (`include_in_training`); a host without
    data leaves (exit status 0). With `update_rabit_args`, `exec_fun` also gets `is_master`.
    `max_connect_attempts` and `connect_retry_timeout` are accepted for the framework's
    signature; joining is bounded by this image's `XGB_*` timeouts instead.
    """
    del max_connect_attempts, connect_retry_timeout
    settings = Settings.from_environ()
    names = tuple(sorted(hosts))
    config = settings.distributed
    first = replace(config, tracker_port=first_port) if first_port else config
    kwargs = dict(args)
    if len(names) == 1:
        _run(exec_fun, kwargs, update_rabit_args, is_master=True)
        return
    with cluster.cluster(cluster.Hosts(names, current_host), first) as group:
        flags = _all_flags(include_in_training, group.rank, group.world_size)
        with_data = tuple(name for name, flag in zip(names, flags, strict=True) if flag)
        if not with_data:
            raise RuntimeError("No hosts received training data.")
        if len(with_data) == len(names):
            _run(exec_fun, kwargs, update_rabit_args, is_master=group.is_master)
            return
    if not include_in_training:
        logger.warning("Host %s has no training data and leaves the training.", current_host)
        sys.exit(0)
    if len(with_data) == 1:
        _run(exec_fun, kwargs, update_rabit_args, is_master=True)
        return
    second = replace(config, tracker_port=second_port or first.tracker_port + 1)
    with cluster.cluster(cluster.Hosts(with_data, current_host), second) as group:
        _run(exec_fun, kwargs, update_rabit_args, is_master=group.is_master)


def _all_flags(include: bool, rank: int, world_size: int) -> list[bool]:
    """Every host's `include_in_training`, in rank order (one all-reduce)."""
    import xgboost as xgb

    mine = np.zeros(world_size, dtype=np.int32)
    mine[rank] = int(include)
    total = xgb.collective.allreduce(mine, xgb.collective.Op.SUM)
    return [bool(flag) for flag in total]


def _run(
    exec_fun: Callable[..., Any], kwargs: dict[str, Any], update: bool, is_master: bool
) -> None:
    if update:
        kwargs["is_master"] = is_master
    exec_fun(**kwargs)
