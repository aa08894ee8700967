"""Every process pool finegrain starts ends with its parent, even one killed by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from helpers import alive, descendants, wait_for

PHANTOM = """
import sys, time
import finegrain.data.phantom.writer as writer
real = writer._write_chunk
def slow(chunk):
    time.sleep(120)
    return real(chunk)
writer._write_chunk = slow
writer.make_phantom(sys.argv[1], studies=800, size=32, workers=2)
"""

PREPARE = """
import sys, time
import pandas as pd
import finegrain.data.cache as cache
def slow(*args, **kwargs):
    time.sleep(120)
cache.append_jsonl = slow
paths = sys.argv[2:]
frame = pd.DataFrame({"image_id": [str(i) for i in range(len(paths))], "path": paths})
cache.prepare(frame, sys.argv[1], size=16, workers=2, chunk=1, progress=False)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
@pytest.mark.parametrize("stage", ["phantom", "prepare"])
def test_pool_workers_die_with_a_killed_parent(stage, tmp_path):
    args = [str(tmp_path / "out")]
    if stage == "prepare":
        for i in range(8):
            path = tmp_path / f"{i}.png"
            Image.fromarray(np.full((20, 20), i, np.uint8)).save(path)
            args.append(str(path))
    script = PHANTOM if stage == "phantom" else PREPARE
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    parent = subprocess.Popen([sys.executable, "-c", script, *args], env=env)
    workers: set[int] = set()
    try:
        wait_for(lambda: len(descendants(parent.pid)) >= 2, 60, "the pool's workers")
        time.sleep(2)  # the workers are set up and busy (or waiting)
        workers = descendants(parent.pid)
        assert parent.poll() is None
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        wait_for(lambda: not alive(workers), 15, f"the workers {sorted(alive(workers))} to end")
    finally:
        for pid in alive(workers | {parent.pid}):
            os.kill(pid, signal.SIGKILL)


def test_one_die_with_parent_for_pools_and_launchers():
    """The launchers' workers use the shared mechanism; a worker whose starting process is
    already gone ends at once."""
    from finegrain.experiment import launchers
    from finegrain.workers import die_with_parent

    assert launchers.die_with_parent is die_with_parent
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )  # a process that ended (reaped)
    code = "import os, sys; from finegrain.workers import die_with_parent; "
    code += f"die_with_parent({int(gone.stdout)}); print('still alive')"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 1 and "still alive" not in result.stdout, result
