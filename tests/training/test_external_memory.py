"""External memory: the rule that picks it, and real `./train` jobs that train from disk.

A job forced to external memory must end with the model the in-memory job makes: the same
rounds (early stopping on the validation channel included) and metrics within 1% on held-out
rows, for every content type, with checkpoints and on several hosts. The memory limit itself
is exercised in the image (`tests/container/test_container_external_memory.py`).
"""

from __future__ import annotations

import gzip
import io
import re
import signal
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
import xgboost as xgb
from sagemaker_training import recordio

from container.errors import ClientError
from container.training import data_loading, external_memory, spill
from container.training.external_memory import RUNTIME_BYTES, decide, memory_limit
from container.training.hyperparameters import parse_hyperparameters
from tests.support.distributed import HYPERPARAMETERS as DISTRIBUTED
from tests.support.distributed import Data, holdout_scores
from tests.support.local_cluster import LocalCluster, wait_all
from tests.support.opt_ml import Job, make_job

from .helpers import csv_text, regression_rows

MIB = 1 << 20
LIMIT = (1024 * MIB, "cgroup memory.max")


# --- The rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "data_mib", "histogram", "external"),
    [
        ("auto", 100, True, False),
        ("auto", 415, True, False),  # 2 x 415 MiB + 192 MiB = 1,022 MiB: fits in 1 GiB
        ("auto", 417, True, True),  # 1,026 MiB does not
        ("auto", 4000, True, True),
        ("auto", 4000, False, False),  # not hist: XGBoost's external matrix cannot serve
        ("true", 1, True, True),
        ("false", 415, True, False),
    ],
    ids=["small", "just-fits", "just-over", "large", "large-not-hist", "forced-on", "forced-off"],
)
def test_the_rule_compares_twice_the_data_plus_the_runtime_with_the_limit(
    setting: str, data_mib: int, histogram: bool, external: bool
) -> None:
    decision = decide(setting, data_mib * MIB, LIMIT, histogram)
    assert decision.external is external
    assert decision.needed_bytes == 2 * data_mib * MIB + RUNTIME_BYTES
    assert f"external_memory={'false' if setting == 'auto' and not histogram else setting}" in (
        decision.sentence()
    )
    assert ("Training from external memory" in decision.sentence()) is external


def test_forced_off_and_too_big_fails_before_reading_with_the_figures_and_the_switch() -> None:
    with pytest.raises(ClientError) as caught:
        decide("false", 763 * MIB, (448 * MIB, "cgroup memory.max"))
    assert caught.value.message == (
        "The data takes about 763 MiB in memory and training in memory needs about 1,718 MiB, "
        "more than the memory limit of 448 MiB (cgroup memory.max); set hyperparameter "
        "external_memory to true or auto to train from disk, or use an instance with more memory."
    )


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"memory.max": "469762048\n"}, (469762048, "cgroup memory.max")),
        ({"memory.max": "max\n"}, None),
        (
            {"memory/memory.limit_in_bytes": "1073741824\n"},
            (1073741824, "cgroup memory/memory.limit_in_bytes"),
        ),
        ({"memory/memory.limit_in_bytes": "9223372036854771712\n"}, None),
        ({}, None),
    ],
    ids=["v2-limit", "v2-unlimited", "v1-limit", "v1-unlimited", "no-cgroup"],
)
def test_memory_limit_reads_the_cgroup_else_the_machine(
    tmp_path: Path, files: dict[str, str], expected: tuple[int, str] | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    machine = (memory_limit(tmp_path / "absent")[0], "the machine's memory")
    assert memory_limit(tmp_path) == (expected or machine)


def test_this_container_limit_is_read() -> None:
    limit, source = memory_limit()
    assert limit > 0
    assert source in (
        "cgroup memory.max",
        "cgroup memory/memory.limit_in_bytes",
        "the machine's memory",
    )


def test_estimates_are_near_the_features_size_in_memory(tmp_path: Path) -> None:
    rows = regression_rows(20000, 12, seed=3)
    float32 = rows.shape[0] * (rows.shape[1] - 1) * 4
    csv_file = tmp_path / "a.csv"
    csv_file.write_text(csv_text(rows))
    gz_file = tmp_path / "a.csv.gz"
    gz_file.write_bytes(gzip.compress(csv_file.read_bytes()))
    parquet_file = tmp_path / "a.parquet"
    pq.write_table(pa.table({f"c{i}": rows[:, i] for i in range(rows.shape[1])}), parquet_file)
    libsvm_file = tmp_path / "a.libsvm"
    libsvm_file.write_text(_libsvm(rows))

    estimate = external_memory.estimate_data_bytes
    # CSV counts the label column too: an estimate from above, within a column's worth.
    assert float32 <= estimate([csv_file], data_loading.CSV) <= float32 * 13 / 12 * 1.02
    assert estimate([gz_file], data_loading.CSV) == pytest.approx(
        estimate([csv_file], data_loading.CSV), rel=1e-6
    )
    assert estimate([parquet_file], data_loading.PARQUET) == float32
    csr = data_loading.load_channel(
        "t", tmp_path, {"ContentType": "text/libsvm"}, False, [libsvm_file]
    )
    stored = (csr.features.nnz + csr.num_rows) * 8  # value and index; a row offset
    assert estimate([libsvm_file], data_loading.LIBSVM) == pytest.approx(stored, rel=0.02)


def test_sparse_channels_count_what_reading_them_whole_takes(tmp_path: Path) -> None:
    """A LIBSVM channel read into memory peaks at about 9x its CSR size, so a limit that holds
    a dense channel of the same size twice over sends the sparse one to external memory."""
    rows = regression_rows(20000, 12, seed=3)
    (tmp_path / "a.libsvm").write_text(_libsvm(rows))
    (tmp_path / "a.csv").write_text(csv_text(rows))
    sparse = external_memory.Share([tmp_path / "a.libsvm"], data_loading.LIBSVM)
    dense = external_memory.Share([tmp_path / "a.csv"], data_loading.CSV)
    size = external_memory.estimate_data_bytes(sparse.files, sparse.content_type)
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "memory.max").write_text(f"{RUNTIME_BYTES + 4 * size}\n")
    assert external_memory.plan("auto", [sparse], True, cgroup).needed_bytes == (
        RUNTIME_BYTES + 9 * size
    )
    assert external_memory.plan("auto", [sparse], True, cgroup).external
    assert not external_memory.plan("auto", [dense], True, cgroup).external


