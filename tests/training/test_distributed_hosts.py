"""Distributed training for real: 2 and 3 `./train` processes on this machine, one `/opt/ml` each.

Host names are addresses on the loopback network (`127.0.0.x`, `localhost`), resolved through
the real name lookup. The distributed model must score as well as the single-host one on a
held-out set, in both sharding modes; a host that dies must make the others fail with a reason;
a host that does not resolve must fail with a sentence naming it.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from tests.support.distributed import (
    HYPERPARAMETERS,
    Data,
    holdout_scores,
    metric_lines,
)
from tests.support.local_cluster import LocalCluster, wait_all, wait_for_line

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("names", "distribution"),
    [
        (["127.0.0.1", "localhost"], "FullyReplicated"),
        (["127.0.0.1", "localhost"], "ShardedByS3Key"),
        (["127.0.0.1", "127.0.0.2", "127.0.0.3"], "FullyReplicated"),
        (["127.0.0.1", "127.0.0.2", "127.0.0.3"], "ShardedByS3Key"),
    ],
    ids=["2-hosts-replicated", "2-hosts-sharded", "3-hosts-replicated", "3-hosts-sharded"],
)
def test_distributed_model_matches_single_host(
    local_cluster: LocalCluster,
    data: Data,
    single_host_scores: tuple[float, float],
    names: list[str],
    distribution: str,
) -> None:
    hosts = local_cluster.run(names, data, distribution)
    codes = wait_all(hosts)
    assert codes == [0] * len(hosts), "\n\n".join(h.output[-2000:] for h in hosts)

    master, *others = hosts
    assert master.model_file.is_file()
    assert all(not host.model_file.exists() for host in others)
    assert all(host.failure is None for host in hosts)
    # Metrics once, by the master: one line per round.
    assert len(metric_lines(master.output)) == int(HYPERPARAMETERS["num_round"])
    assert all(metric_lines(host.output) == [] for host in others)
    for rank, host in enumerate(hosts):
        assert f"Host {host.name} joined as rank {rank} of {len(hosts)}." in host.output

    logloss, accuracy = holdout_scores(master.model_file, data)
    single_logloss, single_accuracy = single_host_scores
    assert abs(logloss - single_logloss) <= 0.01
    assert abs(accuracy - single_accuracy) <= 0.01


def test_each_host_trains_on_its_own_share(local_cluster: LocalCluster, data: Data) -> None:
    hosts = local_cluster.run(["127.0.0.1", "127.0.0.2", "127.0.0.3"], data, "FullyReplicated")
    assert wait_all(hosts) == [0, 0, 0]
    for host in hosts:
        assert f"host {host.name} trains on 2 of its 6 files" in host.output
    assert "Host 127.0.0.1 trains on rows 1 to 666 of the 2000 rows of channel 'validation'" in (
        hosts[0].output
    )
    assert "Host 127.0.0.3 trains on rows 1334 to 2000" in hosts[2].output


LONG_RUN = {**HYPERPARAMETERS, "num_round": "100000", "eta": "0.01"}


@pytest.mark.parametrize(
    ("names", "victim"),
    [
        (["127.0.0.1", "127.0.0.2", "127.0.0.3"], "127.0.0.2"),
        (["127.0.0.1", "127.0.0.2"], "127.0.0.1"),
    ],
    ids=["worker-killed", "master-killed"],
)
def test_killed_host_makes_the_others_fail_with_a_reason(
    local_cluster: LocalCluster, data: Data, names: list[str], victim: str
) -> None:
    hosts = local_cluster.run(names, data, "FullyReplicated", LONG_RUN)
    wait_for_line(hosts[0], "[20]\t")
    killed = next(host for host in hosts if host.name == victim)
    os.killpg(killed.process.pid, signal.SIGKILL)
    killed.process.wait()

    survivors = [host for host in hosts if host is not killed]
    codes = wait_all(survivors)
    assert all(code != 0 for code in codes), codes
    for host in survivors:
        failure = host.failure
        assert failure is not None, host.output[-3000:]
        first_line = failure.splitlines()[0]
        assert first_line.startswith(f"Distributed training failed on host {host.name}")
        assert "stopped or became unreachable" in first_line
        assert not host.model_file.exists()


def test_unresolvable_host_fails_with_a_sentence_naming_it(
    local_cluster: LocalCluster, data: Data
) -> None:
    local_cluster.prepare(["127.0.0.1", "algo-2.invalid"], data)
    host = local_cluster.start("127.0.0.1", extra_env={"XGB_HOST_RESOLVE_TIMEOUT_S": "2"})
    assert wait_all([host]) == [1]
    first_line = (host.failure or "").splitlines()[0]
    assert first_line.startswith(
        "Could not reach host 'algo-2.invalid': its name did not resolve within 2 s"
    )
    assert first_line in host.output


def test_host_that_never_joins_makes_the_master_fail(
    local_cluster: LocalCluster, data: Data
) -> None:
    local_cluster.prepare(["127.0.0.1", "127.0.0.2"], data)
    master = local_cluster.start("127.0.0.1", extra_env={"XGB_COLLECTIVE_TIMEOUT_S": "5"})
    assert wait_all([master]) == [1]
    first_line = (master.failure or "").splitlines()[0]
    assert first_line.startswith(
        "Host 127.0.0.1 could not join the training group through the tracker on 127.0.0.1"
    )
    assert "within 5 s" in first_line


def write_libsvm(path: Path, rows: np.ndarray, width: int) -> None:
    """LIBSVM lines using only the first `width` features (zeros are left out, as usual)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for row in rows:
        pairs = [f"{i}:{v:.6g}" for i, v in enumerate(row[1 : width + 1]) if v != 0]
        lines.append(" ".join([f"{row[0]:g}", *pairs]))
    path.write_text("\n".join(lines) + "\n")


