"""Models as training leaves them (`model.tar.gz`) and as SageMaker hands them to a multi-model
endpoint: extracted into `models/NAME/model`."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import xgboost as xgb

from container.settings import MODEL_FILENAME


def extract_model_tar(models_dir: Path, name: str, booster: xgb.Booster) -> Path:
    """Pack `booster` as training leaves it (model.tar.gz with `xgboost-model` and another
    file), then extract it as SageMaker does, into `models_dir/name/model`, readable by any
    user (a container's too); return that folder."""
    raw = bytes(booster.save_raw("json"))
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for member, data in ((MODEL_FILENAME, raw), ("notes.txt", b"trained for a test")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    folder = models_dir / name / "model"
    folder.mkdir(parents=True)
    archive.seek(0)
    with tarfile.open(fileobj=archive, mode="r:gz") as tar:
        tar.extractall(folder, filter="data")
    for path in (models_dir / name, folder, *folder.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder
