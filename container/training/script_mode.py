"""Script mode: run the user's own training program with `sagemaker-training`, unchanged.

A job names its program with the `sagemaker_program` hyperparameter (or `SAGEMAKER_PROGRAM`)
and its code with `sagemaker_submit_directory` (an s3 URI of a `sourcedir.tar.gz`, a local
folder or tarball, `file://` allowed) or ships it in `/opt/ml/code`. `sagemaker-training` puts
the code in `/opt/ml/code`, installs a `requirements.txt` beside it, writes the `SM_*`
variables and runs the program with the other hyperparameters as `--name value` arguments.

The program's stderr is streamed to the log as it is written and its tail kept, so a failure
reaches `output/failure` with the user's own traceback. SIGTERM is passed on to the program.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any

from container.errors import ClientError
from container.settings import Settings, export_base_dir
from container.training.termination import StopRequest, TrainingStopped

logger = logging.getLogger(__name__)

PROGRAM_KEY = "sagemaker_program"
SUBMIT_DIRECTORY_KEY = "sagemaker_submit_directory"
REQUIREMENTS = "requirements.txt"
TAIL_BYTES = 64 * 1024
"""How much of the program's stderr is kept for `output/failure`."""
TRACEBACK_HEADER = "Traceback (most recent call last):"


def user_program(settings: Settings, hyperparameters: Mapping[str, Any]) -> str | None:
    """The program the job names (`SAGEMAKER_PROGRAM` first, as `sagemaker-training` reads it),
    or None for algorithm mode."""
    program = settings.program or hyperparameters.get(PROGRAM_KEY)
    if program is None:
        return None
    return str(program).strip() or None


def code_source(settings: Settings, hyperparameters: Mapping[str, Any]) -> str:
    """Where the code comes from: the hyperparameter, `SAGEMAKER_SUBMIT_DIRECTORY`, or `code/`."""
    source = hyperparameters.get(SUBMIT_DIRECTORY_KEY) or settings.submit_directory
    if not source:
        return str(settings.paths.code_dir)
    source = str(source).strip()
    return source.removeprefix("file://") if source.startswith("file://") else source


def pip_environment(settings: Settings, code_dir: Path) -> dict[str, str]:
    """pip options for `requirements.txt` (pip reads `PIP_*` variables): offline with a wheel
    folder, never prompting, no version check."""
    options = {"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if settings.wheel_dir is not None:
        installs = any((code_dir / name).is_file() for name in (REQUIREMENTS, "setup.py"))
        if installs and not settings.wheel_dir.is_dir():
            raise ClientError(
                f"XGB_WHEEL_DIR={settings.wheel_dir} is not a folder; point it at a folder of "
                "wheels (pip download -d DIR -r requirements.txt) or unset it."
            )
        options.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(settings.wheel_dir))
    return options


