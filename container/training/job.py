"""The training job: config → data → boosting → `model/xgboost-model`, and the failure contract.

`main` is the one place that turns any failure into `output/failure` (a sentence first, as
SageMaker shows its first 1,024 characters), a log line and a non-zero exit (143 for SIGTERM);
success exits 0 and leaves no failure file. `FailureFile` is the only writer of that file; the
training group is handed one to record a reason while the hosts are joined.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
import traceback
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from container.errors import ClientError, DistributedError
from container.settings import Settings, export_base_dir
from container.training.termination import MODEL_SAVE, ROUNDS, StopRequest, TrainingStopped

if TYPE_CHECKING:
    from container.training.cluster import Hosts
    from container.training.data_loading import Dataset
    from container.training.sharding import Shard

logger = logging.getLogger("container.training")

EXIT_FAILURE = 1
EXIT_STOPPED = 143
"""128 + SIGTERM, the shell's convention for a process ended by SIGTERM."""
FAILURE_REASON_CHARACTERS = 1024
"""SageMaker's `FailureReason` holds the first 1,024 characters of `output/failure`."""
_CUT = "... (cut to 1,024 characters)"


def main() -> int:
    """Run the job; return the process exit status."""
    settings = Settings.from_environ()
    _configure_logging()
    failure_file = settings.paths.failure_file
    failure_file.unlink(missing_ok=True)
    stop = StopRequest()
    stop.install()
    try:
        run(settings, stop)
    except TrainingStopped as exc:
        return _fail(failure_file, str(exc), None, EXIT_STOPPED)
    except ClientError as exc:
        return _fail(failure_file, exc.message, None, EXIT_FAILURE)
    except DistributedError as exc:
        if stop.requested:  # SIGTERM reached a peer first, and it left: this job was stopped
            return _fail(failure_file, str(stop.stopped()), exc.message, EXIT_STOPPED)
        return _fail(failure_file, exc.message, traceback.format_exc(), EXIT_FAILURE)
    except MemoryError:
        sentence = "Training ran out of memory: use an instance with more memory or less data."
        return _fail(failure_file, sentence, traceback.format_exc(), EXIT_FAILURE)
    except OSError as exc:
        sentence = f"Training failed on a file operation: {exc.strerror or exc}"
        if exc.filename:
            sentence += f" ({exc.filename})"
        return _fail(failure_file, sentence + ".", traceback.format_exc(), EXIT_FAILURE)
    except Exception as exc:
        from container.training.data_loading import first_line

        sentence = f"Training failed with an unexpected error: {type(exc).__name__}: "
        return _fail(failure_file, sentence + first_line(exc), traceback.format_exc(), EXIT_FAILURE)
    if settings.paths.model_file.exists():
        logger.info("Training finished; model written to %s.", settings.paths.model_file)
    else:
        logger.info(
            "Training finished; no %s on this host (in a distributed job the master writes it).",
            settings.paths.model_file.name,
        )
    # Nothing is left to stop cleanly: from here SIGTERM ends the process by its default
    # action, which the container reports as status 143 too.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if stop.requested and stop.phase == MODEL_SAVE:  # came while the model was being saved
        return _fail(failure_file, str(stop.stopped()), None, EXIT_STOPPED)
    return 0


def failure_reason(sentence: str) -> str:
    """`sentence` as the one first line SageMaker shows: control characters (and the other
    characters that break a line) escaped as `\\n`, `\\x00`, ..., at most 1,024 characters."""
    text = sentence.strip()
    line = "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) in ("Cc", "Zl", "Zp")
        else char
        for char in text[:FAILURE_REASON_CHARACTERS]  # a 10 MB sentence is not walked whole
    )
    if len(text) <= FAILURE_REASON_CHARACTERS and len(line) <= FAILURE_REASON_CHARACTERS:
        return line
    return line[: FAILURE_REASON_CHARACTERS - len(_CUT)] + _CUT


