"""Worker processes that end with the process that started them.

Every worker process finegrain starts (the phantom's writers, ``prepare``'s decoders, the
benchmark's local runs) calls :func:`die_with_parent` first, for pools as their
``initializer`` with ``initargs=(os.getpid(),)``: a worker left behind by a SIGKILLed parent
would otherwise sleep forever on a queue that nobody writes to (or train on for hours).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def set_parent_death_signal() -> None:
    """On Linux, ask the kernel to send SIGTERM to this process when its parent dies (also a
    ``preexec_fn`` for a subprocess)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def die_with_parent(parent_pid: int | None = None, interval: float = 1.0) -> None:
    """Make this worker end (SIGTERM) when its parent ``parent_pid`` does.

    On Linux the kernel sends SIGTERM when the parent dies, even by SIGKILL; elsewhere (and if
    the parent died before this call, when this process is no longer a child of
    ``parent_pid``: it exits at once) a daemon thread checks every ``interval`` seconds that the
    parent is still ours, then sends SIGTERM itself (so ``finally`` blocks that handle it run)
    and exits 5 s later. ``parent_pid``: the parent's pid, passed by the parent (default: the
    parent at the time of the call, which cannot tell a parent that died already).
    """
    if parent_pid is None:
        parent_pid = os.getppid()
    set_parent_death_signal()

    def orphaned() -> bool:
        return os.getppid() != parent_pid

    if orphaned():
        os._exit(1)

    def watch() -> None:
        while not orphaned():
            time.sleep(interval)
        log.warning("the parent process %d is gone: stopping this worker", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        os._exit(1)

    threading.Thread(target=watch, name="finegrain-parent-watch", daemon=True).start()
