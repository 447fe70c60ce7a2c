"""`serve`'s main process: nginx in front (`front.py`), gunicorn behind it (`server.py`).

It starts both, forwards SIGTERM (gunicorn finishes the requests in flight, nginx stops
accepting at once and hands their answers on), and when either stops, stops the other and exits
with gunicorn's status: the container never keeps a front without workers, or workers without a
front. Both children also get SIGTERM if this process dies (`PR_SET_PDEATHSIG`), and it is
their subreaper: what either leaves behind (an nginx worker whose master was killed) is
stopped before `serve` exits. The process
stays small: the model, numpy and gunicorn are imported in gunicorn's child only.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from stat import S_IXOTH
from types import FrameType

from container.errors import ContainerError
from container.serving.front import RunDir, find_nginx, render_config
from container.serving.health import HealthResponder
from container.settings import Settings

log = logging.getLogger("container.serving")

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_STRAYS_GRACE_S = 5.0
_RUN_PREFIX = "xgboost-serve-"


def _prctl(option: int, value: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value)


def _die_with_parent() -> None:
    """In a child: SIGTERM when the supervisor dies, however it dies."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _own_children() -> list[int]:
    me = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if stat.read_text().rsplit(")", 1)[1].split()[1] == me:
                found.append(int(stat.parent.name))
    return found


def _stop_strays() -> None:
    """Processes orphaned under this one (it is their subreaper: an nginx worker whose master
    was killed, say): SIGTERM, then SIGKILL after a grace period, and reaped."""
    strays = _own_children()
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in strays:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        deadline = time.monotonic() + _STRAYS_GRACE_S
        while strays and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            strays = _own_children()
            time.sleep(0.05)


def _fork(child: Callable[[], int]) -> int:
    """Run `child()` (which returns an exit status) in a new process; its pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _die_with_parent()
        code = child()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        log.exception("serve's child process failed")
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _start_nginx(nginx: str, run_dir: RunDir) -> int:
    def child() -> int:
        os.execv(nginx, [nginx, "-c", str(run_dir.config), "-p", str(run_dir.path), "-e", "stderr"])
        return 1  # not reached

    return _fork(child)


def _start_gunicorn(settings: Settings, run_dir: RunDir, health: HealthResponder) -> int:
    def child() -> int:
        from container.serving.server import run  # the heavy imports, in this child only

        return run(settings, run_dir, health)

    return _fork(child)


def _status(wait_status: int) -> int:
    code = os.waitstatus_to_exitcode(wait_status)
    return code if code >= 0 else 128 - code


def _supervise(settings: Settings, run_dir: RunDir, nginx: str) -> int:
    stopping = False
    children: dict[str, int] = {}

    def stop(name: str, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, KeyError):
            os.kill(children[name], signum)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        """SIGTERM: nginx stops accepting and finishes the requests it holds (reading their
        bodies, then handing their answers on), and gunicorn is stopped only once nginx is
        done, so that every request already accepted is answered."""
        nonlocal stopping
        stopping = True
        if "nginx" in children:
            stop("nginx", signal.SIGQUIT)
        else:
            stop("gunicorn", signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)  # orphans of nginx or gunicorn come back here
    health = HealthResponder(run_dir.health)
    health.listen()  # gunicorn's master answers on it; bound now, nginx never finds it absent
    children["nginx"] = _start_nginx(nginx, run_dir)
    children["gunicorn"] = _start_gunicorn(settings, run_dir, health)
    code = 0
    while children:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        name = next((name for name, child in children.items() if child == pid), None)
        if name is None:
            continue
        del children[name]
        status = _status(wait_status)
        code = code or status
        if not stopping:
            log.error("%s exited (status %d); stopping serve", name, status)
            code = code or 1
            stopping = True
        stop("gunicorn", signal.SIGTERM)
        stop("nginx", signal.SIGTERM)
    _stop_strays()
    return code


def _reachable_by_others(folder: Path) -> bool:
    """Whether a process of another user (nobody) can pass through `folder` and its parents."""
    try:
        return all(p.stat().st_mode & S_IXOTH for p in (folder, *folder.parents))
    except OSError:
        return False


def _run_parent(run_as_root: bool) -> Path:
    """Where the run folder goes: the temporary folder, unless serve runs as root (nginx's
    workers then run as nobody) and nobody cannot reach it (a TMPDIR inside a private folder,
    as pytest's are), then /tmp."""
    temp = Path(tempfile.gettempdir())
    if run_as_root and not _reachable_by_others(temp) and _reachable_by_others(Path("/tmp")):
        return Path("/tmp")
    return temp


def _remove_stale_run_dirs() -> None:
    """The folders of earlier `serve`s killed without a chance to remove theirs (SIGKILL)."""
    parents = {Path(tempfile.gettempdir()), Path("/tmp")}
    folders = [folder for parent in parents for folder in parent.glob(f"{_RUN_PREFIX}*-*")]
    for folder in folders:
        pid = folder.name.removeprefix(_RUN_PREFIX).split("-", 1)[0]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    """Serve until SIGTERM; 1 with a logged sentence if serve cannot start."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = Settings.from_environ()
        nginx = find_nginx()
    except (ContainerError, ValueError) as exc:
        message = exc.message if isinstance(exc, ContainerError) else str(exc)
        log.error("serve cannot start: %s", message)
        return 1
    _remove_stale_run_dirs()
    run_as_root = os.geteuid() == 0
    run_dir = RunDir(
        Path(tempfile.mkdtemp(prefix=f"{_RUN_PREFIX}{os.getpid()}-", dir=_run_parent(run_as_root)))
    )
    if run_as_root:
        run_dir.path.chmod(0o755)  # nginx's workers run as nobody and need the sockets
    run_dir.config.write_text(render_config(settings.serving, run_dir, run_as_root))
    try:
        return _supervise(settings, run_dir, nginx)
    finally:
        shutil.rmtree(run_dir.path, ignore_errors=True)
