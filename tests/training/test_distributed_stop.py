"""SIGTERM in a multi-host job: SageMaker signals every host, not at the same instant. The
hosts agree on the stop after each round, so all stop after the same round (one going on
alone would wait in the next round's collective step), and the master saves the checkpoint."""

from __future__ import annotations

import re
import signal

import pytest

from tests.support.distributed import HYPERPARAMETERS, Data
from tests.support.local_cluster import LocalCluster, wait_all, wait_for_line

pytestmark = pytest.mark.slow

_AFTER = re.compile(r"^Training was stopped by SIGTERM during rounds \(after (\d+) round\(s\)\)")


def test_sigterm_to_one_host_then_the_other_stops_both_after_the_same_round(
    local_cluster: LocalCluster, data: Data
) -> None:
    names = ["127.0.0.1", "127.0.0.2"]
    params = {**HYPERPARAMETERS, "num_round": "1000000", "checkpoint_frequency": "1000"}
    master, worker = local_cluster.run(names, data, hyperparameters=params, checkpoints=True)
    wait_for_line(master, "[10]\t")
    worker.process.send_signal(signal.SIGTERM)
    wait_for_line(worker, "Training was stopped by SIGTERM")
    master.process.send_signal(signal.SIGTERM)  # it may be stopping already: it was told
    codes = wait_all([master, worker])
    # A SIGTERM that finds the process exiting (Python has put back the default action) ends it
    # by that action: status 143 as well, as a container reports it (128 + 15).
    codes = [143 if code == -signal.SIGTERM else code for code in codes]
    assert codes == [143, 143], master.output[-2000:] + worker.output[-2000:]

    sentences = [(host.failure or "").splitlines()[0] for host in (master, worker)]
    rounds = [_AFTER.match(sentence) for sentence in sentences]
    assert all(rounds), sentences
    done = int(rounds[0].group(1))
    assert int(rounds[1].group(1)) == done, sentences
    checkpoint = f"xgboost-checkpoint.{done:06d}.ubj"
    assert f"checkpoint {checkpoint} was saved" in sentences[0]
    assert (master.base / "checkpoints" / checkpoint).is_file()
    assert not any((worker.base / "checkpoints").iterdir())  # only the master writes
    assert not master.model_file.exists()
