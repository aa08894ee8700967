"""DDP through torchrun: 2 CPU processes (gloo) match a single process on the same global batch.

The model is BatchNorm-free (see helpers.register_tiny_cnn): with BatchNorm, each rank
normalises its own half-batch, which is the usual DDP semantics but not bit-comparable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from finegrain.io import read_jsonl
from finegrain.train.checkpoint import load_checkpoint
from finegrain.train.loop import train
from helpers import make_config, tiny_datasets

TESTS = Path(__file__).resolve().parent

SETTINGS = dict(iterations=6, checkpoint_every=2, batch_size=8)


def test_two_process_gloo_matches_single_process(tmp_path):
    ddp_out = tmp_path / "ddp"
    script = tmp_path / "child.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(TESTS)!r})
            import torch
            torch.set_num_threads(1)
            from helpers import make_config, tiny_datasets
            from finegrain.train.loop import train
            train(make_config({str(ddp_out)!r}, **{SETTINGS!r}), datasets=tiny_datasets(),
                  progress=False)
            """
        )
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", str(script)]
    # the torchrun job and the single-process reference run side by side
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        single = train(
            make_config(tmp_path / "single", **SETTINGS), datasets=tiny_datasets(), progress=False
        )
        _, stderr = child.communicate(timeout=180)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, stderr.decode()[-3000:]

    assert json.loads((ddp_out / "config.json").read_text())["world_size"] == 2
    ma, mb = read_jsonl(single / "metrics.jsonl"), read_jsonl(ddp_out / "metrics.jsonl")
    assert [m["iteration"] for m in mb] == [2, 4, 6]
    np.testing.assert_allclose(
        [m["train_loss"] for m in mb], [m["train_loss"] for m in ma], rtol=1e-5, atol=1e-6
    )
    wa = load_checkpoint(single / "checkpoints" / "iter-0000006.pt")["model"]
    wb = load_checkpoint(ddp_out / "checkpoints" / "iter-0000006.pt")["model"]
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], rtol=1e-4, atol=1e-6)
    pa = pd.read_csv(single / "predictions-validate.csv")
    pb = pd.read_csv(ddp_out / "predictions-validate.csv")
    assert list(pb["image_id"]) == list(pa["image_id"])  # gathered back in dataset order
    np.testing.assert_allclose(pb["score"], pa["score"], rtol=1e-4, atol=1e-6)
