"""The training group: one model trained across SageMaker hosts with XGBoost's own collective.

The hosts come from `resourceconfig.json` (read by `sagemaker_training.environment`). XGBoost's
`RabitTracker` runs on the first host in sorted order; every host joins the group with
`xgboost.collective`, and XGBoost itself keeps the histograms, metrics and trees identical on
all hosts. Every wait is bounded: peers are resolved with a deadline (SageMaker brings DNS up
late), joining and each collective step have a timeout, and a host that makes no progress for
too long ends itself, so a host that dies makes the others fail with a sentence, not hang.

A single host runs with neither tracker nor collective: rank 0 of 1. Which rows each host
trains on is `sharding`'s concern; sharing the checkpoint to resume from, `checkpoints`'.
"""

from __future__ import annotations

import faulthandler
import logging
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

from xgboost import collective
from xgboost.core import XGBoostError
from xgboost.tracker import RabitTracker

from container.errors import DistributedError
from container.settings import DistributedSettings, Settings

LOG = logging.getLogger(__name__)

MASTER_RANK = 0
LEAVE_AFTER_FAILURE_S = 10
"""How long a host whose collective step failed may take to leave the group and exit. XGBoost's
shutdown waits for a tracker whose machine is gone (a killed container) and has been seen to
never return after a peer died; past this bound the host exits with status 1 regardless."""
_CONNECT_RETRIES = 2
"""XGBoost's own tries per connection (it sleeps 2 s before the second); `_join` retries more."""

ENDED_EARLY = (
    "Distributed training failed on host {host} (rank {rank} of {size}): it ended before "
    "finishing, most likely because another host stopped or became unreachable (XGBoost's "
    "collective then ends a host at once{stall}); the other hosts' output/failure and logs say "
    "which."
)
"""The reason recorded while the group is up. Both ends it names skip Python: XGBoost's
collective ends a host with `exit(-1)` when the tracker reports a peer's error, and the stall
bound exits through faulthandler; the recorded sentence is then the reason SageMaker shows. A
normal exit from `cluster()` clears it; a Python failure replaces it."""


class FailureRecord(Protocol):
    """Where a failure's reason goes (`output/failure`; the job's `FailureFile` writes it)."""

    def write(self, sentence: str, details: str | None = None) -> None: ...

    def clear(self) -> None: ...


@dataclass(frozen=True)
class Hosts:
    """The hosts of a training job (sorted) and the one this process runs on."""

    names: tuple[str, ...]
    current: str

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def index(self) -> int:
        """This host's place in sorted order: its rank in the collective."""
        return self.names.index(self.current)

    @property
    def master(self) -> str:
        """The host that runs the tracker and writes the model."""
        return self.names[MASTER_RANK]


@dataclass(frozen=True)
class Cluster:
    """Where this process stands in the training group."""

    hosts: Hosts
    rank: int
    world_size: int
    stall_s: int = 0
    """Seconds without progress after which this host ends itself (0: never)."""

    @property
    def is_master(self) -> bool:
        """True on the one host that writes the model and prints the metrics."""
        return self.rank == MASTER_RANK

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def current_host(self) -> str:
        return self.hosts.current

    def progressed(self) -> None:
        """Note progress (data loaded, then each finished round): restart the stall bound.

        The bound is `faulthandler.dump_traceback_later(..., exit=True)`, re-armed here: a C
        thread that needs no GIL, so it fires while the main thread waits inside a collective
        step that never returns (seen here in about one run in three after a peer was killed);
        it prints every Python stack to the log and exits with status 1. It cannot write a
        sentence when it fires, and need not: `ENDED_EARLY`, recorded while the group is up,
        already says why, as it does when XGBoost ends the host itself.
        """
        if self.stall_s:
            faulthandler.dump_traceback_later(self.stall_s, exit=True, file=sys.stderr)


def hosts_from_config(config: object, source: str = "resourceconfig.json") -> Hosts:
    """The hosts a parsed `resourceconfig.json` names; an empty one means one local host."""
    if config == {}:
        return Hosts(names=("localhost",), current="localhost")
    names = config.get("hosts") if isinstance(config, Mapping) else None
    current = config.get("current_host") if isinstance(config, Mapping) else None
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(name, str) and name.strip() for name in names)
    ):
        raise DistributedError(
            f"{source} must list the training hosts as a non-empty list of names under "
            f"'hosts'; found {names!r}."
        )
    if len(set(names)) != len(names):
        raise DistributedError(f"{source} names a host twice in 'hosts': {names}.")
    if current not in names:
        raise DistributedError(
            f"{source} gives current_host={current!r}, which is not one of its hosts "
            f"{sorted(names)}."
        )
    return Hosts(names=tuple(sorted(names)), current=current)