@dataclass(frozen=True)
class FailureFile:
    """`output/failure`, written here only: its reason first (`failure_reason`), then details.

    The training group records a reason in it while the hosts are joined (see
    `cluster.ENDED_EARLY`) and clears it when they part normally."""

    path: Path

    def write(self, sentence: str, details: str | None = None) -> None:
        """`sentence` may carry details of its own after a blank line (a script's traceback):
        they follow the reason, with `details`."""
        reason, own_details = _split(sentence)
        details = "\n\n".join(part for part in (own_details, details) if part)
        text = reason + "\n" + (f"\n{details}" if details else "")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(text, encoding="utf-8")
        except OSError as exc:
            logger.error("Could not write %s: %s", self.path, exc)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _split(sentence: str) -> tuple[str, str]:
    """The reason (the text before a blank line, as `failure_reason`) and what follows it."""
    head, _, rest = sentence.strip().partition("\n\n")
    return failure_reason(head), rest.strip()


def _fail(failure_file: Path, sentence: str, details: str | None, status: int) -> int:
    """Write `output/failure` (its reason first), log it, and hand back the exit status."""
    reason, own_details = _split(sentence)
    for text in (reason, own_details, details):
        if text:
            logger.error("%s", text)
    FailureFile(failure_file).write(sentence, details)
    return status


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
        force=True,
    )
    logging.getLogger("sagemaker-training-toolkit").setLevel(logging.WARNING)


@dataclass(frozen=True)
class JobConfig:
    """What the three config files say, read through `sagemaker-training`."""

    hyperparameters: dict[str, Any]
    input_data: dict[str, Any]
    resources: dict[str, Any]


def read_config(settings: Settings) -> JobConfig:
    """Read the config files with `sagemaker-training` (its base dir exported first)."""
    export_base_dir(settings)
    from sagemaker_training import environment

    readers = {
        settings.paths.hyperparameters_file: environment.read_hyperparameters,
        settings.paths.input_data_config_file: environment.read_input_data_config,
        settings.paths.resource_config_file: environment.read_resource_config,
    }
    values = []
    for path, read in readers.items():
        if not path.is_file():
            values.append({})
            continue
        try:
            value = read()
        except json.JSONDecodeError as exc:
            raise ClientError(f"{path} is not valid JSON: {exc}.") from None
        except AttributeError:  # read_hyperparameters calls .items() on what it parsed
            value = None
        if not isinstance(value, dict):
            raise ClientError(
                f"{path} must hold a JSON object of names and values, such as "
                '{"num_round": "100"}; it holds another kind of JSON value.'
            )
        values.append(value)
    return JobConfig(*values)


def checkpoint_dir(settings: Settings) -> Path | None:
    """`checkpointconfig.json`'s LocalPath, else `/opt/ml/checkpoints`, when it exists."""
    config_file = settings.paths.checkpoint_config_file
    if config_file.is_file():
        try:
            local = json.loads(config_file.read_text()).get("LocalPath")
        except (ValueError, AttributeError):
            raise ClientError(f"{config_file} is not a JSON object with LocalPath.") from None
        if local:
            return Path(local)
    directory = settings.paths.checkpoint_dir
    return directory if directory.is_dir() else None


def run(settings: Settings, stop: StopRequest) -> None:
    """The whole job; raises `ClientError` for the user's mistakes."""
    from container.training import script_mode

    config = read_config(settings)
    if script_mode.user_program(settings, config.hyperparameters):
        script_mode.run_program(settings, config, stop)  # the user's own training script
    else:
        keep_scikit_learn_out()
        train_model(settings, config, stop)


def keep_scikit_learn_out() -> None:
    """Stop xgboost importing scikit-learn, which the algorithm never uses (about 150 MB of
    memory and a second here); the image ships it for script mode only. Call it before xgboost
    is first imported; it changes nothing once scikit-learn is loaded."""
    sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]


