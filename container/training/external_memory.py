"""Training from disk when the data would not fit in memory: the decision and the cache.

XGBoost's `ExtMemQuantileDMatrix` keeps its binned pages in files (`cache_prefix`) and reads
them back each round, so memory holds about one batch at a time. The job feeds it from the
spill (`spill.FeatureSpill` for CSV and Parquet, `spill.SparseSpill` for LIBSVM and
RecordIO-protobuf), which already streams each channel from its files.

The decision (hyperparameter `external_memory`: `auto`, `true` or `false`) is taken before any
row is read, from this host's share of the channels:

    data      = the features' size in memory (float32 values; 8 bytes a stored value when sparse),
                estimated from the files (see `estimate_data_bytes`)
    in memory = factor x data + RUNTIME_BYTES, the factor by content type (`IN_MEMORY_FACTORS`)
    limit     = the container's memory limit (cgroup), else the machine's memory

`auto` trains from disk when `in memory` exceeds `limit`; `false` then fails at once with a
sentence naming both and the switch (rather than be ended by the kernel's OOM killer), and
`true` always trains from disk.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import psutil
import pyarrow.parquet as pq

from container.errors import ClientError
from container.training import readers

if TYPE_CHECKING:
    from container.training.hyperparameters import Hyperparameters
    from container.training.sharding import Shard

logger = logging.getLogger("container.training")

AUTO, ON, OFF = "auto", "true", "false"
RUNTIME_BYTES = 192 << 20
"""Python, numpy, XGBoost and pyarrow before any data (measured about 110 MB), with room for
a batch being parsed."""
IN_MEMORY_FACTORS = {
    "text/csv": 2.0,
    "application/x-parquet": 2.0,
    "text/libsvm": 9.0,
    "application/x-recordio-protobuf": 13.0,
}
"""Peak memory of an in-memory job over its data's estimated size. Dense channels are spilled
(measured 1.78x the float32 matrix: the `QuantileDMatrix`, its sketch and a chunk being
read). Sparse ones are read whole: LIBSVM's text and tokens peaked at 8.7x the CSR matrix
(500,000 rows, 75 MB), RecordIO-protobuf's records at 12.3x the file (200,000 rows, 36 MB)."""
CGROUP = Path("/sys/fs/cgroup")
_V2_LIMIT = "memory.max"
_V1_LIMIT = "memory/memory.limit_in_bytes"
_NO_LIMIT = 1 << 60
"""cgroup v1 reports "no limit" as a huge page-rounded number (9223372036854771712)."""
_SAMPLE_BYTES = 1 << 20
_GZIP_WRAP = 1 << 32
"""gzip stores a member's uncompressed size modulo 4 GiB."""


