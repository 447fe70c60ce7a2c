"""Run the app under gunicorn with gunicorn's own settings: workers, timeouts, graceful stop.

The model is loaded in the master before workers fork (they share its memory). XGBoost's OpenMP
pool does not survive `fork`, so the master uses one thread and each worker sets its own count
after forking (pyarrow's CSV parser gets the same count): one per worker for an endpoint, so
workers do not oversubscribe the cores; every core for a single worker; two in batch mode. In
batch mode each worker also keeps the memory it frees for the next large request (`heap.py`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow
from flask import Flask
from gunicorn.app.base import BaseApplication

from container.errors import ContainerError
from container.serving.front import RunDir
from container.serving.health import HealthResponder
from container.serving.heap import keep_freed_memory
from container.serving.model_loading import LoadedModel
from container.serving.worker import FrontSyncWorker
from container.serving.wsgi import load_application
from container.settings import Settings

log = logging.getLogger("container.serving")

GRACEFUL_TIMEOUT_S = 25
"""Time in-flight requests get after SIGTERM; SageMaker kills the container after 30 s."""

BATCH_THREADS = 2
"""XGBoost and pyarrow threads per worker in batch mode. A batch transform keeps every worker
busy (`MaxConcurrentTransforms` = workers), so the cores then hold this many threads each:
measured here at 2x, two requests at once ran as fast as with one thread each, and a lone
request 1.2–1.8x faster. More threads per worker would multiply the OpenMP threads spinning
against each other on a large instance."""


class GunicornServer(BaseApplication):
    """A gunicorn application serving an app that is already built (preloaded)."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def worker_threads(settings: Settings) -> int:
    """XGBoost and pyarrow threads per worker: every core for a single worker; one each for an
    endpoint's many small requests; `BATCH_THREADS` in a batch transform, whose large requests
    come at most one per worker."""
    if settings.serving.workers == 1:
        return settings.cpu_count
    if settings.serving.batch:
        return min(settings.cpu_count, BATCH_THREADS)
    return 1


def gunicorn_options(
    settings: Settings, model: LoadedModel | None, run: RunDir, health: HealthResponder
) -> dict[str, Any]:
    """gunicorn settings from `SAGEMAKER_*` variables, with a post-fork hook for threads and
    the health responder's hooks. gunicorn listens on a unix socket in `run` that only nginx
    (`front.py`) connects to.

    `model` is None when the user's inference code serves a model that is not a booster."""
    serving = settings.serving
    threads = worker_threads(settings)
    width = model.num_features if model is not None else 0
    warm_up_row = np.full((1, width), np.nan, dtype=np.float32)

    def post_fork(server: Any, worker: Any) -> None:
        health.post_fork(server, worker)
        pyarrow.set_cpu_count(threads)  # the large-CSV parser follows the same rule
        if serving.batch:
            keep_freed_memory()  # one large request after another: reuse their pages
        if model is not None:
            model.set_threads(threads)
            model.booster.inplace_predict(warm_up_row, validate_features=False)

    return {
        "bind": f"unix:{run.upstream}",
        "workers": serving.workers,
        "worker_class": FrontSyncWorker,  # sync, behind nginx
        "timeout": serving.timeout_s,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "preload_app": True,
        "control_socket_disable": True,
        "post_fork": post_fork,
        "when_ready": health.when_ready,
        "pre_fork": health.pre_fork,
        "child_exit": health.child_exit,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "xgboost-serve",
    }


def run(settings: Settings, run_dir: RunDir, health: HealthResponder) -> int:
    """Load the model and serve on `run_dir`'s socket until SIGTERM; 1 with a logged sentence
    if it cannot start. `health` answers /ping from this process (gunicorn's master) from
    now on. (`supervisor.py` runs this in a child process, beside nginx.)"""
    health.start()
    try:
        model, app = load_application(settings)
    except (ContainerError, ValueError) as exc:
        message = exc.message if isinstance(exc, ContainerError) else str(exc)
        log.error("serve cannot start: %s", message)
        return 1
    log.info(
        "Serving on %s:%d with %d worker(s), %d XGBoost thread(s) each",
        settings.serving.host,
        settings.serving.port,
        settings.serving.workers,
        worker_threads(settings),
    )
    GunicornServer(app, gunicorn_options(settings, model, run_dir, health)).run()
    return 0
