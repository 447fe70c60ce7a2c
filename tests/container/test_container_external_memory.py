"""External memory in the image: a job whose data does not fit under `docker run --memory`.

4,000,000 rows x 50 features are a 763 MiB float32 matrix (and 763 MiB of CSR for the LIBSVM
copy, half its values left out). The container gets 448 MiB with swap off (`--memory-swap`
equal to `--memory`): 59% of the matrix, and less than an in-memory job needs. With
`external_memory=auto` the job sees its cgroup limit, trains from disk and writes its model;
with `external_memory=false` it stops before reading a row, with a sentence naming the limit,
the data size and the switch, rather than be ended by the kernel's OOM killer (exit 137).

Features are small whole numbers, so the files are short and quick to parse; the float32
matrix XGBoost is handed is as big as any other of that shape.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pytest

from tests.support.docker import run

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]

ROWS, FEATURES = 4_000_000, 50
MEMORY = "448m"
MEMORY_MIB = 448
FLOAT32_MIB = ROWS * FEATURES * 4 / (1 << 20)
HYPERPARAMETERS = {"num_round": "3", "max_depth": "4", "eta": "0.3", "nthread": "2"}
PIECE_ROWS = 500_000


def _pieces(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(label, features 0..99 as uint8) in pieces, so the test's own memory stays small."""
    rng = np.random.default_rng(seed)
    pieces = []
    for _ in range(ROWS // PIECE_ROWS):
        x = rng.integers(0, 100, size=(PIECE_ROWS, FEATURES), dtype=np.uint8)
        y = x[:, 0] * 0.5 + x[:, 1] * 0.25 + rng.normal(scale=2.0, size=PIECE_ROWS)
        pieces.append((np.round(y, 1), x))
    return pieces


def write_csv(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    options = pa_csv.WriteOptions(include_header=False)
    with pa_csv.CSVWriter(path, _csv_schema(), write_options=options) as writer:
        for label, x in _pieces(1):
            writer.write_table(_csv_table(label, x))


def _csv_schema() -> pa.Schema:
    return pa.schema([("y", pa.float64())] + [(f"f{i}", pa.uint8()) for i in range(FEATURES)])


def _csv_table(label: np.ndarray, x: np.ndarray) -> pa.Table:
    columns = [pa.array(label)] + [pa.array(x[:, i]) for i in range(FEATURES)]
    return pa.Table.from_arrays(columns, schema=_csv_schema())


def write_libsvm(path: Path) -> None:
    """Each row keeps its values of 50 or more (about half): `index:value` tokens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    schema = pa.schema([("line", pa.string())])
    with pa_csv.CSVWriter(path, schema, write_options=options) as writer:
        for label, x in _pieces(2):
            tokens = [
                pc.binary_join_element_wise(
                    pa.array(np.full(len(x), f"{i}:")),
                    pc.cast(pa.array(x[:, i], mask=x[:, i] < 50), pa.string()),
                    "",
                )
                for i in range(FEATURES)
            ]
            lines = pc.binary_join_element_wise(
                pc.cast(pa.array(label), pa.string()), *tokens, " ", null_handling="skip"
            )
            writer.write_table(pa.Table.from_arrays([lines], schema=schema))


def opt_ml_tree(root: Path, content_type: str, setting: str) -> Path:
    opt_ml = root / f"opt_ml-{setting}"
    config = opt_ml / "input" / "config"
    config.mkdir(parents=True)
    (opt_ml / "model").mkdir()
    (opt_ml / "output").mkdir()
    (config / "hyperparameters.json").write_text(
        json.dumps({**HYPERPARAMETERS, "external_memory": setting})
    )
    (config / "inputdataconfig.json").write_text(
        json.dumps({"train": {"ContentType": content_type, "TrainingInputMode": "File"}})
    )
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
    )
    return opt_ml


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("external-memory-data")
    write_csv(root / "csv" / "train.csv")
    write_libsvm(root / "libsvm" / "train.libsvm")
    return root


def train_under_limit(image: str, opt_ml: Path, data: Path, name: str) -> tuple[int, str, float]:
    """`docker run --memory 448m --memory-swap 448m`; the exit status, the log and seconds."""
    started = time.monotonic()
    result = run(
        [
            "docker",
            "run",
            "--name",
            name,
            f"--memory={MEMORY}",
            f"--memory-swap={MEMORY}",
            "-v",
            f"{opt_ml}:/opt/ml",
            "-v",
            f"{data}:/opt/ml/input/data/train:ro",
            image,
            "train",
        ],
        timeout=1200,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


def oom_killed(name: str) -> bool:
    result = run(["docker", "inspect", "--format", "{{.State.OOMKilled}}", name])
    return result.stdout.strip() == "true"


@pytest.mark.parametrize(
    ("content_type", "folder"),
    [("text/csv", "csv"), ("text/libsvm", "libsvm")],
    ids=["csv", "libsvm"],
)
def test_a_job_larger_than_the_memory_limit_trains_from_disk(
    image: str, data_dir: Path, tmp_path: Path, container_name, content_type: str, folder: str
) -> None:
    assert MEMORY_MIB <= 0.6 * FLOAT32_MIB
    opt_ml = opt_ml_tree(tmp_path, content_type, "auto")
    name = container_name(f"extmem-{folder}")
    status, log, seconds = train_under_limit(image, opt_ml, data_dir / folder, name)

    assert status == 0, f"{'OOM-killed; ' if oom_killed(name) else ''}{log[-4000:]}"
    assert f"the limit is {MEMORY_MIB} MiB (cgroup memory" in log  # v2 memory.max or v1
    assert "Training from external memory" in log
    assert "into ExtMemQuantileDMatrix" in log
    model = opt_ml / "model" / "xgboost-model"
    assert model.is_file() and model.stat().st_size > 0
    assert json.loads(model.read_text())["learner"]["attributes"] is not None
    assert "[2]\ttrain-rmse:" in log
    assert not (opt_ml / "output" / "failure").exists()
    print(f"{folder}: trained under {MEMORY} in {seconds:.0f} s")


def test_external_memory_off_fails_with_the_figures_not_the_oom_killer(
    image: str, data_dir: Path, tmp_path: Path, container_name
) -> None:
    opt_ml = opt_ml_tree(tmp_path, "text/csv", "false")
    name = container_name("extmem-off")
    status, log, _ = train_under_limit(image, opt_ml, data_dir / "csv", name)

    assert status == 1, log[-4000:]
    assert not oom_killed(name)
    failure = (opt_ml / "output" / "failure").read_text().splitlines()[0]
    assert failure.startswith("The data takes about ")
    assert f"more than the memory limit of {MEMORY_MIB} MiB (cgroup memory" in failure
    assert "set hyperparameter external_memory to true or auto" in failure
    assert not (opt_ml / "model" / "xgboost-model").exists()
