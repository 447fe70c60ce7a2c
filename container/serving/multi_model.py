"""The models of a multi-model endpoint, one registry that every gunicorn worker shares.

SageMaker sends each request to any worker, so a model loaded through one worker must be served
by all, and an unload must free it in all. The truth lives on disk in a folder the master
creates before forking (`SharedState`): a JSON file naming every loaded model (its URL, a load
id and its memory cost), rewritten whole under a file lock, and a generation counter in an
8-byte file that every process maps into memory. A worker compares that counter with the one it
last saw on every request (a memory read, no system call); when it moved, it rereads the JSON
file and drops the models that were unloaded or replaced. A worker loads a model itself only
when it is first asked to predict with it, so memory follows use.

Loads are serialised by the lock: the check for 409, the load, the memory check for 507 and the
write happen as one step, so concurrent loads of one name give one 200 and 409s, and a refused
load changes nothing.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import mmap
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from container.errors import BadRequest, ClientError, ContainerError, ModelLoadError
from container.serving.invocations import Invocations
from container.serving.model_loading import LoadedModel, load_model
from container.serving.model_memory import budget_bytes, model_cost_bytes
from container.settings import MB, Settings

log = logging.getLogger(__name__)

PAGE_SIZE = 100
"""Models per page of `GET /models`; `nextPageToken` leads to the next page."""
MAX_NAME_LENGTH = 256
_COUNTER = struct.Struct("<Q")


class ModelNotLoaded(ClientError):
    """The named model is not loaded (SageMaker then loads it, or the name is wrong)."""

    status = 404


class ModelAlreadyLoaded(ClientError):
    status = 409


class InsufficientMemory(ContainerError):
    """Loading would exceed the memory budget: SageMaker's cue to unload models (507)."""

    status = 507


class Entry(NamedTuple):
    """One loaded model as every worker sees it, stored as a JSON list: a worker rereads 1,000
    of them in about 1 ms (frozen dataclasses from JSON objects took 6 ms)."""

    name: str
    url: str
    load_id: int
    """The generation the model was loaded at: a reload under the same name gets a new one."""
    cost_bytes: int
    """Memory one worker's copy takes (`model_memory.model_cost_bytes`)."""


class SharedState:
    """The registry's files: `models.json`, a `lock` file and a mapped `generation` counter."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.models_file = folder / "models.json"
        self.lock_file = folder / "lock"
        counter = folder / "generation"
        if not counter.exists():
            counter.write_bytes(_COUNTER.pack(0))
            self.models_file.write_text("[]")
        with counter.open("r+b") as handle:
            self._counter = mmap.mmap(handle.fileno(), _COUNTER.size)

    @classmethod
    def create(cls) -> SharedState:
        """A fresh registry folder, removed when the process that made it exits."""
        folder = Path(tempfile.mkdtemp(prefix="xgb-models-"))
        owner = os.getpid()

        def remove() -> None:
            if os.getpid() == owner:  # forked workers inherit this hook; only the owner cleans
                shutil.rmtree(folder, ignore_errors=True)

        atexit.register(remove)
        return cls(folder)

    def generation(self) -> int:
        return _COUNTER.unpack_from(self._counter)[0]

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry's exclusive lock (across processes) for one change."""
        with self.lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def read(self) -> dict[str, Entry]:
        return {row[0]: Entry._make(row) for row in json.loads(self.models_file.read_text())}

    def write(self, entries: dict[str, Entry], generation: int) -> None:
        """Replace the model list, then publish `generation` (call with the lock held)."""
        staged = self.models_file.with_suffix(".tmp")
        staged.write_text(json.dumps([list(entry) for entry in entries.values()]))
        os.replace(staged, self.models_file)
        _COUNTER.pack_into(self._counter, 0, generation)


