"""The training loop: run-directory layout, exact resume after a kill, checkpoints, load_model.

Uses a tiny in-test dataset with the CXRDataset item contract (uint8 [1, S, S], label, row)
and a tiny GroupNorm CNN registered in the model factory, so a run takes a second.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from finegrain.io import read_jsonl
from finegrain.train.checkpoint import load_checkpoint, method_of
from finegrain.train.config import TrainConfig
from finegrain.train.loop import InfiniteBatchSampler, train
from finegrain.train.rundir import PREDICTION_COLUMNS, RunDirectory, load_model
from helpers import KillAfter, assert_same_checkpoint, make_config, tiny_datasets

pytestmark = pytest.mark.usefixtures("one_thread")


def test_run_directory_layout(tmp_path):
    out = train(make_config(tmp_path / "run"), datasets=tiny_datasets(), progress=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoints",
        "config.json",
        "done",
        "metrics.jsonl",
        "predictions-validate.csv",
        "train.lock",
    ]
    assert [i for i, _ in RunDirectory(out).checkpoints()] == [3, 6]
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == "pu-rm" and config["method_options"] == {}  # τ: pu-rm's own
    assert "tau" not in config
    assert {"python", "torch", "torchvision", "finegrain", "git_commit"} <= set(config["versions"])
    assert TrainConfig.from_json(out / "config.json") == make_config(tmp_path / "run")
    metrics = read_jsonl(out / "metrics.jsonl")
    assert [m["iteration"] for m in metrics] == [3, 6]
    for m in metrics:
        assert {"auc_fg", "auc", "n_atypical", "n_typical", "n_positive", "n_negative"} <= set(m)
        assert m["split"] == "validate" and np.isfinite(m["train_loss"])
        assert 0.0 <= m["train_pce_reach"] <= 1.0  # share of training positives with p <= τ
        assert m["train_positive_ce"] > 0  # the training positives' mean -log p
    predictions = pd.read_csv(out / "predictions-validate.csv", dtype={"image_id": str})
    assert list(predictions.columns) == list(PREDICTION_COLUMNS)
    assert len(predictions) == 2 * 24 and predictions["score"].between(0, 1).all()
    # a coarse method's fine score is its positive probability
    assert (predictions["fine_score"] == predictions["score"]).all()
    # load_model rebuilds the last checkpoint and reproduces its saved predictions
    model, meta = load_model(out)
    assert meta["iteration"] == 6 and meta["method"] == "pu-rm" and meta["image_size"] == 32
    with torch.no_grad():
        scores = method_of(meta).positive_probability(model(tiny_datasets()["validate"].images))
    saved = predictions[predictions["iteration"] == 6]["score"].to_numpy()
    np.testing.assert_allclose(scores.numpy(), saved, rtol=1e-5, atol=1e-6)
    # a complete run is not overwritten; resuming it is a no-op
    with pytest.raises(ValueError, match="complete run"):
        train(make_config(tmp_path / "run"), datasets=tiny_datasets(), progress=False)
    assert train(make_config(tmp_path / "run"), resume=True, datasets=tiny_datasets()) == out
    # ... but only under the settings it was trained with (runtime fields aside)
    with pytest.raises(ValueError, match=r"cannot reuse .*iterations: 6 -> 9"):
        train(make_config(tmp_path / "run", iterations=9), resume=True, datasets=tiny_datasets())
    relocated = make_config(tmp_path / "run", num_workers=1, eval_batch_size=5)
    assert train(relocated, resume=True, datasets=tiny_datasets()) == out


def test_resume_after_kill_is_bit_exact(tmp_path):
    full = train(make_config(tmp_path / "full"), datasets=tiny_datasets(), progress=False)

    killed = tmp_path / "killed"
    data = tiny_datasets()
    data["train"] = KillAfter(data["train"], limit=4 * 8 + 3)  # dies during iteration 5
    with pytest.raises(KeyboardInterrupt):
        train(make_config(killed), datasets=data, progress=False)
    assert [i for i, _ in RunDirectory(killed).checkpoints()] == [3]
    assert not (killed / "done").exists()
    # simulate lines written after the checkpoint by the killed process: they must be dropped
    with open(killed / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"iteration": 6, "split": "validate"}) + "\n")
    with open(killed / "predictions-validate.csv", "a") as handle:
        handle.write("img000,6,0,,0.5\n")
    with pytest.raises(ValueError, match="--resume"):
        train(make_config(killed), datasets=tiny_datasets(), progress=False)
    with pytest.raises(ValueError, match="tau"):
        train(make_config(killed, method_options={"tau": 0.5}), resume=True,
              datasets=tiny_datasets())  # fmt: skip

    train(make_config(killed), resume=True, datasets=tiny_datasets(), progress=False)
    a, b = assert_same_checkpoint(full, killed)
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    ma, mb = read_jsonl(full / "metrics.jsonl"), read_jsonl(killed / "metrics.jsonl")
    assert [m["iteration"] for m in mb] == [3, 6]
    for x, y in zip(ma, mb, strict=True):
        assert x["auc"] == y["auc"] and x["train_loss"] == y["train_loss"]
    pa = pd.read_csv(full / "predictions-validate.csv")
    pb = pd.read_csv(killed / "predictions-validate.csv")
    pd.testing.assert_frame_equal(pa, pb)


KILLED_RUN = """
import json, os, signal, sys
import torch
from finegrain.train.config import TrainConfig
from finegrain.train.loop import build_datasets, train
from finegrain.train.methods import get_method

