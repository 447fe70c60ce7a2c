"""What a script-mode training script can import from the image instead of writing it again.

The same code the built-in algorithm mode runs: channel readers (CSV, LIBSVM, Parquet,
RecordIO-protobuf, with its error sentences), the multi-host setup, and checkpoints that a
restarted (spot) job resumes from. Paths come from `SAGEMAKER_BASE_DIR`, as in the container.

    import xgboost as xgb
    from container.helpers import (
        CheckpointCallback, channel_dmatrix, checkpoint_store, save_model, model_file,
        training_cluster,
    )

    params = {"objective": "binary:logistic", "max_depth": 4}
    with training_cluster() as cluster:        # one host: nothing to join
        dtrain = channel_dmatrix("train", params, hosts=cluster.hosts)
        store = checkpoint_store()               # None without checkpoint_s3_uri
        found = store.load_newest() if store else None
        done = found.rounds if found else 0
        booster = xgb.train(
            params, dtrain, 100 - done, xgb_model=found.booster if found else None,
            callbacks=[CheckpointCallback(store)] if store and cluster.is_master else [],
        )
        if cluster.is_master:
            save_model(booster, model_file())
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import xgboost as xgb

from container.errors import ClientError
from container.settings import MODEL_FILENAME, Settings
from container.training.checkpoints import Checkpoint, CheckpointStore
from container.training.cluster import Cluster, Hosts, cluster, hosts_from_config
from container.training.data_loading import Dataset, load_channel, to_dmatrix
from container.training.hyperparameters import Hyperparameters
from container.training.job import FailureFile, checkpoint_dir, load_share, read_config, save_model

__all__ = [
    "MODEL_FILENAME",
    "Checkpoint",
    "CheckpointCallback",
    "CheckpointStore",
    "ClientError",
    "Cluster",
    "Dataset",
    "Hosts",
    "channel_dmatrix",
    "checkpoint_store",
    "load_channel",
    "model_file",
    "read_channel",
    "save_model",
    "to_dmatrix",
    "training_cluster",
]


def _settings(settings: Settings | None) -> Settings:
    return settings if settings is not None else Settings.from_environ()


def model_file(settings: Settings | None = None) -> Path:
    """Where `serve` looks for the model: `/opt/ml/model/xgboost-model`."""
    return _settings(settings).paths.model_file


def read_channel(
    name: str,
    *,
    content_type: str | None = None,
    csv_weights: bool = False,
    hosts: Hosts | None = None,
    settings: Settings | None = None,
) -> Dataset:
    """Every row of channel `name` (label first, as the built-in algorithm reads it), or this
    host's share of it when `hosts` names several. The format comes from `content_type`, the
    channel's ContentType, or the files themselves."""
    settings = _settings(settings)
    channels = read_config(settings).input_data
    config = dict(channels.get(name, {}))
    if content_type:
        config["ContentType"] = content_type
    channels = {**channels, name: config}
    hosts = hosts if hosts is not None else hosts_from_config({})
    return load_share(name, settings, channels, csv_weights, hosts)


def channel_dmatrix(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    reference: xgb.DMatrix | None = None,
    **read_options: Any,
) -> xgb.DMatrix:
    """Channel `name` as an XGBoost matrix for `params` (a `QuantileDMatrix` for the hist tree
    method, the default; pass the training matrix as `reference` for a validation one)."""
    dataset = read_channel(name, **read_options)
    return to_dmatrix(dataset, Hyperparameters(dict(params or {}), num_round=0), reference)


@contextmanager
def training_cluster(settings: Settings | None = None) -> Iterator[Cluster]:
    """Join the job's hosts (`resourceconfig.json`) for the block; one host joins nothing.

    Inside, XGBoost trains one model across the hosts; `cluster.is_master` says which host
    writes the model."""
    settings = _settings(settings)
    resources = read_config(settings).resources
    hosts = hosts_from_config(resources, str(settings.paths.resource_config_file))
    with cluster(hosts, settings.distributed, FailureFile(settings.paths.failure_file)) as group:
        yield group


def checkpoint_store(keep: int = 3, settings: Settings | None = None) -> CheckpointStore | None:
    """The job's checkpoint folder (`checkpoint_s3_uri` in the SDK), keeping the newest `keep`
    checkpoints; None when the job has none."""
    directory = checkpoint_dir(_settings(settings))
    return CheckpointStore(directory, keep) if directory is not None else None


class CheckpointCallback(xgb.callback.TrainingCallback):
    """Save a checkpoint every `every` rounds and at the end (`xgb.train(callbacks=[...])`, or
    an XGBoost scikit-learn model's `callbacks=`); resume with `store.load_newest()`."""

    def __init__(self, store: CheckpointStore, every: int = 10) -> None:
        super().__init__()
        self.store = store
        self.every = every
        self.saved = -1

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        rounds = model.num_boosted_rounds()
        if rounds % self.every == 0:
            self.store.save(model, rounds)
            self.saved = rounds
        return False

    def after_training(self, model: Any) -> Any:
        rounds = model.num_boosted_rounds()
        if rounds != self.saved and rounds > 0:
            self.store.save(model, rounds)
        return model
