"""SIGTERM handling: SageMaker stops a job (and spot capacity ends) with SIGTERM, then SIGKILL.

The job names the phase it is in (`StopRequest.enter`). The handler records the request, and
raises `TrainingStopped` at once only in the phases where our own Python code is running
(start-up, parsing, spilling): there an exception unwinds through `try`/`finally` and deletes
what it must. Elsewhere XGBoost is running, and an exception raised inside its data callback
is swallowed by ctypes (the matrix is then built from half the data, or the process crashes),
so the handler only records the request and the job stops at the next safe point:

- matrix build: the spill iterator ends its pass; XGBoost returns an error, read as the stop;
- rounds: the boosting loop finishes the round, saves a checkpoint, then stops;
- model save: the save (atomic) finishes, then the job stops.

`TrainingStopped` derives from `BaseException` (as `KeyboardInterrupt` does), so the broad
`except Exception` of a reader or a library does not turn a stop into another failure.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

logger = logging.getLogger("container.training")

START_UP = "start-up"
PARSING = "parsing"
SPILLING = "spilling"
MATRIX_BUILD = "matrix build"
ROUNDS = "rounds"
MODEL_SAVE = "model save"
PHASES = (START_UP, PARSING, SPILLING, MATRIX_BUILD, ROUNDS, MODEL_SAVE)
"""In the order a job passes them; `parsing` reads a channel into memory, `spilling` streams a
dense channel from its files into the temporary feature file (parsing it on the way)."""
_STOP_AT_ONCE = (START_UP, PARSING, SPILLING)


class TrainingStopped(BaseException):
    """The job was asked to stop; the message names the phase it stopped in."""


class StopRequest:
    """Remembers a SIGTERM and the phase the job is in."""

    def __init__(self) -> None:
        self.requested = False
        self.phase = START_UP
        self.detail = ""
        """What the phase is working on (`channel 'train'`), for the sentence."""
        self.outcome = "no model was written"
        """What a stop now leaves behind, for the sentence."""

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)

    def enter(self, phase: str, detail: str = "") -> None:
        """Note (and log) the phase the job starts now; stop here if SIGTERM came before,
        unless the phase is the model save: short and atomic, it keeps the rounds' work, and
        the job reports the stop once it is done."""
        self.phase, self.detail = phase, detail
        logger.info("Phase: %s%s.", phase, f" ({detail})" if detail else "")
        if phase != MODEL_SAVE:
            self.check()

    def check(self) -> None:
        """Raise `TrainingStopped` if SIGTERM came (a safe point)."""
        if self.requested:
            raise self.stopped()

    def stopped(self, outcome: str = "") -> TrainingStopped:
        """The error that ends the job in the current phase; `outcome` says what was kept."""
        where = f" ({self.detail})" if self.detail else ""
        return TrainingStopped(
            f"Training was stopped by SIGTERM during {self.phase}{where}; "
            f"{outcome or self.outcome}."
        )

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # No logging here: the handler may run while the main thread is writing to stdout,
        # and a second write to the same buffered stream raises "reentrant call".
        self.requested = True
        if self.phase in _STOP_AT_ONCE:
            raise self.stopped()
