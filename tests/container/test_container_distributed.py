"""Distributed training in the image: 2 and 3 hosts as containers on a Docker network.

Each test creates its own internal Docker network (no route out of it) and starts one container
of the image per host, as SageMaker (or the SDK's local mode with `instance_count` > 1) does:
`--network NET --name H --hostname H`, each with its own `/opt/ml` tree whose
`resourceconfig.json` lists every host and names the container itself as `current_host`. Peers
find each other through Docker's name service. The distributed model must score on a held-out
set as a single-host container's does, in both sharding modes; a host killed mid-training must
make the others exit non-zero with the reason in `output/failure`.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.distributed import (
    HYPERPARAMETERS,
    TRAIN_FILES,
    Data,
    build_opt_ml,
    holdout_scores,
    make_data,
    metric_lines,
)
from tests.support.docker import run
from tests.support.opt_ml import OptMlTree
from tests.support.waiting import wait_until

from .docker_helpers import DOCKER_POLL_S, container_running

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

LONG_RUN = {**HYPERPARAMETERS, "num_round": "100000", "eta": "0.01"}
"""Rounds enough to still be training when a host is killed; the run never gets to its end."""
HOST_ENV = {"XGB_COLLECTIVE_TIMEOUT_S": "60", "XGB_HOST_RESOLVE_TIMEOUT_S": "30"}
"""Bounds well below the test's own, so a lost host shows up as a failure, not a test timeout."""
EXIT_TIMEOUT_S = 240
"""How long a test waits for a container to exit before calling it hung."""
TOLERANCE = 0.01
"""Largest gap in held-out logloss and accuracy between the distributed and single-host model."""


