"""The boosting loop: one `Booster.update` per round, metric lines, early stopping, checkpoints.

It is a plain loop rather than `xgb.train` so that a resumed run passes each round its true
index (XGBoost seeds per round from it) and carries the early-stopping state in the model's
attributes: a run resumed from a checkpoint ends with the same model as one never stopped.
XGBoost's own `EvaluationMonitor` prints the round lines; this loop hands it that true index,
so a resumed run numbers its rounds on from the checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xgboost as xgb
from xgboost import collective

from container.training.checkpoints import CheckpointStore
from container.training.metrics import (
    Score,
    is_maximized,
    order_round,
    parse_eval,
    printed_name,
)
from container.training.python_metrics import PythonMetrics
from container.training.termination import StopRequest

logger = logging.getLogger(__name__)

BEST_ITERATION = "best_iteration"
BEST_SCORE = "best_score"


@dataclass
class EarlyStopping:
    """Stop when the watched score has not improved for `rounds` rounds; remember the best."""

    rounds: int
    metric: str | None = None
    """The metric watched on the last data set; None: the last one printed (XGBoost's rule)."""
    best_iteration: int | None = None
    best_score: float | None = None

    def restore(self, booster: xgb.Booster) -> None:
        """Pick up the state a checkpoint carries in its attributes."""
        iteration, score = booster.attr(BEST_ITERATION), booster.attr(BEST_SCORE)
        if iteration is not None and score is not None:
            self.best_iteration, self.best_score = int(iteration), float(score)

    def update(self, booster: xgb.Booster, iteration: int, score: Score) -> bool:
        """Record this round's score; True when training should stop."""
        better = (
            self.best_score is None
            or (is_maximized(score.metric) and score.value > self.best_score)
            or (not is_maximized(score.metric) and score.value < self.best_score)
        )
        if better:
            self.best_iteration, self.best_score = iteration, score.value
            booster.set_attr(best_iteration=str(iteration), best_score=repr(score.value))
        assert self.best_iteration is not None
        return iteration - self.best_iteration >= self.rounds


@dataclass
class BoostingResult:
    booster: xgb.Booster
    rounds: int
    best_iteration: int | None


def boost(
    booster: xgb.Booster,
    dtrain: xgb.DMatrix,
    evals: list[tuple[xgb.DMatrix, str]],
    num_round: int,
    start_round: int,
    monitor: xgb.callback.EvaluationMonitor,
    stop: StopRequest,
    early_stopping: EarlyStopping | None = None,
    store: CheckpointStore | None = None,
    checkpoint_frequency: int = 10,
    progressed: Callable[[], None] | None = None,
    python_metrics: PythonMetrics | None = None,
    last_metric: str | None = None,
) -> BoostingResult:
    """Run rounds `start_round .. num_round-1`; on SIGTERM (noted by `stop`, checked before
    each round) save a checkpoint and raise `TrainingStopped`.

    `progressed` is called after every round (the distributed watchdog's heartbeat).
    `python_metrics` are scored beside XGBoost's own, as `xgb.train(custom_metric=...)` scores
    them; `last_metric` is printed last in each data set's part of the round line."""
    if early_stopping is not None:
        early_stopping.restore(booster)
    rounds = saved = start_round
    for iteration in range(start_round, num_round):
        if _stop_agreed(stop):
            _stop(booster, rounds, store, stop)
        booster.update(dtrain, iteration)
        rounds = iteration + 1
        scores = evaluate(booster, evals, iteration, python_metrics, last_metric)
        monitor.after_iteration(booster, iteration, evals_log(scores))
        if progressed is not None:
            progressed()
        stop_now = early_stopping is not None and early_stopping.update(
            booster, iteration, _watched(scores, early_stopping.metric)
        )
        if store is not None and (rounds % checkpoint_frequency == 0 or stop_now):
            store.save(booster, rounds)
            saved = rounds
        if stop_now:
            assert early_stopping is not None
            logger.info(
                "Early stopping at round %d: no improvement for %d rounds; "
                "keeping the best round %d (%s=%s).",
                iteration,
                early_stopping.rounds,
                early_stopping.best_iteration,
                _watched(scores, early_stopping.metric).key,
                early_stopping.best_score,
            )
            break
    if _stop_agreed(stop):
        _stop(booster, rounds, store, stop)
    if store is not None and rounds != saved:
        store.save(booster, rounds)  # the last round too: nothing to redo after a restart
    best = early_stopping.best_iteration if early_stopping is not None else None
    return BoostingResult(booster=booster, rounds=rounds, best_iteration=best)


def keep_best(result: BoostingResult) -> xgb.Booster:
    """The model cut at the best round when early stopping found one before the last."""
    booster, best = result.booster, result.best_iteration
    if best is None or best + 1 >= booster.num_boosted_rounds():
        return booster
    if booster.attr(BEST_ITERATION) is None or _is_linear(booster):
        logger.info("Keeping all %d rounds (a linear booster cannot be cut).", result.rounds)
        return booster
    best_model = booster[: best + 1]
    best_model.set_attr(best_iteration=booster.attr(BEST_ITERATION))
    best_model.set_attr(best_score=booster.attr(BEST_SCORE))
    return best_model


def _is_linear(booster: xgb.Booster) -> bool:
    return '"gblinear"' in booster.save_config()


def round_monitor() -> xgb.callback.EvaluationMonitor:
    """XGBoost's round lines (`[12]\ttrain-rmse:2.13450\tvalidation-rmse:2.37790`), printed to
    stdout by the master host (rank 0) only, flushed so that logs stream live."""
    return xgb.callback.EvaluationMonitor(rank=0, logger=_print_line)


def _print_line(message: str) -> None:
    print(message.strip(), flush=True)


def evals_log(scores: list[Score]) -> dict[str, dict[str, list[float]]]:
    """This round's scores in the shape `EvaluationMonitor` reads: data → metric → values."""
    log: dict[str, dict[str, list[float]]] = {}
    for score in scores:
        log.setdefault(score.data, {})[score.metric] = [score.value]
    return log


def evaluate(
    booster: xgb.Booster,
    evals: list[tuple[xgb.DMatrix, str]],
    iteration: int,
    python_metrics: PythonMetrics | None,
    last_metric: str | None,
) -> list[Score]:
    """This round's scores: XGBoost's metrics, then the Python ones, in printing order."""
    if not evals:
        return []
    if python_metrics is None:
        text = booster.eval_set(evals, iteration)
    else:
        margin = python_metrics.output_margin
        text = booster.eval_set(evals, iteration, feval=python_metrics, output_margin=margin)
    return order_round(parse_eval(text), last_metric)


def _watched(scores: list[Score], metric: str | None) -> Score:
    """`metric` on the last evaluation set (validation); without one, XGBoost's rule: the last
    metric printed for that set."""
    if metric is not None:
        name = printed_name(metric)
        last_data = scores[-1].data
        for score in scores:
            if score.data == last_data and score.metric == name:
                return score
    return scores[-1]


def _stop_agreed(stop: StopRequest) -> bool:
    """Whether any host was asked to stop: on several hosts a collective step (one integer), so
    that all stop after the same round; a host going on alone would wait in the next round's
    collective step for ever. SageMaker sends SIGTERM to every host, not at the same instant."""
    if not collective.is_distributed():
        return stop.requested
    asked = np.array([1 if stop.requested else 0], dtype=np.int32)
    agreed = bool(collective.allreduce(asked, collective.Op.MAX)[0])
    if agreed:
        stop.requested = True
    # Only what was agreed: a SIGTERM that came during the allreduce is this host's alone
    # until the next round's step, and stopping on it now would leave the others waiting.
    return agreed


def _stop(
    booster: xgb.Booster, rounds: int, store: CheckpointStore | None, stop: StopRequest
) -> None:
    stop.detail = f"after {rounds} round(s)"
    if store is not None and rounds > 0:
        path = store.save(booster, rounds)
        raise stop.stopped(f"checkpoint {path.name} was saved and a restarted job resumes from it")
    raise stop.stopped()
