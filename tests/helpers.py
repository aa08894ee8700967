"""Helpers shared by several test modules (imported as ``helpers``; see ``pythonpath`` in
pyproject.toml). Test modules never import each other."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from finegrain.experiment.presets import DEMO
from finegrain.train.config import TrainConfig
from finegrain.train.models import MODELS, register_model

#: Image side of the tiny checkpoints (predict, cam, export tests).
CHECKPOINT_SIZE = 32


def save_tiny_checkpoint(path, *, seed: int, method: str, thresholds: dict | None):
    """An untrained densenet-tiny checkpoint (with a spread of probabilities across images)."""
    from finegrain.train.checkpoint import save_checkpoint
    from finegrain.train.models import build_model

    torch.manual_seed(seed)
    model = build_model("densenet-tiny", pretrained=False)
    with torch.no_grad():  # make the head matter: a spread of probabilities across images
        model.classifier.weight.mul_(20)
    payload = {
        "model": model.state_dict(),
        "iteration": 5,
        "model_name": "densenet-tiny",
        "image_size": CHECKPOINT_SIZE,
        "preprocessing": {"size": CHECKPOINT_SIZE, "crop": "none", "normalization": "imagenet"},
        "observation": "Consolidation",
        "method": method,
        "config": {},
    }
    if thresholds:
        payload["thresholds"] = thresholds
    save_checkpoint(path, payload)
    return path


class TinyCXR(Dataset):
    """``n`` random uint8 images, brighter when positive; the optional noise augmentation
    draws from the global torch RNG (as a real augmentation would)."""

    def __init__(self, n=48, size=32, seed=0, augment=False, keep_uncertain=True):
        rng = np.random.default_rng(seed)
        labels = rng.choice([1, 0, -1], size=n, p=[0.4, 0.4, 0.2])
        if not keep_uncertain:
            labels = labels[labels != -1]
        n = len(labels)
        self.labels = labels.astype(np.int64)
        self.subcategories = np.array(
            [rng.choice(["atypical", "typical"]) if lab != 0 else None for lab in labels],
            dtype=object,
        )
        self.image_ids = [f"img{i:03d}" for i in range(n)]
        base = rng.integers(0, 200, size=(n, 1, size, size))
        bright = np.where(self.labels == 0, 0, 40)[:, None, None, None]
        self.images = torch.from_numpy((base + bright).clip(0, 255).astype(np.uint8))
        self.augment = augment
        self.summary = {"kept": n}
        self.has_fine = True

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = self.images[i]
        if self.augment:
            noise = torch.randint(-8, 9, image.shape, dtype=torch.int16)
            image = (image.to(torch.int16) + noise).clamp(0, 255).to(torch.uint8)
        sub = self.subcategories[i]
        fine = {"atypical": 0, "typical": 1}.get(sub, -1) if self.labels[i] == 1 else -1
        return {
            "image": image,
            "label": torch.tensor(self.labels[i]),
            "fine": torch.tensor(fine),
            "row": torch.tensor(i),
        }


class KillAfter(Dataset):
    """Raises KeyboardInterrupt on the ``limit``-th item: a run killed mid-training."""

    def __init__(self, dataset, limit):
        self.dataset, self.limit, self.calls = dataset, limit, 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        self.calls += 1
        if self.calls > self.limit:
            raise KeyboardInterrupt("killed")
        return self.dataset[i]


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def assert_same_checkpoint(run_a, run_b, name: str = "iter-0000006.pt") -> tuple[dict, dict]:
    """Checkpoint ``name`` of two run directories holds the same weights and optimizer state,
    bit for bit; returns both checkpoints."""
    from finegrain.train.checkpoint import load_checkpoint

    a = load_checkpoint(Path(run_a) / "checkpoints" / name)
    b = load_checkpoint(Path(run_b) / "checkpoints" / name)
    assert_same_state(a["model"], b["model"])
    for sa, sb in zip(
        a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True
    ):
        assert_same_state(sa, sb)
    return a, b


def tiny_datasets(keep_uncertain=True):
    return {
        "train": TinyCXR(48, 32, seed=0, augment=True, keep_uncertain=keep_uncertain),
        "validate": TinyCXR(24, 32, seed=1),
    }


def _tiny_cnn() -> nn.Module:
    """A BatchNorm-free CNN (so per-rank batches give the same result as one big batch)."""
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.GroupNorm(2, 8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
    )
    return net


def register_tiny_cnn() -> None:
    if "test-cnn" not in MODELS:
        register_model("test-cnn", _tiny_cnn, lambda net: (net, 16))


def make_config(out, **overrides) -> TrainConfig:
    register_tiny_cnn()
    values = dict(
        index="unused.csv",
        cache="unused-cache",
        observation="Edema",
        method="pu-rm",
        model="test-cnn",
        pretrained=False,
        iterations=6,
        checkpoint_every=3,
        batch_size=8,
        out=str(out),
        num_workers=0,
        eval_batch_size=16,
    )
    values.update(overrides)
    return TrainConfig(**values)


def patch_labeler(monkeypatch, stub) -> list[str]:
    """Replace ``finegrain.reports.label_report`` (where the sources look it up) by ``stub``.

    Returns the list of texts the stub is called with, so that a test can show the stub was
    used (a renamed or re-imported labeler would otherwise leave the real one running)."""
    import finegrain.reports

    calls: list[str] = []

    def recording(text, **kwargs):
        calls.append(text)
        return stub(text, **kwargs)

    monkeypatch.setattr(finegrain.reports, "label_report", recording)  # raises if it is gone
    return calls


#: The demo preset shrunk for grid tests: Edema, 2 seeds, 4 iterations at 32 px, one job.
TINY_GRID = DEMO.replace(
    observations=("Edema",),
    seeds=2,
    iterations=4,
    checkpoint_every=2,
    batch_size=8,
    image_size=32,
    jobs=1,
)
TINY_GRID_METHODS = ["u-ones", "pu-rm"]


def grid_run(runs_root, label: str) -> Path:
    """The one run directory of ``label`` (``Edema/u-ones/seed0``) under a benchmark's ``runs/``
    folder, whatever its settings group (``runs/<hash>/Edema/u-ones/seed0``)."""
    found = sorted(Path(runs_root).glob(f"*/{label}"))
    assert len(found) == 1, f"{label}: {found}"
    return found[0]


def index_and_cache(phantom_root, folder: Path, size: int = 32) -> Path:
    """The session phantom indexed (absolute paths) and cached at ``size`` px into ``folder``
    (``index.csv``, ``cache/``); returns ``folder``."""
    from finegrain.data.cache import prepare
    from finegrain.data.index import write_index
    from finegrain.data.mimic import index_mimic

    frame, _ = index_mimic(phantom_root, progress=False)
    frame["path"] = [str(phantom_root / p) for p in frame["path"]]
    write_index(frame, folder / "index.csv")
    prepare(folder / "index.csv", folder / "cache", size=size, progress=False, workers=1)
    return folder


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def descendants(pid: int) -> set[int]:
    table = _proc_table()
    found, frontier = set(), [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, (ppid, _) in table.items() if ppid == parent]
        found.update(children)
        frontier.extend(children)
    return found


def alive(pids: set[int]) -> set[int]:
    table = _proc_table()
    return {p for p in pids if p in table and table[p][1] != "Z"}


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def tiny_phantom_data(tmp_path_factory, name: str, preset):
    """A small phantom (80 training studies and 52 in each evaluation split, 32 px, seed 1)
    made, indexed and cached for ``preset`` in a new temporary folder ``name``; returns the
    :class:`~finegrain.experiment.runner.BenchmarkData` (index and cache paths)."""
    from finegrain.data.phantom import make_phantom
    from finegrain.experiment.runner import DataSource, prepare_data

    data_dir = tmp_path_factory.mktemp(name)
    make_phantom(data_dir / "phantom", studies=80, size=32, seed=1, eval_studies=52)
    return prepare_data(DataSource(mimic=data_dir / "phantom"), data_dir, preset, progress=False)