@dataclass
class Host(OptMlTree):
    """One training container: its `/opt/ml` tree (`base`) and its name (also its host name)."""

    name: str

    def logs(self) -> str:
        result = subprocess.run(
            ["docker", "logs", self.name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
        )
        return result.stdout

    def wait(self) -> int:
        """The container's exit status; fails the test with its log if it does not exit."""
        try:
            result = run(["docker", "wait", self.name], timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"host {self.name} did not exit; its log:\n{self.logs()[-3000:]}")
        return int(result.stdout.strip())


@pytest.fixture(scope="module")
def data() -> Data:
    return make_data()


def docker_run_train(image: str, name: str, opt_ml: Path, network: str) -> None:
    """Start `IMAGE train` detached as host `name` on `network`, with `opt_ml` as /opt/ml."""
    env = [arg for key, value in HOST_ENV.items() for arg in ("-e", f"{key}={value}")]
    run(
        [
            "docker",
            "run",
            "--detach",
            "--network",
            network,
            "--name",
            name,
            "--hostname",
            name,
            "-v",
            f"{opt_ml}:/opt/ml",
            *env,
            image,
            "train",
        ]
    )


class DockerCluster:
    """Training hosts as containers on one internal Docker network made for the test."""

    def __init__(self, image: str, root: Path, container_name: Callable[[str], str]) -> None:
        self.image = image
        self.root = root
        self.container_name = container_name
        self.network = f"xgb-byoc-test-net-{uuid.uuid4().hex[:8]}"
        self.names: list[str] = []
        # --internal: the hosts reach each other and nothing outside the network.
        run(["docker", "network", "create", "--internal", self.network])

    def run(
        self,
        count: int,
        data: Data,
        distribution: str,
        hyperparameters: dict[str, str] = HYPERPARAMETERS,
    ) -> list[Host]:
        """Start `count` hosts (sorted by name: the master first) training on `data`."""
        # The purpose comes first in a container's name, so algo-1 sorts first: the master.
        names = [self.container_name(f"algo-{number}") for number in range(1, count + 1)]
        assert names == sorted(names)
        self.names.extend(names)
        hosts = [
            Host(
                base=build_opt_ml(
                    self.root, name, names, name, data, distribution, hyperparameters, "eth0"
                ).base,
                name=name,
            )
            for name in names
        ]
        for host in hosts:
            docker_run_train(self.image, host.name, host.base, self.network)
        return hosts

    def remove(self) -> None:
        """Remove the containers (the network cannot go while they are attached), then it."""
        for name in self.names:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
        subprocess.run(["docker", "network", "rm", self.network], capture_output=True, timeout=60)


@pytest.fixture
def docker_cluster(
    image: str, tmp_path: Path, container_name: Callable[[str], str]
) -> Iterator[DockerCluster]:
    cluster = DockerCluster(image, tmp_path, container_name)
    yield cluster
    cluster.remove()


def all_logs(hosts: list[Host]) -> str:
    return "\n\n".join(f"--- {host.name}:\n{host.logs()[-2000:]}" for host in hosts)


@pytest.fixture(scope="module")
def single_host_scores(
    image: str, data: Data, tmp_path_factory: pytest.TempPathFactory
) -> tuple[float, float]:
    """Held-out scores of the model one container trains on all the data (no network at all)."""
    name = f"xgb-byoc-test-single-{uuid.uuid4().hex[:8]}"
    job = build_opt_ml(
        tmp_path_factory.mktemp("single"),
        "opt_ml",
        [name],
        name,
        data,
        "FullyReplicated",
        HYPERPARAMETERS,
        "eth0",
    )
    host = Host(base=job.base, name=name)
    try:
        docker_run_train(image, name, host.base, "none")
        code = host.wait()
        output = host.logs()
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
    assert code == 0, output[-3000:]
    return holdout_scores(host.model_file, data)


@pytest.mark.parametrize(
    ("count", "distribution"),
    [
        (2, "ShardedByS3Key"),
        (2, "FullyReplicated"),
        (3, "ShardedByS3Key"),
        (3, "FullyReplicated"),
    ],
    ids=["2-hosts-sharded", "2-hosts-replicated", "3-hosts-sharded", "3-hosts-replicated"],
)
def test_containers_train_one_model_as_good_as_one_host(
    docker_cluster: DockerCluster,
    data: Data,
    single_host_scores: tuple[float, float],
    count: int,
    distribution: str,
) -> None:
    hosts = docker_cluster.run(count, data, distribution)
    codes = [host.wait() for host in hosts]
    assert codes == [0] * count, all_logs(hosts)

    master, *others = hosts
    assert master.model_file.is_file()
    assert all(not host.model_file.exists() for host in others)
    assert all(host.failure is None for host in hosts)
    outputs = [host.logs() for host in hosts]
    for rank, (host, output) in enumerate(zip(hosts, outputs, strict=True)):
        assert f"Host {host.name} joined as rank {rank} of {count}." in output
    # Metrics once, by the master: one line per round.
    assert len(metric_lines(outputs[0])) == int(HYPERPARAMETERS["num_round"])
    assert all(metric_lines(output) == [] for output in outputs[1:])
    for index, (host, output) in enumerate(zip(hosts, outputs, strict=True)):
        if distribution == "FullyReplicated":
            share = TRAIN_FILES // count
            assert f"host {host.name} trains on {share} of its {TRAIN_FILES} files" in output
        else:
            # Each host reads all it received: every `count`-th file, from its own index.
            rows = sum(len(part) for part in data.train_parts[index::count])
            assert f"Channel 'train': {rows} rows x 10 features" in output

    logloss, accuracy = holdout_scores(master.model_file, data)
    single_logloss, single_accuracy = single_host_scores
    assert abs(logloss - single_logloss) <= TOLERANCE
    assert abs(accuracy - single_accuracy) <= TOLERANCE


def wait_for_round(host: Host, round_number: int) -> None:
    """Poll the host's log until it prints the metric line of `round_number`."""
    marker = f"[{round_number}]\t"
    wait_until(
        lambda: marker in host.logs(),
        EXIT_TIMEOUT_S,
        f"{marker!r} from host {host.name}",
        alive=lambda: container_running(host.name),
        context=lambda: host.logs()[-3000:],
        poll_s=DOCKER_POLL_S,
    )


@pytest.mark.parametrize(
    ("count", "victim"),
    [(3, 1), (2, 0)],
    ids=["worker-killed", "master-killed"],
)
def test_killed_container_makes_the_others_fail_with_a_reason(
    docker_cluster: DockerCluster, data: Data, count: int, victim: int
) -> None:
    hosts = docker_cluster.run(count, data, "FullyReplicated", LONG_RUN)
    wait_for_round(hosts[0], 20)
    killed = hosts[victim]
    run(["docker", "kill", killed.name])

    survivors = [host for host in hosts if host is not killed]
    codes = [host.wait() for host in survivors]
    assert all(code != 0 for code in codes), (codes, all_logs(survivors))
    for host in survivors:
        failure = host.failure
        assert failure is not None, host.logs()[-3000:]
        first_line = failure.splitlines()[0]
        assert not host.model_file.exists()
        if first_line.startswith(f"Distributed training ended on host {host.name}"):
            # XGBoost ended this host with exit(-1) on the tracker's word: the sentence left
            # in place while the group was up is the reason.
            assert "another host failed or became unreachable" in first_line
            continue
        assert first_line.startswith(f"Distributed training failed on host {host.name}"), failure
        assert "stopped or became unreachable" in first_line
        assert first_line in host.logs()