def train_model(settings: Settings, config: JobConfig, stop: StopRequest) -> None:
    """Train on the channels under `settings`' base dir as `config` says; write the model."""
    import xgboost as xgb

    from container.training import boosting, checkpoints, cluster, data_loading, python_metrics
    from container.training.channel_overlap import warn_if_channels_overlap
    from container.training.external_memory import Cache, choose
    from container.training.hyperparameters import parse_hyperparameters

    hyperparameters = parse_hyperparameters(config.hyperparameters)
    channels = config.input_data
    extra = sorted(set(channels) - {"train", "validation"})
    if extra:
        logger.warning("Ignoring channel(s) %s: only 'train' and 'validation' are read.", extra)
    if "train" not in channels and not settings.paths.channel_dir("train").is_dir():
        raise ClientError("The 'train' channel is required but the job has none.")
    has_validation = "validation" in channels or settings.paths.channel_dir("validation").is_dir()
    if has_validation:
        warn_if_channels_overlap(
            settings.paths.channel_dir("train"), settings.paths.channel_dir("validation")
        )
    _check_early_stopping(hyperparameters, has_validation or bool(hyperparameters.kfold))
    if hyperparameters.kfold:  # k models by cross-validation, each with its held-out fold
        from container.training import cross_validation

        cross_validation.run(settings, config, hyperparameters, has_validation, stop)
        return

    near = settings.paths.channel_dir("train").parent  # the volume that holds the data
    failure = FailureFile(settings.paths.failure_file)
    with (
        cluster.join_cluster(config.resources, settings, failure) as role,
        Cache(near) as cache,
    ):
        started = time.perf_counter()
        csv_weights, spill = hyperparameters.csv_weights, hyperparameters.uses_quantile_matrix
        names = ["train", "validation"] if has_validation else ["train"]
        shards = {name: plan_share(name, settings, channels, role.hosts) for name in names}
        external = choose(hyperparameters, channels, shards).external
        cache_dir = cache.directory() if external else None
        share = (settings, channels, csv_weights, role.hosts, spill, stop, external)
        train = load_share("train", *share, shards["train"])
        data_loading.check_labels(train, hyperparameters)
        validation = None
        if has_validation:
            validation = load_share("validation", *share, shards["validation"])
            data_loading.check_labels(validation, hyperparameters)
            data_loading.match_width(validation, train)
        dtrain = data_loading.to_dmatrix(train, hyperparameters, stop=stop, cache=cache_dir)
        evals = [(dtrain, "train")]
        if validation is not None:
            dvalid = data_loading.to_dmatrix(
                validation, hyperparameters, reference=dtrain, stop=stop, cache=cache_dir
            )
            evals.append((dvalid, "validation"))
        role.progressed()  # arms the distributed stall bound
        megabytes = (train.bytes_read + (validation.bytes_read if validation else 0)) / 1e6
        seconds = time.perf_counter() - started
        logger.info(
            "Ingest: %.1f MB into %s in %.2f s (%.1f MB/s, parse and matrix build).",
            megabytes,
            type(dtrain).__name__,
            seconds,
            megabytes / max(seconds, 1e-9),
        )
        del train, validation

        stop.enter(ROUNDS)
        params = hyperparameters.xgboost_params
        store = None
        directory = checkpoint_dir(settings)
        start_round = 0
        booster = None
        if directory is not None:
            store = checkpoints.CheckpointStore(directory, hyperparameters.checkpoints_to_keep)
            found = checkpoints.share_checkpoint(store.load_newest())
            if found is not None:
                logger.info(
                    "Resuming from checkpoint %s: %d round(s) done, continuing at round %d.",
                    found.path,
                    found.rounds,
                    found.rounds,
                )
                booster = xgb.Booster(params, [dtrain, *(d for d, _ in evals)], found.booster)
                start_round = found.rounds
            else:
                logger.info("No checkpoint in %s: starting from round 0.", directory)
        if booster is None:
            booster = xgb.Booster(params, [d for d, _ in evals])
        early = (
            boosting.EarlyStopping(
                hyperparameters.early_stopping_rounds, hyperparameters.watched_metric
            )
            if hyperparameters.early_stopping_rounds
            else None
        )
        try:
            result = boosting.boost(
                booster,
                dtrain,
                evals,
                num_round=hyperparameters.num_round,
                start_round=start_round,
                monitor=boosting.round_monitor(),
                stop=stop,
                early_stopping=early,
                store=store if role.is_master else None,
                checkpoint_frequency=hyperparameters.checkpoint_frequency,
                progressed=role.progressed,
                python_metrics=python_metrics.for_job(hyperparameters),
                last_metric=hyperparameters.tuning_metric,
            )
        except xgb.core.XGBoostError as exc:
            raise ClientError(f"XGBoost stopped training: {data_loading.first_line(exc)}") from None
        except (Exception, TrainingStopped):
            if hyperparameters.save_model_on_termination and role.is_master:
                save_model(booster, settings.paths.model_file)
            raise
        stop.enter(MODEL_SAVE)
        if role.is_master:
            save_model(boosting.keep_best(result), settings.paths.model_file)
        # The save (atomic) was let finish: a model is whole or absent, never half. `main`
        # checks for a stop once the job is done.
        stop.outcome = (
            f"{settings.paths.model_file.name} was saved in full before the job stopped"
            if role.is_master
            else "the master host writes the model"
        )


