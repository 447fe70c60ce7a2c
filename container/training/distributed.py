"""Training one model across SageMaker hosts with XGBoost's own collective.

The hosts come from `resourceconfig.json`. XGBoost's `RabitTracker` runs on the first host in
sorted order; every host joins the group with `xgboost.collective` and XGBoost itself keeps the
histograms, metrics and trees identical on all hosts. Every wait is bounded: peers are resolved
with a deadline (SageMaker brings DNS up late), joining and each collective step have a timeout,
so a host that dies makes the others fail with a sentence instead of hanging.

`cluster(...)` is the context the job trains in; `plan_shard(...)` picks this host's share of a
channel. A single host runs with neither tracker nor collective: rank 0 of 1.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
import xgboost as xgb
from xgboost import collective
from xgboost.core import XGBoostError
from xgboost.tracker import RabitTracker

from container.errors import ClientError, DistributedError
from container.settings import DistributedSettings, Settings
from container.training.checkpoints import Checkpoint
from container.training.spill import SparseSpill

LOG = logging.getLogger(__name__)

_Rows = TypeVar("_Rows")
"""A loaded channel: a dataclass with `features`, `label`, `weight`, `qid` and `num_rows`."""

FULLY_REPLICATED = "FullyReplicated"
SHARDED_BY_S3_KEY = "ShardedByS3Key"
DISTRIBUTIONS = (FULLY_REPLICATED, SHARDED_BY_S3_KEY)

MASTER_RANK = 0
LEAVE_AFTER_FAILURE_S = 10
"""How long a host whose collective step failed may take to leave the group and exit. XGBoost's
shutdown waits for a tracker whose machine is gone (a killed container) and has been seen to
never return after a peer died; past this bound the host exits with status 1 regardless."""
_CONNECT_RETRIES = 2
"""XGBoost's own tries per connection (it sleeps 2 s before the second); `_join` retries more."""

PEER_LOST_FAILURE = (
    "Distributed training ended on host {host} before it finished: this process was killed, "
    "or XGBoost's collective ended it because another host failed or became unreachable; the "
    "other hosts' output/failure and logs say which."
)
"""Left in `output/failure` while the group is up. XGBoost's collective ends a host with
`exit(-1)` when the tracker reports a peer's error, skipping Python; this sentence is then the
reason SageMaker shows. A normal exit from `cluster()` removes it; a Python failure replaces it.
"""


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

    watchdog: StallWatchdog | None = None
    """Ends a host that makes no progress for too long (the job's own loop; None: never)."""

    def progressed(self) -> None:
        """Note progress (a finished round): restart the watchdog's bound."""
        if self.watchdog is not None:
            self.watchdog.progressed()


class StallWatchdog:
    """Ends the process with a reason in `output/failure` when no progress is noted in time.

    A thread, not a signal: XGBoost's calls release the GIL, so it runs while the main thread
    waits inside a collective step that never returns."""

    def __init__(self, seconds: int, sentence: str, failure_file: Path | None) -> None:
        self._seconds = seconds
        self._sentence = sentence
        self._failure_file = failure_file
        self._deadline: float | None = None  # armed by the first `progressed()`
        self._stopped = threading.Event()
        threading.Thread(target=self._watch, name="stall-watchdog", daemon=True).start()

    def progressed(self) -> None:
        self._deadline = time.monotonic() + self._seconds

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(1.0):
            if self._deadline is not None and time.monotonic() > self._deadline:
                LOG.error("%s", self._sentence)
                if self._failure_file is not None:
                    _write_text(self._failure_file, self._sentence + "\n")
                logging.shutdown()
                os._exit(1)


