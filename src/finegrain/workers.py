"""Worker processes that end with the process that started them.

Every process pool finegrain starts (the phantom's writers, ``prepare``'s decoders) passes
:func:`die_with_parent` as its ``initializer``: a worker left behind by a SIGKILLed parent
would otherwise sleep forever on a queue that nobody writes to.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def die_with_parent(interval: float = 1.0) -> None:
    """Make this worker end when its parent does (a pool ``initializer``).

    On Linux the kernel sends SIGTERM when the parent dies, even by SIGKILL; elsewhere (and if
    the parent died before this call) a daemon thread checks every ``interval`` seconds that
    the parent is still ours.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    if parent == 1:  # orphaned already
        os._exit(1)
    threading.Thread(target=watch, name="finegrain-parent-watch", daemon=True).start()
