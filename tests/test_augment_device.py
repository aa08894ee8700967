"""The GPU-fed data path: augmentation of the whole batch on the training device draws what the
loader draws image by image, so on CPU both give bit-identical images and training runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

import finegrain.train.loop as loop
from finegrain.data.augment import Augmentation, augment_seeded
from finegrain.train.checkpoint import load_checkpoint
from finegrain.train.config import TrainConfig
from finegrain.train.loop import SeededItems, train
from helpers import TinyCXR, assert_same_state, make_config

pytestmark = pytest.mark.usefixtures("one_thread")


class AugmentedCXR(Dataset):
    """TinyCXR's images behind an :class:`Augmentation`, like ``CXRDataset(augment=...)``."""

    def __init__(self, base: TinyCXR, augment: Augmentation | None) -> None:
        self.base, self.augment = base, augment
        self.labels, self.subcategories = base.labels, base.subcategories
        self.image_ids, self.summary = base.image_ids, base.summary
        self.has_fine = base.has_fine

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        item = dict(self.base[i])
        if self.augment is not None:
            item["image"] = self.augment(item["image"])
        return item


@pytest.mark.parametrize("aug", [Augmentation(), Augmentation(shear=5, hflip=0.5, fill=30)])
def test_batch_on_device_equals_the_loaders_per_image_draws(aug):
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (8, 1, 40, 32))).to(
        torch.uint8
    )
    seeds = [int(s) for s in np.random.SeedSequence([3, 7]).generate_state(8)]
    per_image = []
    for image, seed in zip(images, seeds, strict=True):  # what SeededItems does in the loader
        torch.manual_seed(seed)
        per_image.append(aug(image))
    batch = augment_seeded(images, aug, seeds)
    assert torch.equal(batch, torch.stack(per_image))
    assert not torch.equal(batch, images)
    with pytest.raises(ValueError, match="3 seeds for 8 images"):
        augment_seeded(images, aug, seeds[:3])


def test_training_with_device_augmentation_is_bit_identical_on_cpu(tmp_path, monkeypatch):
    calls = []
    real = loop.augment_seeded
    monkeypatch.setattr(loop, "augment_seeded", lambda *a: calls.append(1) or real(*a))

    def datasets():
        return {
            "train": AugmentedCXR(TinyCXR(48, 32, seed=0), Augmentation()),
            "validate": TinyCXR(24, 32, seed=1),
        }

    runs = {}
    for where in ("loader", "device"):
        given = datasets()
        config = make_config(tmp_path / where, augment_on=where)
        runs[where] = train(config, datasets=given, progress=False)
        assert given["train"].augment is not None  # the caller's dataset is left alone
    assert len(calls) == 6  # one batch augmentation per iteration on the "device" run only
    last = "checkpoints/iter-0000006.pt"
    assert_same_state(
        load_checkpoint(runs["loader"] / last)["model"],
        load_checkpoint(runs["device"] / last)["model"],
    )


def test_auto_augments_in_the_loader_on_cpu_and_on_the_device_on_cuda():
    data = AugmentedCXR(TinyCXR(8, 32), Augmentation())
    config = make_config("unused")
    plain, moved = loop._augmentation_on(config, data, torch.device("cpu"))
    assert plain is data and moved is None
    plain, moved = loop._augmentation_on(config, data, torch.device("cuda"))
    assert plain.augment is None and moved is data.augment and data.augment is not None
    # the loader then reads plain images (one batched read for CXRDataset)
    assert torch.equal(SeededItems(plain)[(3, 11)]["image"], data.base[3]["image"])
    with pytest.raises(ValueError, match="augment_on must be one of auto, device, loader"):
        TrainConfig(index="i", cache="c", observation="Edema", augment_on="gpu")