def test_a_libsvm_line_of_a_label_and_a_space_is_a_row_without_features(tmp_path: Path) -> None:
    (tmp_path / "a.libsvm").write_text("1 0:2.5 3:1\n-2.5 \n0 1:4\n")
    for external in (False, True):
        dataset = data_loading.load_channel(
            "train", tmp_path, {"ContentType": "text/libsvm"}, False, external=external
        )
        np.testing.assert_array_equal(dataset.label, [1, -2.5, 0])
        assert dataset.num_columns == 4
        if external:
            dataset.features.close()


def test_the_sparse_spill_gives_back_its_pieces_joined_into_chunks(tmp_path: Path) -> None:
    """Pieces of different widths in, chunks of about `chunk_bytes` out, the same rows."""
    rng = np.random.default_rng(0)
    pieces = [
        sp.random(rows, width, density=0.3, format="csr", dtype=np.float32, random_state=seed)
        for seed, (rows, width) in enumerate([(300, 7), (500, 12), (40, 3), (800, 12), (10, 1)])
    ]
    stored = spill.SparseSpill(tmp_path, chunk_bytes=20_000)
    for piece in pieces:
        stored.append(piece)
    stored.finish()
    stored.widen(int(rng.integers(12, 15)))
    chunks = list(stored.chunks())
    stored.close()
    assert 2 < len(chunks) < len(pieces) + 1
    assert [c[1].shape[1] for c in chunks] == [stored.num_columns] * len(chunks)
    joined = sp.vstack([c[1] for c in chunks]).toarray()
    expected = np.vstack([np.pad(p.toarray(), ((0, 0), (0, 12 - p.shape[1]))) for p in pieces])
    np.testing.assert_array_equal(joined[:, :12], expected)
    assert not joined[:, 12:].any()
    assert chunks[-1][0].stop == sum(p.shape[0] for p in pieces)


# --- Real jobs: in memory and from disk give the same model ----------------------------------

ROWS, FEATURES = 12000, 8
HYPERPARAMETERS = {
    "num_round": 100,
    "max_depth": 6,
    "eta": 0.3,
    "early_stopping_rounds": 5,
    "seed": 3,
    "nthread": 2,
}