def read_hosts(resource_config_file: Path) -> Hosts:
    """Read `hosts` and `current_host` from `resourceconfig.json`; no file means one local host."""
    if not resource_config_file.exists():
        return hosts_from_config({}, str(resource_config_file))
    try:
        config = json.loads(resource_config_file.read_text())
    except (OSError, ValueError) as exc:
        raise DistributedError(
            f"{resource_config_file} is not readable JSON ({exc}); SageMaker writes it with "
            "'hosts' and 'current_host'."
        ) from None
    return hosts_from_config(config, str(resource_config_file))


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
    resource_config: Mapping[str, object], settings: Settings | None = None
) -> AbstractContextManager[Cluster]:
    """The job's seam: `cluster(...)` for the hosts a parsed `resourceconfig.json` names."""
    settings = settings or Settings.from_environ()
    return cluster(
        hosts_from_config(dict(resource_config), str(settings.paths.resource_config_file)),
        settings.distributed,
        settings.paths.failure_file,
        stall_s=_stall_bound(settings.distributed),
    )


@contextmanager
def cluster(
    hosts: Hosts,
    config: DistributedSettings,
    failure_file: Path | None = None,
    stall_s: int = 0,
) -> Iterator[Cluster]:
    """Join the training group for the duration of the block; yield this host's place in it.

    One host: nothing is started. Several: resolve every peer, start the tracker on the master,
    join with bounded timeouts. A collective failure inside the block is re-raised as a
    `DistributedError` naming this host; `failure_file`, when given, holds a reason while the
    group is up (see `PEER_LOST_FAILURE`).
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
    group: Cluster | None = None
    try:
        group = _join(hosts, tracker_address, config)
        if failure_file is not None:
            _write_text(failure_file, PEER_LOST_FAILURE.format(host=hosts.current) + "\n")
        if stall_s:
            # A collective step can wait for ever after a peer was killed (seen here in about
            # one run in three): once armed by `group.progressed()` (data loaded, then each
            # finished round), a host that makes no progress for `stall_s` exits 1 with a reason.
            watchdog = StallWatchdog(
                stall_s,
                f"Distributed training failed on host {hosts.current} (rank {group.rank} of "
                f"{group.world_size}): no progress for {stall_s} s, most likely because "
                "another host stopped or became unreachable.",
                failure_file,
            )
            group = replace(group, watchdog=watchdog)
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
            _exit_if_stuck(error, failure_file)
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
        if failure_file is not None:
            failure_file.unlink(missing_ok=True)
    finally:
        if not succeeded:
            _leave(hosts)
        if tracker is not None:
            _stop_tracker(tracker, wait_s=config.collective_timeout_s if succeeded else 0)
        if group is not None and group.watchdog is not None:
            group.watchdog.stop()


def _stall_bound(config: DistributedSettings) -> int:
    """Seconds without progress after which a host stops waiting: twice the collective timeout
    (one step may take that long, and data loading before the first round as long again)."""
    return 2 * config.collective_timeout_s


def _exit_if_stuck(error: DistributedError, failure_file: Path | None) -> None:
    """Record `error` now, and end the process if it has not exited `LEAVE_AFTER_FAILURE_S` on.

    Leaving the group after a failure may hang inside XGBoost; the sentence is then already in
    `output/failure` and faulthandler (a C thread) prints the Python stacks and exits with 1.
    """
    if failure_file is not None:
        _write_text(failure_file, error.message + "\n")
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


def _join(hosts: Hosts, tracker_address: str, config: DistributedSettings) -> Cluster:
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
    return Cluster(hosts=hosts, rank=rank, world_size=world_size)


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


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@dataclass(frozen=True)
class Shard:
    """This host's share of one channel: files to read, then which block of their rows to keep."""

    channel: str
    host: str
    files: tuple[Path, ...]
    part: int = 0
    parts: int = 1
    world_size: int = 1

    def rows(self, n_rows: int, qid: np.ndarray | None = None) -> slice:
        """The rows of the files read (`n_rows` of them) this host keeps; none is a failure.

        With `qid` (ranking), the cuts move to the next query boundary so a query stays whole.
        """
        start, stop = n_rows * self.part // self.parts, n_rows * (self.part + 1) // self.parts
        if qid is not None and self.parts > 1:
            start, stop = _query_boundary(qid, start), _query_boundary(qid, stop)
        if stop > start:
            return slice(start, stop)
        if self.parts > 1:
            raise ClientError(
                f"Host {self.host} has no rows of channel '{self.channel}' to train on: "
                f"{n_rows} row(s) split over {self.parts} hosts leaves it none. Give the channel "
                f"at least {self.parts} rows, or train on fewer instances."
            )
        hint = (
            f" Each of the {self.world_size} instances needs rows of its own: split the data "
            "into more files of similar size, or train on fewer instances."
            if self.world_size > 1
            else ""
        )
        raise ClientError(
            f"Host {self.host} has no rows of channel '{self.channel}' to train on: its "
            f"{len(self.files)} file(s) hold no data.{hint}"
        )