def resolve_host(
    host: str,
    timeout_s: float,
    lookup: Callable[[str], str] | None = None,
) -> str:
    """The IPv4 address of `host`, retrying until `timeout_s` runs out (DNS may come up late)."""
    lookup = lookup or _ipv4_address
    deadline = time.monotonic() + timeout_s
    delay = 0.2
    while True:
        try:
            return lookup(host)
        except OSError as exc:
            last_error = exc
        left = deadline - time.monotonic()
        if left <= 0:
            raise DistributedError(
                f"Could not reach host {host!r}: its name did not resolve within {timeout_s:g} s "
                f"({last_error}). Every host in resourceconfig.json must resolve from every "
                "other; on a local cluster check the network, or raise XGB_HOST_RESOLVE_TIMEOUT_S."
            )
        time.sleep(min(delay, left))
        delay = min(delay * 2, 5.0)


def _ipv4_address(host: str) -> str:
    # XGBoost's tracker speaks IPv4 only, so ask for IPv4 ("localhost" may come back as ::1 first).
    infos = socket.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    return str(infos[0][4][0])


def join_cluster(
    resource_config: Mapping[str, object],
    settings: Settings | None = None,
    failure: FailureRecord | None = None,
) -> AbstractContextManager[Cluster]:
    """The job's seam: `cluster(...)` for the hosts a parsed `resourceconfig.json` names."""
    settings = settings or Settings.from_environ()
    return cluster(
        hosts_from_config(dict(resource_config), str(settings.paths.resource_config_file)),
        settings.distributed,
        failure,
        stall_s=_stall_bound(settings.distributed),
    )


@contextmanager
def cluster(
    hosts: Hosts,
    config: DistributedSettings,
    failure: FailureRecord | None = None,
    stall_s: int = 0,
) -> Iterator[Cluster]:
    """Join the training group for the duration of the block; yield this host's place in it.

    One host: nothing is started. Several: resolve every peer, start the tracker on the master,
    join with bounded timeouts. A collective failure inside the block is re-raised as a
    `DistributedError` naming this host; `failure`, when given, holds `ENDED_EARLY` while the
    group is up. With `stall_s`, a host without progress for that long (once armed by
    `group.progressed()`) exits with status 1.
    """
    if hosts.count == 1:
        yield Cluster(hosts=hosts, rank=0, world_size=1)
        return

    addresses = {name: resolve_host(name, config.resolve_timeout_s) for name in hosts.names}
    loopback = sorted(name for name, address in addresses.items() if address.startswith("127."))
    if loopback and len(loopback) < hosts.count:
        LOG.warning(
            "Host(s) %s resolve to a loopback address here but others do not: hosts on other "
            "machines cannot reach a loopback address, so check /etc/hosts or DNS.",
            ", ".join(loopback),
        )
    tracker_address = addresses[hosts.master]
    LOG.info(
        "Distributed training on %d hosts %s; this is %s; tracker on %s (%s:%d).",
        hosts.count,
        ", ".join(hosts.names),
        hosts.current,
        hosts.master,
        tracker_address,
        config.tracker_port,
    )
    tracker = (
        _start_tracker(hosts, tracker_address, config) if hosts.current == hosts.master else None
    )
    succeeded = False
    leaving_after_failure = False  # `_exit_if_stuck`'s bound then stays armed
    group: Cluster | None = None
    try:
        group = _join(hosts, tracker_address, config, stall_s)
        if failure is not None:
            stall = f", and a host without progress for {stall_s} s ends itself" if stall_s else ""
            sentence = ENDED_EARLY.format(
                host=hosts.current, rank=group.rank, size=group.world_size, stall=stall
            )
            failure.write(sentence)
            LOG.info("Until this host finishes, output/failure says: %s", sentence)
        try:
            yield group
        except Exception as exc:
            cause = collective_failure(exc)
            if cause is None:
                raise
            error = DistributedError(
                f"Distributed training failed on host {hosts.current} (rank {group.rank} of "
                f"{group.world_size}): a collective step with the other hosts failed, most "
                f"likely because one of them stopped or became unreachable. XGBoost said: "
                f"{_first_reason(cause)}"
            )
            _exit_if_stuck(error, failure)
            leaving_after_failure = True
            raise error from exc
        succeeded = True
        if not group.is_master:
            LOG.info(
                "Host %s (rank %d) finished its part; the master host %s writes the model.",
                hosts.current,
                group.rank,
                hosts.master,
            )
        _leave(hosts)
        if failure is not None:
            failure.clear()
    finally:
        if not succeeded:
            _leave(hosts)
        if tracker is not None:
            _stop_tracker(tracker, wait_s=config.collective_timeout_s if succeeded else 0)
        if not leaving_after_failure:
            faulthandler.cancel_dump_traceback_later()  # the stall bound


def _stall_bound(config: DistributedSettings) -> int:
    """Seconds without progress after which a host stops waiting: twice the collective timeout
    (one step may take that long, and data loading before the first round as long again)."""
    return 2 * config.collective_timeout_s


