"""The Python metrics of a 2-host job: each value is the one over every row of the channel (the
hosts' confusion counts and sums added with XGBoost's collective), not the master's share."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.distributed import Data
from tests.support.local_cluster import LocalCluster, wait_all
from tests.support.python_metrics import JOBS, expected_scores, job_rows, round_scores

pytestmark = pytest.mark.slow

HOSTS = ["127.0.0.1", "localhost"]


@pytest.mark.parametrize(("objective", "classes", "names"), JOBS, ids=[j[0] for j in JOBS])
def test_two_hosts_print_the_value_over_all_rows(
    local_cluster: LocalCluster, objective: str, classes: int, names: tuple[str, ...]
) -> None:
    rows = job_rows(classes, seed=21, n=1200)
    train, validation = rows[:800], rows[800:]
    data = Data(
        train_parts=np.array_split(train, 4),
        validation=validation,
        holdout_x=validation[:, 1:],
        holdout_y=validation[:, 0],
    )
    hyperparameters = {
        "objective": objective,
        "num_round": "6",
        "max_depth": "3",
        "eval_metric": ",".join(names),
        "nthread": "1",
    }
    if classes > 2:
        hyperparameters["num_class"] = str(classes)
    hosts = local_cluster.run(HOSTS, data, "FullyReplicated", hyperparameters)
    assert wait_all(hosts) == [0, 0], "\n\n".join(h.output[-2000:] for h in hosts)
    master = hosts[0]
    assert "trains on rows 1 to 200 of the 400 rows of channel 'validation'" in master.output
    last = round_scores(master.output)[-1]

    everything = {"train": train, "validation": validation}
    for channel, part in everything.items():
        expected = expected_scores(master.model_file, part, objective, names)
        for name in names:
            assert last[f"{channel}-{name}"] == pytest.approx(expected[name], abs=6e-6), name

    # The check can tell: on the master's share alone, the values differ.
    share = expected_scores(master.model_file, validation[:200], objective, names)
    assert any(abs(share[n] - last[f"validation-{n}"]) > 1e-4 for n in names)
