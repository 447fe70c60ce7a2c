"""The pieces of distributed training that need no second host: hosts, names, shards."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from container.errors import ClientError, DistributedError
from container.settings import DistributedSettings, Settings
from container.training.cluster import (
    Hosts,
    cluster,
    collective_failure,
    hosts_from_config,
    resolve_host,
)
from container.training.job import FailureFile
from container.training.sharding import (
    FULLY_REPLICATED,
    SHARDED_BY_S3_KEY,
    keep_rows,
    plan_shard,
)


def write_files(folder: Path, sizes: list[int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, size in enumerate(sizes):
        path = folder / f"part-{i:02d}.csv"
        path.write_bytes(b"1,2\n" * size)
        files.append(path)
    return files


def all_hosts(names: list[str]) -> list[Hosts]:
    ordered = tuple(sorted(names))
    return [Hosts(names=ordered, current=name) for name in ordered]


# --- hosts from resourceconfig.json ------------------------------------------------------------


def test_hosts_are_sorted_and_any_name_is_accepted() -> None:
    config = {"current_host": "worker-b", "hosts": ["worker-c", "worker-b", "node-a"]}
    hosts = hosts_from_config(config)
    assert hosts.names == ("node-a", "worker-b", "worker-c")
    assert (hosts.current, hosts.index, hosts.count, hosts.master) == ("worker-b", 1, 3, "node-a")


def test_no_resource_config_means_one_local_host() -> None:
    hosts = hosts_from_config({})  # what the job reads when the file is missing
    assert (hosts.count, hosts.index, hosts.master) == (1, 0, hosts.current)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"current_host": "a", "hosts": []}, "non-empty list of names under 'hosts'"),
        ({"current_host": "a", "hosts": "a"}, "non-empty list of names under 'hosts'"),
        ({"current_host": "a", "hosts": ["a", "a"]}, "names a host twice"),
        ({"current_host": "z", "hosts": ["a", "b"]}, "current_host='z', which is not one of"),
    ],
    ids=["empty", "not-a-list", "duplicate", "current-not-listed"],
)
def test_bad_resource_config_is_a_sentence(config: dict, expected: str) -> None:
    with pytest.raises(DistributedError, match=expected):
        hosts_from_config(config)


# --- resolving peers ----------------------------------------------------------------------------


def test_resolve_uses_dns_and_returns_ipv4() -> None:
    assert resolve_host("localhost", timeout_s=5) == "127.0.0.1"
    assert resolve_host("127.0.0.3", timeout_s=5) == "127.0.0.3"


def test_resolve_retries_until_the_name_appears() -> None:
    calls: list[str] = []

    def late_dns(host: str) -> str:
        # Fails like DNS that is not up yet, then answers with a real lookup.
        calls.append(host)
        if len(calls) < 3:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return socket.getaddrinfo(host, None, family=socket.AF_INET)[0][4][0]

    assert resolve_host("localhost", timeout_s=30, lookup=late_dns) == "127.0.0.1"
    assert calls == ["localhost"] * 3


def test_unresolvable_host_fails_with_a_sentence_naming_it() -> None:
    with pytest.raises(DistributedError) as caught:
        resolve_host("algo-7.invalid", timeout_s=1)
    message = caught.value.message
    assert message.startswith("Could not reach host 'algo-7.invalid': its name did not resolve")
    assert "within 1 s" in message and "XGB_HOST_RESOLVE_TIMEOUT_S" in message


# --- settings -----------------------------------------------------------------------------------


def test_distributed_settings_read_from_environment() -> None:
    settings = Settings.from_environ(
        {
            "XGB_TRACKER_PORT": "9200",
            "XGB_HOST_RESOLVE_TIMEOUT_S": "30",
            "XGB_COLLECTIVE_TIMEOUT_S": "45",
        }
    )
    assert settings.distributed == DistributedSettings(
        tracker_port=9200, resolve_timeout_s=30, collective_timeout_s=45
    )
    assert Settings.from_environ({}).distributed == DistributedSettings()


def test_bad_distributed_setting_names_the_variable() -> None:
    with pytest.raises(ValueError, match="XGB_TRACKER_PORT='x' is not an integer"):
        Settings.from_environ({"XGB_TRACKER_PORT": "x"})


# --- one host -----------------------------------------------------------------------------------


def test_one_host_starts_no_collective(tmp_path: Path) -> None:
    failure = tmp_path / "output" / "failure"
    hosts = Hosts(names=("algo-1",), current="algo-1")
    with cluster(hosts, DistributedSettings(), FailureFile(failure)) as group:
        assert (group.rank, group.world_size, group.is_master) == (0, 1, True)
        assert not group.is_distributed
        assert not failure.exists()


# --- shards -------------------------------------------------------------------------------------


def test_fully_replicated_files_are_split_disjoint_complete_and_balanced(tmp_path: Path) -> None:
    files = write_files(tmp_path / "train", [50, 40, 30, 20, 10, 10, 5])
    shares = [
        plan_shard("train", files, FULLY_REPLICATED, hosts).files
        for hosts in all_hosts(["algo-1", "algo-2", "algo-3"])
    ]
    assert sorted(path for share in shares for path in share) == sorted(files)
    assert all(share for share in shares)
    loads = [sum(path.stat().st_size for path in share) for share in shares]
    assert max(loads) - min(loads) <= max(path.stat().st_size for path in files)


def test_fully_replicated_with_fewer_files_than_hosts_splits_rows(tmp_path: Path) -> None:
    files = write_files(tmp_path / "train", [10])
    shards = [plan_shard("train", files, None, hosts) for hosts in all_hosts(["a", "b", "c"])]
    assert all(shard.files == tuple(files) for shard in shards)
    rows = [shard.rows(10) for shard in shards]
    assert [(r.start, r.stop) for r in rows] == [(0, 3), (3, 6), (6, 10)]


def test_row_split_keeps_each_query_on_one_host(tmp_path: Path) -> None:
    files = write_files(tmp_path / "train", [1])
    qid = np.array([1, 1, 1, 2, 2, 3, 3, 3, 3, 4])
    shards = [plan_shard("train", files, None, hosts) for hosts in all_hosts(["a", "b"])]
    first, second = (shard.rows(len(qid), qid) for shard in shards)
    assert (first.start, first.stop, second.start, second.stop) == (0, 5, 5, 10)


def test_sharded_by_s3_key_trains_on_what_the_host_received(tmp_path: Path) -> None:
    files = write_files(tmp_path / "train", [3, 1])
    for hosts in all_hosts(["a", "b", "c"]):
        shard = plan_shard("train", files, SHARDED_BY_S3_KEY, hosts)
        assert shard.files == tuple(files)
        assert shard.rows(4) == slice(0, 4)


def test_sharded_host_without_files_is_a_clear_failure() -> None:
    hosts = all_hosts(["algo-1", "algo-2", "algo-3"])[2]
    with pytest.raises(ClientError) as caught:
        plan_shard("train", [], SHARDED_BY_S3_KEY, hosts)
    assert caught.value.message.startswith(
        "Host algo-3 received no files for channel 'train': ShardedByS3Key hands each of the 3"
    )


def test_host_left_without_rows_is_a_clear_failure(tmp_path: Path) -> None:
    files = write_files(tmp_path / "train", [2])
    shard = plan_shard("train", files, FULLY_REPLICATED, all_hosts(["a", "b", "c"])[0])
    with pytest.raises(ClientError, match=r"Host a has no rows of channel 'train' to train on: 2"):
        shard.rows(2)
    sharded = plan_shard("train", files, SHARDED_BY_S3_KEY, all_hosts(["a", "b"])[1])
    with pytest.raises(ClientError, match=r"Host b has no rows .* its 1 file\(s\) hold no data"):
        sharded.rows(0)


def test_unknown_distribution_lists_the_accepted_ones(tmp_path: Path) -> None:
    files = write_files(tmp_path / "train", [1, 1])
    with pytest.raises(ClientError, match="accepted: FullyReplicated, ShardedByS3Key"):
        plan_shard("train", files, "Replicated", all_hosts(["a", "b"])[0])


def test_one_host_takes_everything(tmp_path: Path) -> None:
    files = write_files(tmp_path / "train", [1, 2])
    shard = plan_shard("train", files, SHARDED_BY_S3_KEY, Hosts(("algo-1",), "algo-1"))
    assert (shard.files, shard.rows(3)) == (tuple(files), slice(0, 3))


@pytest.mark.parametrize(
    ("name", "text", "content_type"),
    [
        ("dense.csv", "".join(f"{i % 2},{i},{i * 2}\n" for i in range(9)), "text/csv"),
        ("sparse.libsvm", "".join(f"{i % 2} 0:{i} 3:{i * 2}\n" for i in range(9)), "text/libsvm"),
    ],
    ids=["arrow-table", "csr-matrix"],
)
def test_keep_rows_cuts_a_loaded_channel(
    tmp_path: Path, name: str, text: str, content_type: str
) -> None:
    from container.training.data_loading import load_channel

    folder = tmp_path / "train"
    folder.mkdir()
    (folder / name).write_text(text)
    dataset = load_channel("train", folder, {"ContentType": content_type}, csv_weights=False)
    parts = [
        keep_rows(dataset, plan_shard("train", [folder / name], None, hosts))
        for hosts in all_hosts(["a", "b"])
    ]
    assert [part.num_rows for part in parts] == [4, 5]
    assert np.concatenate([part.label for part in parts]).tolist() == dataset.label.tolist()
    assert [part.features.shape[0] for part in parts] == [4, 5]
    assert parts[1].features.shape[1] == dataset.features.shape[1]


def test_an_ordinary_xgboost_error_is_not_taken_for_a_lost_peer() -> None:
    import xgboost as xgb

    with pytest.raises(ClientError) as caught:
        try:
            xgb.train({"objective": "no:such"}, xgb.DMatrix(np.ones((4, 2)), np.ones(4)), 1)
        except xgb.core.XGBoostError:
            raise ClientError("XGBoost stopped training") from None
    assert isinstance(caught.value.__context__, xgb.core.XGBoostError)
    assert collective_failure(caught.value) is None
