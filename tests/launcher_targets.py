"""Fake run targets for tests/test_launchers.py, in a module that imports no torch: the local
launcher's worker processes import it to unpickle the target."""

from __future__ import annotations

import os
import time
from pathlib import Path


def record_environment(task) -> str:
    """Write this worker's CUDA_VISIBLE_DEVICES and pid to ``<task.config>/<label>``."""
    time.sleep(0.3)  # overlap with the other workers
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")
    Path(task.config, task.label).write_text(f"{gpus} {os.getpid()}")
    return task.label


def fail_or_succeed(task) -> str:
    """``bad`` raises a ValueError, ``dies`` exits without a word, the rest succeed."""
    if task.label == "bad":
        raise ValueError("no such observation: 'Bad'")
    if task.label == "dies":
        os._exit(3)
    return record_environment(task)


def hold_a_named_semaphore(task) -> str:
    """Create a named semaphore, as tqdm's lock does in a spawned worker, write
    ``<task.config>/<label>.ready`` and wait to be stopped."""
    import multiprocessing

    lock = multiprocessing.RLock()  # registered with the resource tracker (spawn)
    Path(task.config, f"{task.label}.ready").write_text(str(os.getpid()))
    time.sleep(120)
    return f"{task.label} {lock}"
