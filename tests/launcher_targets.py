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