def _rows() -> np.ndarray:
    """Label first: a noisy non-linear function of the features, so early stopping ends the
    job (train rows, validation rows, then held-out rows)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(ROWS + 4000, FEATURES))
    y = 3 * np.sin(x[:, 0]) + x[:, 1] * x[:, 2] + rng.normal(scale=1.0, size=len(x))
    return np.column_stack([y, x])


def _load(model: Path) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(bytearray(model.read_bytes()))
    return booster


def _libsvm(rows: np.ndarray) -> str:
    """LIBSVM lines; values below -0.5 left out (so rows are sparse)."""
    return "".join(
        f"{row[0]:.7g} "
        + " ".join(f"{i}:{v:.7g}" for i, v in enumerate(row[1:]) if v > -0.5)
        + "\n"
        for row in rows
    )


def _parquet(rows: np.ndarray) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({f"c{i}": rows[:, i] for i in range(rows.shape[1])}), sink)
    return sink.getvalue()


def _recordio(rows: np.ndarray) -> bytes:
    sink = io.BytesIO()
    features = rows[:, 1:].copy()
    features[features < -0.5] = 0
    recordio._write_spmatrix_to_sparse_tensor(sink, sp.csr_matrix(features), rows[:, 0])
    return sink.getvalue()


def _holdout_matrix(rows: np.ndarray, content_type: str) -> xgb.DMatrix:
    """The held-out rows as each format gives them to the model (sparse ones lose values)."""
    features = rows[:, 1:].copy()
    if content_type == data_loading.LIBSVM:
        features[features <= -0.5] = np.nan
    if content_type == data_loading.RECORDIO_PROTOBUF:
        features[features < -0.5] = 0
        return xgb.DMatrix(sp.csr_matrix(features))
    return xgb.DMatrix(features)


FORMATS = {
    data_loading.CSV: csv_text,
    data_loading.LIBSVM: _libsvm,
    data_loading.PARQUET: _parquet,
    data_loading.RECORDIO_PROTOBUF: _recordio,
}


def _job(root: Path, content_type: str, setting: str, **extra: object) -> Job:
    rows = _rows()
    train, validation = rows[:ROWS], rows[ROWS : ROWS + 2000]
    encode = FORMATS[content_type]
    parts = np.array_split(train, 3)
    hyperparameters = {**HYPERPARAMETERS, "external_memory": setting, **extra}
    return make_job(
        root / setting,
        {key: value for key, value in hyperparameters.items() if value is not None},
        {
            "train": {
                "content_type": content_type,
                "files": {f"part-{i}": encode(part) for i, part in enumerate(parts)},
            },
            "validation": {"content_type": content_type, "files": {"v": encode(validation)}},
        },
    )


def _rmse(model: Path, rows: np.ndarray, content_type: str) -> float:
    booster = _load(model)
    predicted = booster.predict(_holdout_matrix(rows[:, :], content_type))
    return float(np.sqrt(np.mean((predicted - rows[:, 0]) ** 2)))


@pytest.mark.parametrize(
    "content_type", list(FORMATS), ids=["csv", "libsvm", "parquet", "recordio"]
)
def test_external_memory_model_is_as_good_as_in_memory(tmp_path: Path, content_type: str) -> None:
    holdout = _rows()[ROWS + 2000 :]
    results = {}
    for setting in ("false", "true"):
        job = _job(tmp_path, content_type, setting)
        result = job.run()
        assert result.returncode == 0, result.stdout[-3000:]
        external = setting == "true"
        assert ("Training from external memory" in result.stdout) is external
        matrix = "ExtMemQuantileDMatrix" if external else "QuantileDMatrix"
        assert f"into {matrix} in" in result.stdout
        assert "remove it manually" not in result.stdout + result.stderr
        booster = _load(job.model_file)
        results[setting] = (
            booster.num_boosted_rounds(),
            booster.attr("best_iteration"),
            _rmse(job.model_file, holdout, content_type),
        )
        assert not list(job.channel_dir("train").parent.glob(".*")), "temporary files left"
    (rounds, best, rmse), (ext_rounds, ext_best, ext_rmse) = results["false"], results["true"]
    assert rounds < HYPERPARAMETERS["num_round"], "early stopping should have ended the job"
    assert (ext_rounds, ext_best) == (rounds, best)
    assert ext_rmse == pytest.approx(rmse, rel=0.01)


def test_ranking_query_groups_reach_the_external_matrix(tmp_path: Path) -> None:
    """LIBSVM with `qid:`: the groups go with each batch; the model is the in-memory one's."""
    rng = np.random.default_rng(8)
    lines = []
    for query in range(400):
        for _ in range(10):
            x = rng.normal(size=4)
            relevance = int(np.clip(x[0] + 0.5 * x[1] + rng.normal(scale=0.3) + 1.5, 0, 3))
            features = " ".join(f"{i}:{v:.5g}" for i, v in enumerate(x))
            lines.append(f"{relevance} qid:{query} {features}\n")
    text = "".join(lines)
    holdout = xgb.DMatrix(np.random.default_rng(9).normal(size=(50, 4)))
    predictions = []
    for setting in ("false", "true"):
        job = make_job(
            tmp_path / setting,
            {"num_round": 20, "objective": "rank:ndcg", "external_memory": setting, "seed": 1},
            {"train": {"content_type": "text/libsvm", "files": {"a": text}}},
        )
        result = job.run()
        assert result.returncode == 0, result.stdout[-3000:]
        assert "train-ndcg" in result.stdout
        predictions.append(_load(job.model_file).predict(holdout))
    np.testing.assert_allclose(predictions[0], predictions[1], rtol=1e-5, atol=1e-6)


