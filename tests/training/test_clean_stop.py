"""SIGTERM at random moments of every phase of a real `./train`: each run ends with exit 143 and
a sentence naming the phase, no partial model, no temporary file; a run stopped in its rounds
leaves a checkpoint from which a restarted job ends with the model of an uninterrupted one.

The data (300,000 rows x 20 features, 68 MB of CSV) makes each phase last about a second here
(the model save excepted: milliseconds).
One uninterrupted run measures when each phase starts (the job logs `Phase: ...`); each stopped
run then waits for its target phase to start and sends SIGTERM a random part of that phase's
length later. `STOP_TEST_RUNS` (default 10) and `STOP_TEST_SEED` (default 19) change the sweep.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from container.training.termination import (
    MATRIX_BUILD,
    MODEL_SAVE,
    PARSING,
    PHASES,
    ROUNDS,
    SPILLING,
)
from tests.support.opt_ml import Job, make_job
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

RUNS = int(os.environ.get("STOP_TEST_RUNS", "10"))
SEED = int(os.environ.get("STOP_TEST_SEED", "19"))
TARGETS = (PARSING, SPILLING, MATRIX_BUILD, ROUNDS, MODEL_SAVE)
ROWS = 300_000
HYPERPARAMETERS = {"num_round": 12, "max_depth": 6, "checkpoint_frequency": 4}
IN_MEMORY = {**HYPERPARAMETERS, "tree_method": "approx"}
"""The approx tree method reads the channel into memory (phase `parsing`), hist spills it."""
FINISHED = "Training finished"
NEXT = {
    PARSING: MATRIX_BUILD,
    SPILLING: MATRIX_BUILD,
    MATRIX_BUILD: ROUNDS,
    ROUNDS: MODEL_SAVE,
    MODEL_SAVE: FINISHED,
}
_NAMES = "|".join(PHASES)
_PHASE_LINE = re.compile(rf"Phase: ({_NAMES})[ .]")
_STOPPED = re.compile(rf"^Training was stopped by SIGTERM during ({_NAMES})[ ;]")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(ROWS, 20)).astype(np.float32)
    label = features[:, :5] @ np.arange(1, 6, dtype=np.float32) + rng.normal(size=ROWS)
    columns = {"label": label.astype(np.float32)}
    columns.update({f"f{i}": features[:, i] for i in range(features.shape[1])})
    path = tmp_path_factory.mktemp("stop-data") / "train.csv"
    pa_csv.write_csv(pa.table(columns), path, pa_csv.WriteOptions(include_header=False))
    return path


@dataclass
class Run:
    """A `./train` in its own session whose log lines are read (and timed) by a thread."""

    job: Job
    tmpdir: Path
    process: subprocess.Popen[str]
    started: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)
    phase_times: dict[str, float] = field(default_factory=dict)
    marks: dict[str, threading.Event] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.marks = {phase: threading.Event() for phase in (*PHASES, FINISHED)}
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            match = _PHASE_LINE.search(line)
            phase = match.group(1) if match else FINISHED if FINISHED in line else None
            if phase in self.marks:
                self.phase_times.setdefault(phase, time.monotonic() - self.started)
                self.marks[phase].set()

    def wait_for(self, phase: str, timeout: float = 120) -> None:
        assert self.marks[phase].wait(timeout), f"phase {phase} never began:\n{self.output}"

    def finish(self, timeout: float = 180) -> int:
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.reader.join(30)
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)


def new_job(root: Path, data: Path, hyperparameters: dict) -> Job:
    """An `/opt/ml` tree with `data` (hard-linked) as its train channel and a checkpoint dir."""
    job = make_job(root, hyperparameters, {"train": {"content_type": "text/csv"}})
    os.link(data, job.channel_dir("train") / "train.csv")
    (job.base / "checkpoints").mkdir()
    return job


def start(job: Job) -> Run:
    tmpdir = job.base.parent / "tmp"
    tmpdir.mkdir(exist_ok=True)
    return Run(job=job, tmpdir=tmpdir, process=job.start(TMPDIR=str(tmpdir)))


def leftovers(run: Run) -> list[str]:
    """Temporary files left anywhere in the job's tree or its TMPDIR."""
    found = [p.name for p in run.tmpdir.rglob("*")]
    found += [
        str(p.relative_to(run.job.base))
        for p in run.job.base.rglob("*")
        if p.name.startswith(".") or p.name.endswith(".tmp")
    ]
    return found


