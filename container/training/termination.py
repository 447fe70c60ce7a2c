"""SIGTERM handling: SageMaker stops a job (and spot capacity ends) with SIGTERM, then SIGKILL.

Outside the boosting loop the signal raises `TrainingStopped` at once; inside it, the loop
finishes the current round, saves a checkpoint and then raises it.
"""

from __future__ import annotations

import signal
from types import FrameType


class TrainingStopped(Exception):
    """The job was asked to stop; the message says where it stopped."""


class StopRequest:
    """Remembers a SIGTERM; `in_loop` tells the handler to defer to the boosting loop."""

    def __init__(self) -> None:
        self.requested = False
        self.in_loop = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        if not self.in_loop:
            raise TrainingStopped("Training was stopped by SIGTERM before boosting started.")
