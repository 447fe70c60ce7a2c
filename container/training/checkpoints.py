"""Checkpoints for spot training: save every N rounds, keep the last few, resume from the newest.

Files are `xgboost-checkpoint.<rounds>.ubj` (XGBoost's portable UBJSON, never a pickle), written
to a hidden temporary name, synced and renamed into place, so a half-written file is never seen.
The rounds in the name are checked against the model when it is loaded; a file that does not
load is skipped with a log line and the next older one is tried. In a multi-host job only the
master writes checkpoints, and `share_checkpoint` hands the one it resumes from to every host.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost as xgb
from xgboost import collective

from container.training.cluster import MASTER_RANK

logger = logging.getLogger(__name__)

PREFIX = "xgboost-checkpoint."
SUFFIX = ".ubj"
_NAME = re.compile(r"^xgboost-checkpoint\.(\d+)\.ubj$")


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so readers see the old file or the whole new one, never a part."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@dataclass(frozen=True)
class Checkpoint:
    """A booster restored from disk and the number of rounds it holds."""

    booster: xgb.Booster
    rounds: int
    path: Path


class CheckpointStore:
    """The checkpoint folder: save, prune, and find the newest checkpoint that loads."""

    def __init__(self, directory: Path, keep: int) -> None:
        self.directory = directory
        self.keep = keep

    def _existing(self) -> list[tuple[int, Path]]:
        """(rounds, path) of every checkpoint file, newest first."""
        found = []
        for path in self.directory.iterdir():
            match = _NAME.match(path.name)
            if match and path.is_file():
                found.append((int(match.group(1)), path))
        return sorted(found, reverse=True)

    def save(self, booster: xgb.Booster, rounds: int) -> Path:
        """Save `booster` (holding `rounds` rounds) and drop all but the newest `keep`."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{PREFIX}{rounds:06d}{SUFFIX}"
        write_atomically(path, bytes(booster.save_raw("ubj")))
        for _, old in self._existing()[self.keep :]:
            old.unlink(missing_ok=True)
        return path

    def remove_leftovers(self) -> None:
        """Delete temporary files of a write that was killed half-way."""
        for path in self.directory.glob(f".{PREFIX}*.tmp"):
            path.unlink(missing_ok=True)

    def load_newest(self) -> Checkpoint | None:
        """The newest checkpoint that loads and holds the rounds its name says; else None."""
        if not self.directory.is_dir():
            return None
        self.remove_leftovers()
        for rounds, path in self._existing():
            try:
                booster = xgb.Booster(model_file=bytearray(path.read_bytes()))
            except (xgb.core.XGBoostError, OSError, ValueError) as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                logger.warning("Skipping checkpoint %s: it does not load (%s).", path, reason)
                continue
            if booster.num_boosted_rounds() != rounds:
                logger.warning(
                    "Skipping checkpoint %s: its name says %d rounds but it holds %d.",
                    path,
                    rounds,
                    booster.num_boosted_rounds(),
                )
                continue
            return Checkpoint(booster=booster, rounds=rounds, path=path)
        return None


def share_from_master(payload: bytes | None) -> bytes | None:
    """The master's `payload` on every host (e.g. the checkpoint it resumes from), or None.

    Uses the collective's allreduce on raw bytes (no pickling): a length, then the bytes, to
    which every other host adds zeros. Outside a group it returns `payload` unchanged.
    """
    if not collective.is_distributed():
        return payload
    is_master = collective.get_rank() == MASTER_RANK
    length = -1 if payload is None or not is_master else len(payload)
    length = int(collective.allreduce(np.array([length], dtype=np.int64), collective.Op.MAX)[0])
    if length < 0:
        return None
    buffer = np.zeros(length, dtype=np.uint8)
    if is_master and payload is not None:
        buffer[:] = np.frombuffer(payload, dtype=np.uint8)
    return collective.allreduce(buffer, collective.Op.BITWISE_OR).tobytes()


def share_checkpoint(found: Checkpoint | None) -> Checkpoint | None:
    """The checkpoint the master resumes from, on every host, so all start at the same round.

    Only the master writes checkpoints; what another host finds on its own disk is ignored.
    Every host must call this (it is a collective step when training on several hosts).
    """
    if not collective.is_distributed():
        return found
    is_master = collective.get_rank() == MASTER_RANK
    payload = None
    if is_master and found is not None:
        header = json.dumps({"rounds": found.rounds, "path": str(found.path)}).encode()
        payload = header + b"\n" + bytes(found.booster.save_raw("ubj"))
    shared = share_from_master(payload)
    if shared is None:
        return None
    if is_master:
        return found
    header, _, model = shared.partition(b"\n")
    meta = json.loads(header)
    booster = xgb.Booster(model_file=bytearray(model))
    return Checkpoint(booster=booster, rounds=int(meta["rounds"]), path=Path(meta["path"]))