def _query_boundary(qid: np.ndarray, index: int) -> int:
    """The first row at or after `index` that starts a new query (or the end)."""
    n_rows = len(qid)
    while 0 < index < n_rows and qid[index] == qid[index - 1]:
        index += 1
    return index


def plan_shard(
    channel: str, files: Sequence[Path], distribution: str | None, hosts: Hosts
) -> Shard:
    """Pick this host's disjoint share of a channel's files (or rows, when files are too few).

    `ShardedByS3Key`: SageMaker already gave each host its own files; train on all of them.
    `FullyReplicated` (the default): every host holds every file, so split the sorted files
    over the hosts, balanced by size; with fewer files than hosts, split the rows instead.
    Needs only `hosts` (a host's rank is its sorted position), so data can be read before
    joining the group.
    """
    files = tuple(sorted(files))
    base = Shard(channel=channel, host=hosts.current, files=files, world_size=hosts.count)
    if hosts.count == 1:
        return base
    distribution = distribution or FULLY_REPLICATED
    if distribution not in DISTRIBUTIONS:
        raise ClientError(
            f"Channel '{channel}' has S3DistributionType {distribution!r}; accepted: "
            f"{', '.join(DISTRIBUTIONS)}."
        )
    if distribution == SHARDED_BY_S3_KEY:
        if not files:
            raise ClientError(
                f"Host {hosts.current} received no files for channel '{channel}': "
                f"ShardedByS3Key hands each of the {hosts.count} hosts a share of the S3 "
                f"objects, so the channel needs at least {hosts.count} objects. Split the data "
                "into more files, use FullyReplicated, or train on fewer instances."
            )
        return base
    if len(files) < hosts.count:
        LOG.info(
            "Channel '%s' has %d file(s) for %d hosts: host %s takes part %d of its rows.",
            channel,
            len(files),
            hosts.count,
            hosts.current,
            hosts.index + 1,
        )
        return replace(base, part=hosts.index, parts=hosts.count)
    share = _balanced_share(files, hosts)
    LOG.info(
        "Channel '%s' (FullyReplicated): host %s trains on %d of its %d files.",
        channel,
        hosts.current,
        len(share),
        len(files),
    )
    return replace(base, files=share)


def _balanced_share(files: tuple[Path, ...], hosts: Hosts) -> tuple[Path, ...]:
    # Largest file first to the host with the fewest bytes (then files) so far; every host
    # computes the same assignment because every host sees the same files (FullyReplicated).
    loads = [0] * hosts.count
    counts = [0] * hosts.count
    mine: list[Path] = []
    for path in sorted(files, key=lambda p: (-p.stat().st_size, str(p))):
        target = min(range(hosts.count), key=lambda r: (loads[r], counts[r], r))
        loads[target] += path.stat().st_size
        counts[target] += 1
        if target == hosts.index:
            mine.append(path)
    return tuple(sorted(mine))


