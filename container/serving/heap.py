"""Keep a batch worker's freed memory for its next request instead of handing it back.

glibc serves every allocation over 32 MB (a batch body, the matrix of its rows, the answer)
with a fresh `mmap`, and gives it back with `munmap` when it is freed; the next request's
allocation then faults in every page again, and a 52 MB body costs 13,000 page faults on
arrival. A batch transform sends a worker one large request after another, so in batch mode
the worker asks glibc (`mallopt`, a documented glibc call) to take large blocks from its heap
and never to trim that heap: the pages faulted in by one request serve the next. The worker's
resident size then stays at its peak between requests, which it reaches on every request
anyway; the peak itself does not grow.
"""

from __future__ import annotations

import ctypes
import logging
import platform

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
"""`mallopt` parameters, from glibc's `malloc.h`."""

_NEVER = 2**31 - 1
"""The largest `int`: a trim threshold no heap reaches."""


def keep_freed_memory() -> bool:
    """Make this process reuse the memory it frees rather than return it to the system; False
    (and nothing changed) where the C library is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        log.info("The C library is not glibc: freed memory is returned to the system as usual.")
        return False
    libc = ctypes.CDLL(None)
    # mallopt returns 1 on success, 0 on error.
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, _NEVER))