def test_external_memory_resumes_from_its_checkpoints(tmp_path: Path) -> None:
    plain = {"early_stopping_rounds": None}
    whole = _job(tmp_path / "whole", data_loading.CSV, "true", num_round=12, **plain)
    assert whole.run().returncode == 0
    first = _job(tmp_path / "first", data_loading.CSV, "true", num_round=8, **plain)
    (first.base / "checkpoints").mkdir()
    assert first.run().returncode == 0
    resumed = first
    config = resumed.base / "input" / "config" / "hyperparameters.json"
    config.write_text(config.read_text().replace('"num_round": "8"', '"num_round": "12"'))
    result = resumed.run()
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Resuming from checkpoint" in result.stdout
    assert "8 round(s) done" in result.stdout
    holdout = _rows()[ROWS + 2000 :, 1:]
    predict = [_load(job.model_file).predict(xgb.DMatrix(holdout)) for job in (whole, resumed)]
    np.testing.assert_allclose(predict[0], predict[1], rtol=1e-6)


def test_sigterm_during_the_external_matrix_build_stops_the_job(tmp_path: Path) -> None:
    rows = regression_rows(300_000, 20, seed=1)
    job = make_job(
        tmp_path,
        {"num_round": 5, "external_memory": "true"},
        {"train": {"content_type": "text/csv", "files": {"a.csv": csv_text(rows, "%.5g")}}},
    )
    process = job.start()
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    for line in process.stdout:
        if "Phase: matrix build" in line:
            break
        assert time.monotonic() < deadline and process.poll() is None, "no matrix build phase"
    process.send_signal(signal.SIGTERM)
    rest = process.stdout.read()
    assert process.wait(timeout=120) == 143, rest[-3000:]
    assert job.failure is not None
    assert re.match(r"Training was stopped by SIGTERM during matrix build", job.failure)
    assert not job.model_file.exists()
    assert not list(job.channel_dir("train").parent.glob(".*")), "temporary files left"


# --- Several hosts ---------------------------------------------------------------------------


@pytest.mark.slow
def test_each_host_trains_its_share_from_external_memory(
    local_cluster: LocalCluster,
    data: Data,
    single_host_scores: tuple[float, float],
) -> None:
    """Three hosts: the train files are split between them, the one validation file's rows
    are (a window on each host's spill)."""
    hosts = local_cluster.run(
        ["127.0.0.1", "127.0.0.2", "127.0.0.3"],
        data,
        "FullyReplicated",
        {**DISTRIBUTED, "external_memory": "true"},
    )
    assert wait_all(hosts) == [0, 0, 0], "\n\n".join(h.output[-2000:] for h in hosts)
    for host in hosts:
        assert "Training from external memory" in host.output
        assert "into ExtMemQuantileDMatrix" in host.output
    assert "trains on rows 1 to 666 of the 2000 rows of channel 'validation'" in hosts[0].output
    logloss, accuracy = holdout_scores(hosts[0].model_file, data)
    single_logloss, single_accuracy = single_host_scores
    assert abs(logloss - single_logloss) <= 0.01
    assert abs(accuracy - single_accuracy) <= 0.01


def test_forcing_external_memory_needs_hist() -> None:
    with pytest.raises(ClientError, match="external_memory'=true needs tree_method hist"):
        parse_hyperparameters({"num_round": 1, "external_memory": True, "tree_method": "approx"})
    assert parse_hyperparameters({"num_round": 1, "external_memory": "false"}).external_memory == (
        "false"
    )