def run_program(settings: Settings, config: Any, stop: StopRequest) -> None:
    """Fetch, install and run the user's program; raise `ClientError` with its traceback if it
    fails, `TrainingStopped` if SIGTERM ended it. `config` is the job's `JobConfig`."""
    export_base_dir(settings)
    from sagemaker_training import entry_point, environment, errors, files, runner

    from container.training import cluster

    env = environment.Environment(
        resource_config=config.resources or None,
        input_data_config=config.input_data or None,
        hyperparameters=config.hyperparameters or None,
    )
    program = user_program(settings, config.hyperparameters) or ""
    code_dir = Path(environment.code_dir)
    source = code_source(settings, config.hyperparameters)
    hosts = cluster.hosts_from_config(config.resources or {})
    if hosts.count > 1:  # sagemaker-training would retry unresolvable names for 15 minutes
        for host in hosts.names:
            cluster.resolve_host(host, settings.distributed.resolve_timeout_s)

    try:
        files.download_and_extract(uri=source, path=str(code_dir))
    except Exception as exc:
        raise ClientError(
            f"Could not fetch the training code from {source} into {code_dir}: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    _check_program(program, code_dir, source)

    environment.write_env_vars(pip_environment(settings, code_dir))
    install_error: errors.ClientError | None = None
    with _stderr_tail() as tail:
        try:
            entry_point.install(program, str(code_dir), capture_error=False)
        except errors.ClientError as exc:
            install_error = exc
    if install_error is not None:  # read the tail once the pump has taken all of it
        raise ClientError(_install_failure(install_error, program, code_dir, tail.text()))

    for directory in (settings.paths.model_dir, settings.paths.output_data_dir):
        directory.mkdir(parents=True, exist_ok=True)  # SM_MODEL_DIR, SM_OUTPUT_DATA_DIR
    env_vars = env.to_env_vars()
    environment.write_env_vars(env_vars)
    args = env.to_cmd_args()
    logger.info("Running the training program %s %s (code in %s).", program, args, code_dir)
    failed: errors.ExecuteUserScriptError | None = None
    with _stderr_tail() as tail, _forward_sigterm(stop):
        try:
            runner.get(runner.ProcessRunnerType, program, args, env_vars).run(
                wait=True, capture_error=False
            )
        except errors.ExecuteUserScriptError as exc:
            failed = exc
    if failed is not None:  # after the block: the pump has taken every byte the program wrote
        status = failed.return_code
        if stop.requested:
            raise TrainingStopped(
                f"Training was stopped by SIGTERM; the training program {program} "
                f"exited with status {status}."
            )
        raise ClientError(program_failure(program, status, tail.text()))
    logger.info("The training program %s finished.", program)


def _check_program(program: str, code_dir: Path, source: str) -> None:
    """Fail with a sentence when the named file is not there (a package may name a module)."""
    if (code_dir / program).is_file() or (code_dir / "setup.py").is_file():
        return
    present = sorted(p.name for p in code_dir.iterdir()) if code_dir.is_dir() else []
    holds = f"it holds {', '.join(present)}" if present else "it is empty"
    raise ClientError(
        f"The training program {program!r} is not in {code_dir} ({holds}; code taken from "
        f"{source}). Pass entry_point= and source_dir= to the estimator, or set "
        f"'{SUBMIT_DIRECTORY_KEY}' to a folder or tarball that holds the program."
    )


def _install_failure(exc: Exception, program: str, code_dir: Path, stderr: str) -> str:
    if (code_dir / REQUIREMENTS).is_file() and type(exc).__name__.startswith("Install"):
        errors = [line for line in stderr.splitlines() if line.startswith("ERROR")]
        reason = errors[-1] if errors else last_line(stderr) or str(exc)
        return (
            f"Installing {code_dir / REQUIREMENTS} failed: {reason} "
            "(offline, set XGB_WHEEL_DIR to a folder of wheels for the requirements).\n\n"
            f"{stderr.strip()}"
        )
    return f"The training program {program!r} cannot be run: {exc}"


def program_failure(program: str, status: str | int, stderr: str) -> str:
    """The failure text: a sentence naming the program and its error, then its traceback."""
    details = last_traceback(stderr)
    reason = last_line(details)
    code = int(status) if str(status).lstrip("-").isdigit() else None
    if code is not None and code < 0:
        how = f"was killed by signal {-code}"
        how += " (out of memory, most likely)" if code == -signal.SIGKILL else ""
    else:
        how = f"failed with exit status {status}"
    sentence = f"The training program {program} {how}"
    sentence += f": {reason}" if reason else " (it wrote nothing to stderr)."
    return f"{sentence}\n\n{details}" if details else sentence


def last_traceback(stderr: str) -> str:
    """The last Python traceback in `stderr`, or its last lines when there is none (a syntax
    error in the script itself is reported without a `Traceback` header)."""
    start = stderr.rfind(TRACEBACK_HEADER)
    if start >= 0:
        return stderr[start:].strip()
    return "\n".join(stderr.strip().splitlines()[-20:])


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


class _Tail:
    """The last `TAIL_BYTES` of what was written to stderr."""

    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > TAIL_BYTES:
            del self.data[: len(self.data) - TAIL_BYTES]

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


@contextmanager
def _stderr_tail() -> Iterator[_Tail]:
    """Tee file descriptor 2 (this process and the children it starts) through a pipe: every
    byte still reaches the real stderr, and the tail is kept."""
    tail = _Tail()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    saved = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        while chunk := os.read(read_end, 65536):
            os.write(saved, chunk)
            tail.add(chunk)

    thread = threading.Thread(target=pump, name="stderr-tail", daemon=True)
    thread.start()
    try:
        yield tail
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer in this process is gone: EOF once children exit
        thread.join(timeout=10)
        if not thread.is_alive():  # else a grandchild still holds the pipe: leave both open
            os.close(saved)
            os.close(read_end)


def _children() -> list[int]:
    """This process's child PIDs (Linux `/proc`); empty where that is not available."""
    pids: list[int] = []
    for task in Path("/proc/self/task").glob("*"):
        try:
            pids += [int(pid) for pid in (task / "children").read_text().split()]
        except OSError:
            continue
    return pids


@contextmanager
def _forward_sigterm(stop: StopRequest) -> Iterator[None]:
    """While the program runs, SIGTERM is remembered and passed on to it (it may checkpoint);
    the job then ends with the stop status once the program exits."""

    def forward(signum: int, frame: FrameType | None) -> None:
        stop.requested = True
        for pid in _children():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