def memory_limit(cgroup: Path = CGROUP) -> tuple[int, str]:
    """The memory this container may use, in bytes, and where that figure came from: the
    cgroup v2 `memory.max` or v1 `memory.limit_in_bytes` when set, else the machine's."""
    physical = psutil.virtual_memory().total
    for name in (_V2_LIMIT, _V1_LIMIT):
        try:
            text = (cgroup / name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < min(_NO_LIMIT, physical):
            return int(text), f"cgroup {name}"
    return physical, "the machine's memory"


def estimate_data_bytes(files: Sequence[Path], content_type: str) -> int:
    """The features' in-memory size, estimated from the files without reading them whole.

    Parquet: rows (from the footer) x feature columns x 4. CSV and LIBSVM: the file's
    uncompressed size times the ratio measured on its first MB (4 bytes a CSV cell; 8 bytes a
    LIBSVM token, as CSR holds a value and its index). RecordIO-protobuf: its uncompressed size.
    A gzip file's uncompressed size is read from its trailer, which holds it modulo 4 GiB: the
    smallest such size no less than the compressed size is taken.
    """
    from container.training.data_loading import CSV, LIBSVM, PARQUET

    total = 0.0
    for path in files:
        if content_type == PARQUET:
            metadata = pq.ParquetFile(path).metadata
            total += metadata.num_rows * max(metadata.num_columns - 1, 1) * 4
        elif content_type in (CSV, LIBSVM):
            total += _uncompressed_size(path) * _bytes_per_text_byte(path, content_type == CSV)
        else:
            total += _uncompressed_size(path)
    return int(total)


def _uncompressed_size(path: Path) -> int:
    size = path.stat().st_size
    if not readers.is_gzip(path):
        return size
    with path.open("rb") as handle:
        handle.seek(-4, 2)
        trailer = int.from_bytes(handle.read(4), "little")
    return trailer + -(-max(size - trailer, 0) // _GZIP_WRAP) * _GZIP_WRAP


def _bytes_per_text_byte(path: Path, dense: bool) -> float:
    """Memory bytes per file byte on the first MB's whole lines: 4 per CSV cell (the label's
    included: a bound from above), 8 per LIBSVM token (a value and its index, or the row's
    offset for the label)."""
    try:
        head = readers.read_head(path, _SAMPLE_BYTES)
    except (OSError, EOFError):
        return 1.0  # a damaged file: reading it says what is wrong
    lines = head.splitlines()[:-1] or head.splitlines()
    text_bytes = sum(len(line) + 1 for line in lines)
    if not text_bytes:
        return 1.0
    if dense:
        values = sum(line.count(b",") + 1 for line in lines)
        return 4 * values / text_bytes
    tokens = sum(len(line.split()) for line in lines)
    return 8 * tokens / text_bytes


@dataclass(frozen=True)
class Decision:
    """Whether this host trains from disk, and the figures the choice was made on."""

    external: bool
    data_bytes: int
    needed_bytes: int
    limit_bytes: int
    limit_source: str
    setting: str

    def sentence(self) -> str:
        where = "from external memory (cache on disk)" if self.external else "in memory"
        return (
            f"Memory: the data takes about {_mib(self.data_bytes)} in memory, so training in "
            f"memory needs about {_mib(self.needed_bytes)}; the limit is "
            f"{_mib(self.limit_bytes)} ({self.limit_source}). Training {where} "
            f"(external_memory={self.setting})."
        )


def decide(
    setting: str,
    data_bytes: int,
    limit: tuple[int, str],
    histogram: bool = True,
    needed_bytes: int | None = None,
) -> Decision:
    """Apply the rule in the module's docstring; `false` with data too big is a `ClientError`.
    `needed_bytes` is what training in memory takes (by default: dense data's).

    Without `histogram` (the `hist` tree method, which the external matrix bins for), `auto`
    stays in memory whatever the size.
    """
    limit_bytes, source = limit
    needed = needed_bytes or int(IN_MEMORY_FACTORS["text/csv"] * data_bytes) + RUNTIME_BYTES
    too_big = needed > limit_bytes
    if setting == AUTO and too_big and not histogram:
        logger.warning(
            "The data may not fit in memory, but external memory needs tree_method hist: "
            "training in memory."
        )
        setting = OFF
        too_big = False
    if setting == OFF and too_big:
        raise ClientError(
            f"The data takes about {_mib(data_bytes)} in memory and training in memory needs "
            f"about {_mib(needed)}, more than the memory limit of {_mib(limit_bytes)} "
            f"({source}); set hyperparameter external_memory to true or auto to train from "
            "disk, or use an instance with more memory."
        )
    external = setting == ON or (setting == AUTO and too_big)
    return Decision(external, data_bytes, needed, limit_bytes, source, setting)


@dataclass(frozen=True)
class Share:
    """The files of one channel this host reads, and the part of their rows it keeps."""

    files: Sequence[Path]
    content_type: str
    fraction: float = 1.0


def plan(setting: str, shares: Sequence[Share], histogram: bool, cgroup: Path = CGROUP) -> Decision:
    """Decide for this host's shares of the channels (train and validation), and log it."""
    sizes = [
        (int(estimate_data_bytes(share.files, share.content_type) * share.fraction), share)
        for share in shares
    ]
    data = sum(size for size, _ in sizes)
    needed = RUNTIME_BYTES + sum(
        int(IN_MEMORY_FACTORS[share.content_type] * size) for size, share in sizes
    )
    decision = decide(setting, data, memory_limit(cgroup), histogram, needed)
    logger.info("%s", decision.sentence())
    return decision


def choose(
    hyperparameters: Hyperparameters, channels: Mapping[str, Any], shards: Mapping[str, Shard]
) -> Decision:
    """Decide for this host's shares of the channels (`shards`), before any row is read."""
    from container.training import data_loading

    shares = [
        Share(
            shard.files,
            data_loading.channel_content_type(name, shard.files, channels.get(name, {})),
            1 / shard.parts,
        )
        for name, shard in shards.items()
        if shard.files  # none: reading the channel says what is wrong
    ]
    return plan(hyperparameters.external_memory, shares, hyperparameters.uses_quantile_matrix)


class Cache:
    """The folder for XGBoost's page files, made on first use: in `near` (on SageMaker, the
    ML storage volume that holds the data and is sized for it), else in TMPDIR when `near`
    takes no files.

    XGBoost deletes its files when a matrix is freed, which may be after the `with` block
    (the job's frame, or a traceback, still holds it): the block's end removes the folder
    when it is empty, and the process's exit removes it in any case."""

    def __init__(self, near: Path) -> None:
        self._near = near
        self._directory: Path | None = None

    def directory(self) -> Path:
        if self._directory is None:
            try:
                made = tempfile.mkdtemp(prefix=".xgboost-cache-", dir=self._near)
            except OSError:
                made = tempfile.mkdtemp(prefix="xgboost-cache-")
            self._directory = Path(made)
            atexit.register(shutil.rmtree, made, ignore_errors=True)
        return self._directory

    def __enter__(self) -> Cache:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._directory is not None:
            with contextlib.suppress(OSError):  # not empty yet: the exit removes it
                self._directory.rmdir()


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB"
