"""A warning when the train and validation channels hold the same files.

A validation score computed on training rows says nothing about new data. The built-in algorithm
warns when a file name appears in both channels with the same size; this check warns for files
of the same size whose first and last 64 KiB are the same too, whatever their names (a copy
renamed is still a copy, and two different files of one size are not flagged), and when both
channels are one folder.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from container.training.data_loading import channel_files

logger = logging.getLogger(__name__)

SAMPLE_BYTES = 65536
"""Bytes compared at each end of two files of the same size: enough to tell data files apart
without reading gigabytes twice."""
NAMES_SHOWN = 5


def shared_files(train_dir: Path, validation_dir: Path) -> list[tuple[Path, Path]]:
    """Pairs (train file, validation file) that look identical: same size and same ends."""
    by_size: dict[int, list[Path]] = defaultdict(list)
    for path in channel_files(train_dir):
        by_size[path.stat().st_size].append(path)
    pairs = []
    for path in channel_files(validation_dir):
        for candidate in by_size.get(path.stat().st_size, []):
            if _ends(candidate) == _ends(path):
                pairs.append((candidate, path))
                break
    return pairs


def _ends(path: Path) -> tuple[bytes, bytes]:
    with path.open("rb") as stream:
        head = stream.read(SAMPLE_BYTES)
        size = stream.seek(0, 2)
        stream.seek(max(size - SAMPLE_BYTES, len(head)))
        return head, stream.read(SAMPLE_BYTES)


def warn_if_channels_overlap(train_dir: Path, validation_dir: Path) -> None:
    """Log a warning (training goes on, as with the built-in) when the channels share data."""
    if not train_dir.is_dir() or not validation_dir.is_dir():
        return
    if train_dir.resolve() == validation_dir.resolve():
        logger.warning(
            "Channels 'train' and 'validation' are the same folder (%s): the validation score "
            "is computed on training rows and says nothing about new data.",
            train_dir.resolve(),
        )
        return
    pairs = shared_files(train_dir, validation_dir)
    if not pairs:
        return
    shown = ", ".join(
        f"{v.relative_to(validation_dir)} = train/{t.relative_to(train_dir)}"
        for t, v in pairs[:NAMES_SHOWN]
    )
    more = f" and {len(pairs) - NAMES_SHOWN} more" if len(pairs) > NAMES_SHOWN else ""
    logger.warning(
        "Channel 'validation' holds %d file(s) that look identical to files of channel 'train' "
        "(same size, same first and last %d KiB): %s%s. The validation score is then computed "
        "on training rows; use separate data for validation.",
        len(pairs),
        SAMPLE_BYTES // 1024,
        shown,
        more,
    )
