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


def _exists(pid: int) -> bool:
    """Whether a process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_parent(parent_pid: int | None = None, interval: float = 1.0) -> None:
    """Make this worker end (SIGTERM) when the process ``parent_pid`` that started it does.

    ``parent_pid`` is passed by that process (``initargs=(os.getpid(),)``); it need not be this
    process's direct parent (a ``forkserver`` worker's parent is the fork server). On Linux the
    kernel sends SIGTERM when the direct parent dies, even by SIGKILL; everywhere, a daemon
    thread checks every ``interval`` seconds that the direct parent is unchanged and
    ``parent_pid`` still exists, else sends SIGTERM itself (so ``finally`` blocks that handle it
    run) and exits 5 s later. A worker whose ``parent_pid`` is already gone exits at once.
    Default ``parent_pid``: the direct parent at the time of the call.
    """
    direct = os.getppid()
    if parent_pid is None:
        parent_pid = direct
    set_parent_death_signal()

    def orphaned() -> bool:
        return os.getppid() != direct or not _exists(parent_pid)

    if orphaned():
        os._exit(1)

    def watch() -> None:
        # the stop signals go to the main thread, which alone handles them: delivered here,
        # they would wait for a sleep or a long call of the main thread to end
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        while not orphaned():
            time.sleep(interval)
        log.warning("the parent process %d is gone: stopping this worker", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        os._exit(1)

    threading.Thread(target=watch, name="finegrain-parent-watch", daemon=True).start()