def test_sigterm_at_random_moments_of_every_phase_stops_cleanly(
    tmp_path: Path, data_file: Path
) -> None:
    print(f"STOP_TEST_SEED={SEED} STOP_TEST_RUNS={RUNS}")
    chooser = random.Random(SEED)

    reference = start(new_job(tmp_path / "reference", data_file, HYPERPARAMETERS))
    assert reference.finish() == 0, reference.output
    reference_model = reference.job.model_file.read_bytes()
    times = reference.phase_times
    order = (SPILLING, MATRIX_BUILD, ROUNDS, MODEL_SAVE, FINISHED)
    length = {phase: times[after] - times[phase] for phase, after in pairwise(order)}
    length[PARSING] = length[SPILLING]  # the same file, read into memory instead
    print("phase lengths (s):", {phase: round(seconds, 2) for phase, seconds in length.items()})

    named: Counter[str] = Counter()
    resumed = after_the_end = 0
    for index in range(RUNS):
        target = TARGETS[index % len(TARGETS)]
        # The model is saved in milliseconds: stop within the first part of that phase.
        fraction = chooser.uniform(0, 0.3 if target == MODEL_SAVE else 0.8)
        hyperparameters = IN_MEMORY if target == PARSING else HYPERPARAMETERS
        run = start(new_job(tmp_path / f"run-{index}", data_file, hyperparameters))
        run.wait_for(target)
        # The random moment: `fraction` of the phase's length in the reference run, or the
        # start of the next phase if this run gets there first (the load here varies).
        run.marks[NEXT[target]].wait(fraction * length[target])
        run.process.send_signal(signal.SIGTERM)
        code = run.finish()
        context = f"run {index} (seed {SEED}): SIGTERM {fraction:.2f} into {target}\n"
        if code == -signal.SIGTERM:
            # After the job's last check: the default action ends it (143 in a container).
            assert run.job.failure is None, context + run.output
            assert run.job.model_file.read_bytes() == reference_model, context
            assert not leftovers(run), context + str(leftovers(run))
            after_the_end += 1
            continue
        assert code == 143, context + run.output
        sentence = (run.job.failure or "").splitlines()[0]
        phase = _STOPPED.match(sentence)
        assert phase, context + sentence
        stopped_in = phase.group(1)
        named[stopped_in] += 1
        assert PHASES.index(stopped_in) >= PHASES.index(target), context + sentence
        assert "Exception ignored" not in run.output, context + run.output
        assert not leftovers(run), context + str(leftovers(run))
        if stopped_in == MODEL_SAVE:  # the save was let finish: the whole model
            assert run.job.model_file.is_file(), context + sentence
            assert run.job.model_file.read_bytes() == reference_model, context
            continue
        assert not run.job.model_file.exists(), context + sentence
        if stopped_in == ROUNDS and "checkpoint xgboost-checkpoint." in sentence:
            again = start(run.job)
            assert again.finish() == 0, context + again.output
            assert "Resuming from checkpoint" in again.output, context
            assert run.job.model_file.read_bytes() == reference_model, context
            resumed += 1
        elif stopped_in == ROUNDS:
            assert "after 0 round(s)" in sentence, context + sentence
    print(
        f"runs per phase named: {dict(named)}; resumed to the same model: {resumed}; "
        f"ended by SIGTERM's default action after the last check: {after_the_end}"
    )
    if len(TARGETS) <= RUNS:  # the model save takes milliseconds: a run may miss it
        assert set(TARGETS) - {MODEL_SAVE} <= set(named), dict(named)


@pytest.mark.parametrize(
    ("phase", "raises_at_once"),
    [(PARSING, True), (SPILLING, True), (MATRIX_BUILD, False), (ROUNDS, False)],
    ids=[PARSING, SPILLING, MATRIX_BUILD, ROUNDS],
)
def test_the_handler_raises_only_where_our_own_code_runs(phase: str, raises_at_once: bool) -> None:
    from container.training.termination import StopRequest, TrainingStopped

    previous = signal.getsignal(signal.SIGTERM)
    stop = StopRequest()
    stop.install()
    expected = rf"^Training was stopped by SIGTERM during {phase} \(channel 'train'\); no model"
    try:
        stop.enter(phase, "channel 'train'")
        if raises_at_once:
            with pytest.raises(TrainingStopped, match=expected):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises before this ends
        else:
            os.kill(os.getpid(), signal.SIGTERM)
            wait_until(lambda: stop.requested, 5, "the stop request")
            with pytest.raises(TrainingStopped, match=expected):
                stop.check()
    finally:
        signal.signal(signal.SIGTERM, previous)