torch.set_num_threads(1)
config = TrainConfig.from_dict(json.loads(sys.argv[1]))
limit = int(sys.argv[2])
datasets = build_datasets(config, get_method(config.method))


class KillAfter(torch.utils.data.Dataset):
    def __init__(self, dataset):
        self.dataset, self.calls = dataset, 0
        self.cache, self.summary, self.augment = dataset.cache, dataset.summary, dataset.augment

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        self.calls += 1
        if self.calls > limit:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.dataset[i]


datasets["train"] = KillAfter(datasets["train"])
train(config, datasets=datasets, progress=False)
"""


def test_resume_after_sigkill_with_the_real_dataset_and_augmentation(phantom_root, tmp_path):
    """``CXRDataset`` + ``Augmentation`` from a real cache: a run SIGKILLed after its first
    checkpoint and resumed (``finegrain train --resume``) ends bit-identical to a run that was
    never interrupted."""
    import subprocess
    import sys

    from finegrain.cli import main
    from finegrain.data.cache import prepare
    from finegrain.data.index import write_index
    from finegrain.data.mimic import index_mimic

    frame, _ = index_mimic(phantom_root, progress=False)
    frame["path"] = [str(phantom_root / p) for p in frame["path"]]
    write_index(frame, tmp_path / "index.csv")
    prepare(tmp_path / "index.csv", tmp_path / "cache", size=32, progress=False, workers=1)

    def config(out):
        return TrainConfig(
            index=str(tmp_path / "index.csv"),
            cache=str(tmp_path / "cache"),
            observation="Cardiomegaly",
            method="pu-rm",
            model="densenet-tiny",
            pretrained=False,
            iterations=6,
            checkpoint_every=3,
            batch_size=8,
            augment=True,
            num_workers=0,
            device="cpu",
            out=str(out),
        )

    full = train(config(tmp_path / "full"), progress=False)
    killed = tmp_path / "killed"
    dead = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, json.dumps(config(killed).to_dict()), str(3 * 8 + 3)],
        capture_output=True,
        text=True,
    )
    assert dead.returncode == -9, dead.stderr  # SIGKILL during iteration 4
    assert [i for i, _ in RunDirectory(killed).checkpoints()] == [3]
    assert not RunDirectory(killed).is_done()
    args = ["train", "--index", str(tmp_path / "index.csv"), "--cache", str(tmp_path / "cache")]
    args += ["--observation", "Cardiomegaly", "--method", "pu-rm", "--model", "densenet-tiny"]
    args += ["--no-pretrained", "--iterations", "6", "--checkpoint-every", "3"]
    args += ["--batch-size", "8", "--workers", "0", "--device", "cpu", "--no-progress"]
    assert main([*args, "--out", str(killed), "--resume"]) == 0

    a, _ = assert_same_checkpoint(full, killed)
    pd.testing.assert_frame_equal(
        pd.read_csv(full / "predictions-validate.csv"),
        pd.read_csv(killed / "predictions-validate.csv"),
    )
    # the guard: the augmentation draws matter (without them the weights differ)
    plain = train(
        TrainConfig(**(config(tmp_path / "plain").to_dict() | {"augment": False})), progress=False
    )
    c = load_checkpoint(plain / "checkpoints" / "iter-0000006.pt")
    assert any(not torch.equal(a["model"][k], c["model"][k]) for k in a["model"])


def test_different_seed_differs(tmp_path):
    """Guard for the exactness test: the final weights do depend on the seed."""
    a = train(make_config(tmp_path / "a", iterations=3), datasets=tiny_datasets(), progress=False)
    b = train(
        make_config(tmp_path / "b", iterations=3, seed=1), datasets=tiny_datasets(), progress=False
    )
    wa = load_checkpoint(a / "checkpoints" / "iter-0000003.pt")["model"]
    wb = load_checkpoint(b / "checkpoints" / "iter-0000003.pt")["model"]
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)


def test_sampler_shards_the_same_global_batches():
    single = InfiniteBatchSampler(10, 4, seed=3)
    ranks = [iter(InfiniteBatchSampler(10, 4, seed=3, rank=r, world_size=2)) for r in range(2)]
    stream = iter(single)
    seen = []
    for _ in range(5):  # crosses epoch boundaries (10 items, batch 4)
        whole = next(stream)
        parts = [next(r) for r in ranks]
        assert parts[0] + parts[1] == whole
        seen += [p for p, _ in whole]
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))
    resumed = iter(InfiniteBatchSampler(10, 4, seed=3, start_iteration=4))
    assert next(resumed) == whole
    with pytest.raises(ValueError, match="divisible"):
        InfiniteBatchSampler(10, 5, seed=0, world_size=2)


def test_pce_reach_and_positive_ce_read_the_training_positives():
    from finegrain.train.distributed import DistInfo
    from finegrain.train.loop import _Running
    from finegrain.train.methods import get_method

    running = _Running(torch.device("cpu"))
    method = get_method("pu-rm")
    p = torch.tensor([0.1, 0.3, 0.5, 0.9, 0.05, 0.2])  # P(positive) of six images
    logits = torch.stack([torch.zeros(6), torch.log(p / (1 - p))], dim=1)
    labels = torch.tensor([1, 1, 1, 1, 0, -1])  # reach reads label-1 images only
    running.add(torch.tensor(0.5), logits, {"label": labels}, method)  # at pu-rm's τ 0.3
    running.add(torch.tensor(1.5), logits[:2], {"label": labels[:2]}, method)
    summary = running.summary(DistInfo(device=torch.device("cpu")))
    assert summary["train_loss"] == pytest.approx(1.0)
    assert summary["train_pce_reach"] == pytest.approx(4 / 6)  # 0.1 and 0.3 (twice) of six
    # the six positives' mean -log p: 0.1, 0.3, 0.5, 0.9, then 0.1 and 0.3 again
    surprise = -np.log([0.1, 0.3, 0.5, 0.9, 0.1, 0.3]).mean()
    assert summary["train_positive_ce"] == pytest.approx(surprise, rel=1e-5)
    running.reset()
    running.add(torch.tensor(0.2), logits[4:], {"label": labels[4:]}, method)
    summary = running.summary(DistInfo(device=torch.device("cpu")))
    assert summary["train_pce_reach"] is None and summary["train_positive_ce"] is None