class ModelRegistry:
    """This process's view of the shared registry, and the models it has loaded itself."""

    def __init__(
        self,
        settings: Settings,
        default_accept: str,
        nthread: int = 1,
        shared: SharedState | None = None,
    ) -> None:
        """`shared` is the registry folder of other processes; a fresh one when None."""
        self.settings = settings
        self.default_accept = default_accept
        self.nthread = nthread
        self.models_dir = settings.paths.models_dir
        self.workers = settings.serving.workers
        self.budget = budget_bytes(settings)
        self.shared = shared or SharedState.create()
        self._seen = -1
        self._entries: dict[str, Entry] = {}
        self._served: dict[str, tuple[int, Invocations]] = {}
        self._invoked: set[str] = set()
        """Models this process has predicted with since it got its current copy."""
        log.info(
            "Multi-model mode: loaded models may take %d MB across %d worker(s) "
            "(XGB_SERVER_MODEL_MEMORY_MB); registry in %s",
            self.budget // MB,
            self.workers,
            self.shared.folder,
        )

    def sync(self) -> None:
        """Catch up with loads and unloads answered by other workers (cheap when none)."""
        generation = self.shared.generation()
        if generation == self._seen:
            return
        self._entries = self.shared.read()
        self._seen = generation
        for name, (load_id, _) in list(self._served.items()):
            entry = self._entries.get(name)
            if entry is None or entry.load_id != load_id:
                del self._served[name]  # frees this worker's copy
                self._invoked.discard(name)

    def held(self) -> list[str]:
        """The models this process holds a copy of (after its last sync)."""
        return sorted(self._served)

    def entry(self, name: str) -> Entry:
        """The loaded model `name`; 404 when it is not loaded."""
        self.sync()
        entry = self._entries.get(name)
        if entry is None:
            raise ModelNotLoaded(
                f"Model {name!r} is not loaded; load it with POST /models first "
                "(GET /models lists the loaded models)."
            )
        return entry

    def page(self, token: str | None) -> tuple[list[Entry], str | None]:
        """One page of loaded models in name order, after `token`, and the next page's token."""
        self.sync()
        names = sorted(name for name in self._entries if token is None or name > token)
        page = [self._entries[name] for name in names[:PAGE_SIZE]]
        return page, (page[-1].name if len(names) > PAGE_SIZE else None)

    def load(self, name: str, url: str) -> Entry:
        """Load the model folder at `url` as `name` for every worker.

        Raises 400 for a bad name, URL or model file, 409 when `name` is loaded, 507 when the
        model does not fit in the memory budget; a refused load changes nothing.
        """
        check_name(name)
        folder = self.resolve_url(url)
        with self.shared.locked():
            self.sync()
            if name in self._entries:
                raise ModelAlreadyLoaded(
                    f"Model {name!r} is already loaded (from {self._entries[name].url}); "
                    f"unload it with DELETE /models/{name} before loading it again."
                )
            model = self._load(folder)
            invocations = self._wrap(model)  # refuses output keys the objective cannot answer
            cost = model_cost_bytes(model.boosters)
            used = sum(entry.cost_bytes for entry in self._entries.values()) * self.workers
            needed = cost * self.workers
            if used + needed > self.budget:
                raise InsufficientMemory(
                    f"Model {name!r} needs {_mb(needed)} MB ({_mb(cost)} MB in each of "
                    f"{self.workers} workers) but only {_mb(max(0, self.budget - used))} MB of "
                    f"the {_mb(self.budget)} MB budget (XGB_SERVER_MODEL_MEMORY_MB) is free; "
                    "unload a model first."
                )
            generation = self._seen + 1
            entry = Entry(name=name, url=url, load_id=generation, cost_bytes=cost)
            self._publish({**self._entries, name: entry}, generation)
            self._served[name] = (generation, invocations)
            self._invoked.discard(name)
        log.info(
            "Loaded model %r from %s: %.1f kB per worker, %.1f kB for %d worker(s); "
            "%d model(s) now take %.2f of %.0f MB",
            name,
            url,
            cost / 1024,
            needed / 1024,
            self.workers,
            len(self._entries),
            (used + needed) / MB,
            self.budget / MB,
        )
        return entry

    def unload(self, name: str) -> None:
        """Unload `name` from every worker (each drops its copy at its next request); 404 when
        it is not loaded."""
        with self.shared.locked():
            entry = self.entry(name)
            remaining = {key: value for key, value in self._entries.items() if key != name}
            self._publish(remaining, self._seen + 1)
            self._served.pop(name, None)
            self._invoked.discard(name)
        log.info("Unloaded model %r (%.1f kB per worker)", name, entry.cost_bytes / 1024)

    def _publish(self, entries: dict[str, Entry], generation: int) -> None:
        """Write a change for every worker (lock held); this one knows it without rereading."""
        self.shared.write(entries, generation)
        self._entries = entries
        self._seen = generation

    def invocations(self, name: str) -> tuple[Invocations, bool]:
        """The single-model /invocations pipeline around `name`, loading this worker's copy on
        first use, and whether this is the copy's first invoke; 404 when it is not loaded."""
        entry = self.entry(name)
        served = self._served.get(name)
        if served is None or served[0] != entry.load_id:
            served = (entry.load_id, self._wrap(self._load(Path(entry.url))))
            self._served[name] = served
            self._invoked.discard(name)
        first = name not in self._invoked
        self._invoked.add(name)
        return served[1], first

    def _load(self, folder: Path) -> LoadedModel:
        """Load `folder` with the single-model loader (its refusals become 400s)."""
        try:
            model = load_model(
                folder, nthread=self.nthread, max_features=self.settings.serving.max_columns
            )
        except ModelLoadError as error:
            raise BadRequest(error.message) from error
        model.set_threads(self.nthread)
        return model

    def _wrap(self, model: LoadedModel) -> Invocations:
        """The single-model /invocations steps around `model`."""
        return Invocations(model, self.settings, self.default_accept)

    def resolve_url(self, url: str) -> Path:
        """The model folder `url` names, which must lie under the models folder; 400 if not."""
        root = self.models_dir.resolve()
        if not url.strip():
            raise BadRequest(f'"url" is empty; send the model folder, e.g. {root}/NAME/model.')
        path = Path(url)
        if not path.is_absolute():
            raise BadRequest(
                f"url {url!r} is not an absolute path; send the folder SageMaker extracted the "
                f"model into, under {root}."
            )
        folder = path.resolve()
        if not folder.is_relative_to(root):
            raise BadRequest(
                f"url {url!r} is outside {root}; models are loaded only from the folders "
                "SageMaker extracts them into."
            )
        if not folder.is_dir():
            raise BadRequest(
                f"url {url!r} names no folder; send the folder holding the extracted "
                "model.tar.gz (with its xgboost-model file)."
            )
        return folder


def check_name(name: str) -> None:
    """Refuse a model name that cannot be one path segment of /models/{name}."""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f'"model_name" must be 1 to {MAX_NAME_LENGTH} characters long.')
    if name in (".", "..") or any(c in name for c in "/\\") or not name.isprintable():
        raise BadRequest(
            f"model_name {name!r} is not allowed: it must be printable, without / or \\, and "
            "not . or .. (it becomes the path /models/{model_name})."
        )


def _mb(size: int) -> str:
    return f"{size / MB:.2f}"
