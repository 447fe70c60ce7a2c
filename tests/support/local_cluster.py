"""Hosts as processes on this machine: one `./train` and one `/opt/ml` tree each, on the
loopback network, with the tracker on a free port (tests/training's `local_cluster` fixture)."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.processes import free_port, start_group

from .distributed import HYPERPARAMETERS, Data, build_opt_ml
from .opt_ml import OptMlTree
from .paths import REPO
from .waiting import wait_until

VENV_BIN = REPO / ".venv" / "bin"
EXIT_TIMEOUT_S = 240
"""How long a test waits for a host to exit before calling it hung."""


@dataclass
class Host(OptMlTree):
    """One `./train` process: its `/opt/ml` tree (`base`), host name, log and process."""

    name: str
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_host(base: Path, name: str, port: int, extra_env: dict[str, str]) -> Host:
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAGEMAKER_BASE_DIR": str(base),
        "XGB_TRACKER_PORT": str(port),
        "XGB_COLLECTIVE_TIMEOUT_S": "60",
        "XGB_HOST_RESOLVE_TIMEOUT_S": "10",
        **extra_env,
    }
    log = base.parent / f"{base.name}.log"
    process = start_group([str(REPO / "train")], env, log, cwd=REPO)
    return Host(base=base, name=name, log=log, process=process)


class LocalCluster:
    """Hosts as processes on this machine: one `/opt/ml` tree each, one tracker port per run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports: dict[str, int] = {}
        self.started: list[Host] = []

    def base(self, name: str, tag: str = "run") -> Path:
        return self.root / tag / self.folder(name)

    @staticmethod
    def folder(name: str) -> str:
        return f"host-{name}"

    def prepare(
        self,
        names: list[str],
        data: Data,
        distribution: str = "FullyReplicated",
        hyperparameters: dict[str, str] | None = None,
        checkpoints: bool = False,
        tag: str = "run",
    ) -> None:
        self.ports[tag] = free_port()
        for name in names:
            job = build_opt_ml(
                self.root / tag,
                self.folder(name),
                names,
                name,
                data,
                distribution,
                hyperparameters or HYPERPARAMETERS,
                "lo",
            )
            if checkpoints:
                (job.base / "checkpoints").mkdir()

    def start(self, name: str, tag: str = "run", extra_env: dict[str, str] | None = None) -> Host:
        host = start_host(self.base(name, tag), name, self.ports[tag], extra_env or {})
        self.started.append(host)
        return host

    def run(self, names: list[str], data: Data, *args, tag: str = "run", **kwargs) -> list[Host]:
        """Prepare every host and start them all, in sorted order (the master first)."""
        self.prepare(names, data, *args, tag=tag, **kwargs)
        return [self.start(name, tag) for name in sorted(names)]

    def stop_all(self) -> None:
        for host in self.started:
            if host.process.poll() is None:
                os.killpg(host.process.pid, signal.SIGKILL)
                host.process.wait()


def wait_all(hosts: list[Host]) -> list[int]:
    codes = []
    for host in hosts:
        try:
            codes.append(host.process.wait(timeout=EXIT_TIMEOUT_S))
        except subprocess.TimeoutExpired:
            pytest.fail(f"host {host.name} did not exit; its log:\n{host.output[-3000:]}")
    return codes


def wait_for_line(host: Host, text: str) -> None:
    wait_until(
        lambda: text in host.output,
        EXIT_TIMEOUT_S,
        f"{text!r} from host {host.name}",
        alive=lambda: host.process.poll() is None,
        context=lambda: host.output[-3000:],
    )
