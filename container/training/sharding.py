"""Each host's share of a channel in a multi-host job: which files it reads, which rows it keeps.

`plan_shard` needs only the sorted host list (a host's rank is its sorted position), so data is
read before the hosts join. `agree_on_width` is a collective step: every host's matrix must
have the same number of features.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
from xgboost import collective

from container.errors import ClientError
from container.training.cluster import Hosts
from container.training.spill import FeatureSpill, SparseSpill

LOG = logging.getLogger(__name__)

_Rows = TypeVar("_Rows")
"""A loaded channel: a dataclass with `features`, `label`, `weight`, `qid` and `num_rows`."""

FULLY_REPLICATED = "FullyReplicated"
SHARDED_BY_S3_KEY = "ShardedByS3Key"
DISTRIBUTIONS = (FULLY_REPLICATED, SHARDED_BY_S3_KEY)


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


def keep_rows(dataset: _Rows, shard: Shard) -> _Rows:
    """The part of a loaded channel this host trains on (all of it unless rows are split). A
    spilled channel's features stay on disk: its rows are cut as XGBoost reads them
    (`spill_rows`)."""
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
    if isinstance(features, (FeatureSpill, SparseSpill)):
        cut: dict[str, object] = {"spill_rows": rows}
    # An Arrow table (dense channels) slices by offset and length; a CSR matrix by rows.
    elif isinstance(features, pa.Table):
        cut = {"features": features.slice(rows.start, rows.stop - rows.start)}
    else:
        cut = {"features": features[rows]}
    return replace(
        dataset,
        **cut,
        label=dataset.label[rows],
        weight=None if dataset.weight is None else dataset.weight[rows],
        qid=None if dataset.qid is None else dataset.qid[rows],
    )


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