def load_share(
    channel: str,
    settings: Settings,
    channels: Mapping[str, Any],
    csv_weights: bool,
    hosts: Hosts,
    spill: bool = False,
    stop: StopRequest | None = None,
    external: bool = False,
    shard: Shard | None = None,
) -> Dataset:
    """This host's share of a channel: all of it alone, its own files or rows with several.

    With `spill` (for a `QuantileDMatrix` only), dense features go to disk rather than
    memory, unless rows are cut away (a cut needs every row in memory). With `external`
    (external memory), every channel goes to disk, and a cut is made as XGBoost reads it.
    `shard` is the share when already planned (`plan_share`).
    """
    from container.training import data_loading, sharding

    directory = settings.paths.channel_dir(channel)
    config = channels.get(channel, {})
    shard = shard or plan_share(channel, settings, channels, hosts)
    dataset = data_loading.load_channel(
        channel,
        directory,
        config,
        csv_weights,
        shard.files,
        spill=spill and shard.parts == 1,
        stop=stop,
        external=external,
    )
    return sharding.agree_on_width(sharding.keep_rows(dataset, shard), hosts)


def plan_share(
    channel: str, settings: Settings, channels: Mapping[str, Any], hosts: Hosts
) -> Shard:
    """Which of the channel's files (and rows) this host trains on."""
    from container.training import data_loading, sharding

    return sharding.plan_shard(
        channel,
        data_loading.channel_files(settings.paths.channel_dir(channel)),
        channels.get(channel, {}).get("S3DistributionType"),
        hosts,
    )


def _check_early_stopping(hyperparameters: Any, has_validation: bool) -> None:
    """Settings that watch the validation channel need one (the built-in ignores this)."""
    if hyperparameters.tuning_channel == "validation" and not has_validation:
        raise ClientError(
            "Hyperparameter '_tuning_objective_metric' names a validation metric, but the job "
            "has no 'validation' channel: add one or tune on a train metric."
        )
    if not hyperparameters.early_stopping_rounds:
        return
    if not has_validation:
        raise ClientError(
            "Hyperparameter 'early_stopping_rounds' needs a 'validation' channel to watch, "
            "but the job has none: add a validation channel or remove early_stopping_rounds."
        )
    params = hyperparameters.xgboost_params
    no_metric = not params.get("eval_metric") and not hyperparameters.python_metrics
    if params.get("disable_default_eval_metric") and no_metric:
        raise ClientError(
            "Hyperparameter 'early_stopping_rounds' needs a metric to watch, but "
            "disable_default_eval_metric is set and eval_metric is empty: set eval_metric."
        )


def save_model(booster: Any, path: Path) -> None:
    """Write the model atomically in XGBoost's portable JSON format (never a pickle)."""
    from container.training.checkpoints import write_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, bytes(booster.save_raw("json")))
    rounds = booster.num_boosted_rounds()
    logger.info("Saved the model (%d rounds, XGBoost JSON) to %s.", rounds, path)