def test_sparse_shards_of_different_widths_train_together(
    local_cluster: LocalCluster, data: Data
) -> None:
    names = ["127.0.0.1", "127.0.0.2"]
    local_cluster.prepare(names, data, "ShardedByS3Key")
    for index, name in enumerate(names):
        inputs = local_cluster.base(name) / "input"
        for folder in ("train", "validation"):
            for old in (inputs / "data" / folder).iterdir():
                old.unlink()
        # The second host's files never mention the last two features.
        write_libsvm(
            inputs / "data" / "train" / "part.libsvm",
            np.concatenate(data.train_parts[index::2]),
            width=10 if index == 0 else 8,
        )
        write_libsvm(inputs / "data" / "validation" / "v.libsvm", data.validation, width=10)
        config = inputs / "config" / "inputdataconfig.json"
        config.write_text(config.read_text().replace("text/csv", "text/libsvm"))
    hosts = [local_cluster.start(name) for name in names]
    assert wait_all(hosts) == [0, 0], "\n\n".join(h.output[-2000:] for h in hosts)
    booster = xgb.Booster(model_file=bytearray(hosts[0].model_file.read_bytes()))
    assert booster.num_features() == 10


def test_distributed_run_resumes_from_the_masters_checkpoint(
    local_cluster: LocalCluster, data: Data
) -> None:
    names = ["127.0.0.1", "127.0.0.2"]
    params = {**HYPERPARAMETERS, "num_round": "20", "checkpoint_frequency": "5"}
    first = local_cluster.run(names, data, hyperparameters=params, checkpoints=True, tag="first")
    assert wait_all(first) == [0, 0], "\n\n".join(h.output[-2000:] for h in first)
    checkpoint = first[0].base / "checkpoints" / "xgboost-checkpoint.000010.ubj"
    assert checkpoint.is_file()
    assert not any((first[1].base / "checkpoints").iterdir())  # only the master writes

    # A restart where only the master's disk holds a checkpoint: every host resumes from it.
    local_cluster.prepare(names, data, hyperparameters=params, checkpoints=True, tag="again")
    resumed = local_cluster.base(names[0], "again") / "checkpoints" / checkpoint.name
    resumed.write_bytes(checkpoint.read_bytes())
    again = [local_cluster.start(name, tag="again") for name in names]
    assert wait_all(again) == [0, 0], "\n\n".join(h.output[-2000:] for h in again)
    for host in again:
        assert "10 round(s) done, continuing at round 10" in host.output
    assert again[0].model_file.read_bytes() == first[0].model_file.read_bytes()