def share_from_master(payload: bytes | None) -> bytes | None:
    """The master's `payload` on every host (e.g. the checkpoint it resumes from), or None.

    Uses the collective's allreduce on raw bytes (no pickling): a length, then the bytes, to
    which every other host adds zeros. Outside a group it returns `payload` unchanged.
    """
    if not collective.is_distributed():
        return payload
    is_master = collective.get_rank() == MASTER_RANK
    length = -1 if payload is None or not is_master else len(payload)
    length = int(collective.allreduce(np.array([length], dtype=np.int64), collective.Op.MAX)[0])
    if length < 0:
        return None
    buffer = np.zeros(length, dtype=np.uint8)
    if is_master and payload is not None:
        buffer[:] = np.frombuffer(payload, dtype=np.uint8)
    return collective.allreduce(buffer, collective.Op.BITWISE_OR).tobytes()


def keep_rows(dataset: _Rows, shard: Shard) -> _Rows:
    """The part of a loaded channel this host trains on (all of it unless rows are split)."""
    rows = shard.rows(dataset.num_rows, dataset.qid)
    if rows == slice(0, dataset.num_rows):
        return dataset
    LOG.info(
        "Host %s trains on rows %d to %d of the %d rows of channel '%s'.",
        shard.host,
        rows.start + 1,
        rows.stop,
        dataset.num_rows,
        shard.channel,
    )
    features = dataset.features
    # An Arrow table (dense channels) slices by offset and length; a CSR matrix by rows.
    kept = (
        features.slice(rows.start, rows.stop - rows.start)
        if isinstance(features, pa.Table)
        else features[rows]
    )
    return replace(
        dataset,
        features=kept,
        label=dataset.label[rows],
        weight=None if dataset.weight is None else dataset.weight[rows],
        qid=None if dataset.qid is None else dataset.qid[rows],
    )


def share_checkpoint(found: Checkpoint | None) -> Checkpoint | None:
    """The checkpoint the master resumes from, on every host, so all start at the same round.

    Only the master writes checkpoints; what another host finds on its own disk is ignored.
    Every host must call this (it is a collective step when training on several hosts).
    """
    if not collective.is_distributed():
        return found
    is_master = collective.get_rank() == MASTER_RANK
    payload = None
    if is_master and found is not None:
        header = json.dumps({"rounds": found.rounds, "path": str(found.path)}).encode()
        payload = header + b"\n" + bytes(found.booster.save_raw("ubj"))
    shared = share_from_master(payload)
    if shared is None:
        return None
    if is_master:
        return found
    header, _, model = shared.partition(b"\n")
    meta = json.loads(header)
    booster = xgb.Booster(model_file=bytearray(model))
    return Checkpoint(booster=booster, rounds=int(meta["rounds"]), path=Path(meta["path"]))


def agree_on_width(dataset: _Rows, hosts: Hosts) -> _Rows:
    """Give a channel the same feature count on every host (a collective step on several).

    Sparse shards (LIBSVM) are widened to the widest host's; dense files must already agree.
    """
    if not collective.is_distributed():
        return dataset
    width = dataset.num_columns
    extremes = collective.allreduce(np.array([width, -width], dtype=np.int64), collective.Op.MAX)
    widest, narrowest = int(extremes[0]), -int(extremes[1])
    features = dataset.features
    if isinstance(features, SparseSpill):  # external memory: pieces are read this wide
        features.widen(widest)
        return dataset
    if isinstance(features, sp.csr_matrix):
        if width == widest:
            return dataset
        shape = (features.shape[0], widest)
        widened = sp.csr_matrix((features.data, features.indices, features.indptr), shape=shape)
        return replace(dataset, features=widened)
    if narrowest != widest:
        raise ClientError(
            f"Channel '{dataset.channel}' has {width} feature columns on host "
            f"{hosts.current} but {narrowest if width == widest else widest} on another "
            "host: every host's files need the same columns in the same order."
        )
    return dataset