def _exit_if_stuck(error: DistributedError, failure: FailureRecord | None) -> None:
    """Record `error` now, and end the process if it has not exited `LEAVE_AFTER_FAILURE_S` on.

    Leaving the group after a failure may hang inside XGBoost; the sentence is then already in
    `output/failure` and faulthandler (a C thread) prints the Python stacks and exits with 1.
    """
    if failure is not None:
        failure.write(error.message)
    LOG.error("%s Leaving the training group (at most %d s).", error.message, LEAVE_AFTER_FAILURE_S)
    faulthandler.dump_traceback_later(LEAVE_AFTER_FAILURE_S, exit=True, file=sys.stderr)


_COLLECTIVE_SOURCES = ("collective/", "allreduce.cc", "allgather.cc", "broadcast.cc", "loop.cc")


def collective_failure(exc: BaseException) -> XGBoostError | None:
    """The XGBoost collective error behind `exc` (even re-raised as another type), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, XGBoostError) and any(
            source in str(current) for source in _COLLECTIVE_SOURCES
        ):
            return current
        current = current.__cause__ or current.__context__
    return None


def _start_tracker(hosts: Hosts, address: str, config: DistributedSettings) -> RabitTracker:
    try:
        tracker = RabitTracker(
            n_workers=hosts.count,
            host_ip=address,
            port=config.tracker_port,
            sortby="task",
            timeout=config.collective_timeout_s,
        )
        tracker.start()
    except XGBoostError as exc:
        raise DistributedError(
            f"Could not start XGBoost's tracker on {hosts.master} ({address}:"
            f"{config.tracker_port}): {_first_reason(exc)}. Set XGB_TRACKER_PORT to a free port."
        ) from None
    return tracker


def _join(hosts: Hosts, tracker_address: str, config: DistributedSettings, stall_s: int) -> Cluster:
    # Hosts start in any order: until the deadline, a tracker that does not answer yet is
    # retried here, once a second (XGBoost's own retries sleep 2, 4, 6... s: kept few).
    deadline = time.monotonic() + config.collective_timeout_s
    while True:
        try:
            with warnings.catch_warnings():
                # XGBoost turns each refused try into a UserWarning; the loop logs its own line.
                warnings.simplefilter("ignore", UserWarning)
                collective.init(
                    dmlc_communicator="rabit",
                    dmlc_tracker_uri=tracker_address,
                    dmlc_tracker_port=config.tracker_port,
                    # The tracker sorts by task id: a zero-padded sorted position is the rank.
                    dmlc_task_id=f"{hosts.index:05d}-{hosts.current}",
                    dmlc_timeout=config.collective_timeout_s,
                    dmlc_retry=_CONNECT_RETRIES,
                )
            break
        except XGBoostError as exc:
            waiting = "connect to the tracker" in str(exc) and time.monotonic() < deadline
            if not waiting:
                raise DistributedError(
                    f"Host {hosts.current} could not join the training group through the "
                    f"tracker on {hosts.master} ({tracker_address}:{config.tracker_port}) "
                    f"within {config.collective_timeout_s} s: {_first_reason(exc)}. Every host "
                    "must start the job and reach the tracker's port."
                ) from None
            LOG.info("The tracker on %s does not answer yet; retrying.", hosts.master)
            time.sleep(1.0)
    rank, world_size = collective.get_rank(), collective.get_world_size()
    if (rank, world_size) != (hosts.index, hosts.count):
        raise DistributedError(
            f"Host {hosts.current} joined as rank {rank} of {world_size}, expected rank "
            f"{hosts.index} of {hosts.count}: another job may be using tracker port "
            f"{config.tracker_port}."
        )
    LOG.info("Host %s joined as rank %d of %d.", hosts.current, rank, world_size)
    return Cluster(hosts=hosts, rank=rank, world_size=world_size, stall_s=stall_s)


def _leave(hosts: Hosts) -> None:
    if not collective.is_distributed():
        return
    try:
        with warnings.catch_warnings():
            # After a failure XGBoost warns about each try to reach a tracker that may be gone.
            warnings.simplefilter("ignore", UserWarning)
            collective.finalize()
    except XGBoostError as exc:
        LOG.warning("Host %s left the group uncleanly: %s", hosts.current, _first_reason(exc))


def _stop_tracker(tracker: RabitTracker, wait_s: int) -> None:
    try:
        if wait_s:
            tracker.wait_for(wait_s)
    except (XGBoostError, ValueError) as exc:
        LOG.warning("The tracker did not see every host leave: %s", _first_reason(exc))
    try:
        tracker.free()
    except XGBoostError as exc:
        LOG.debug("The tracker stopped uncleanly: %s", _first_reason(exc))


def _first_reason(exc: BaseException) -> str:
    """An XGBoost error on one line: its outermost reason (innermost cause), no stack trace."""
    reasons = [
        line.strip().lstrip("- ").split("]: ", 1)[-1].rstrip(". ")
        for line in str(exc).splitlines()
        if line.strip().startswith("- [")
    ]
    if not reasons:
        head = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return head.split("]: ", 1)[-1].rstrip(". ")
    return reasons[0] if len(reasons) == 1 else f"{reasons[-1]} ({reasons[0]})"
