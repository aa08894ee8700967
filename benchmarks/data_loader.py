"""Benchmark: can the cache-backed data path feed DenseNet121 training on a GPU?

In one run, on the same machine, with a cache of N synthetic 224 px images made by ``prepare``:

1. the training loader as ``finegrain train`` builds it (``make_train_loader``: seeded global
   batches of 32, ``SeededItems``) with 0, 2 and 4 DataLoader workers, in the two places
   augmentation can run (``--augment-on``):

   - **loader**: the random affine image by image in the loader (the CPU default); the
     **baseline** is this with 0 workers (the main process alone);
   - **device**: the loader reads plain batches (one sorted memmap read per batch) and the
     training loop augments the whole batch on the training device (``augment_seeded``);
     here the loader side is measured, and the batch augmentation separately on this CPU
     (on a GPU it is one ``grid_sample`` call, negligible next to DenseNet121);

2. (``--steps`` > 0) DenseNet121 training steps on this CPU (batch 32 at 224 px), for scale;

and prints images/s, the ratio of each loader to the baseline, and how many images/s a GPU
needs (DenseNet121 + AMP on one modern GPU trains at roughly 1,500-2,500 images/s at 224 px).

    python benchmarks/data_loader.py --batches 60 --steps 0

Timings on a shared machine are noisy (the load average is printed); compare the ratios,
measured in the same run. More workers than cores only time-slice.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from finegrain.data.augment import Augmentation, augment_seeded
from finegrain.data.cache import ImageCache, prepare
from finegrain.data.dataset import CXRDataset
from finegrain.data.index import normalise_index
from finegrain.observations import OBSERVATIONS
from finegrain.train.config import TrainConfig
from finegrain.train.distributed import DistInfo
from finegrain.train.loop import make_train_loader

OBSERVATION = "Edema"


def build_cache(work: Path, n: int, size: int) -> tuple[pd.DataFrame, ImageCache]:
    rng = np.random.default_rng(0)
    folder = work / "images"
    folder.mkdir()
    for i in range(n):
        small = Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8))
        small.resize((size, size), Image.BICUBIC).save(folder / f"{i}.png")
    frame = pd.DataFrame(
        {
            "image_id": [str(i) for i in range(n)],
            "path": [str(folder / f"{i}.png") for i in range(n)],
            "subject_id": "1",
            "study_id": [str(i) for i in range(n)],
            "split": "train",
            "view": "PA",
        }
    )
    for obs in OBSERVATIONS:
        frame[obs] = pd.NA
    frame[OBSERVATION] = rng.integers(-1, 2, n)
    index = normalise_index(frame)
    prepare(index, work / "cache", size=size, workers=0, progress=False)
    return index, ImageCache(work / "cache")


def loader_images_per_s(dataset: CXRDataset, batches: int, num_workers: int) -> float:
    """images/s of the training loader (``make_train_loader``) over ``dataset``, touching every
    batch; the first batch (worker start-up) is not counted."""
    config = TrainConfig(
        index="-", cache="-", observation=OBSERVATION, batch_size=32, num_workers=num_workers
    )
    loader = make_train_loader(dataset, config, DistInfo(device=torch.device("cpu")))
    batches_seen = iter(loader)
    next(batches_seen)  # worker start-up
    start, checksum = time.perf_counter(), 0
    for _ in range(batches):
        batch = next(batches_seen)
        images, labels = batch["image"], batch["label"]
        assert images.dtype == torch.uint8 and images.shape[0] == 32
        checksum += int(images[:, 0, 0, 0].sum()) + int(labels.sum())
    rate = batches * 32 / (time.perf_counter() - start)
    del batches_seen, loader
    return rate


def batch_augment_images_per_s(size: int, batches: int) -> float:
    """images/s of ``augment_seeded`` on batches of 32 on this CPU (what the GPU does)."""
    aug = Augmentation()
    images = torch.randint(0, 256, (32, 1, size, size), dtype=torch.uint8)
    augment_seeded(images, aug, list(range(32)))  # warm-up
    start = time.perf_counter()
    for i in range(batches):
        augment_seeded(images, aug, list(range(32 * i, 32 * i + 32)))
    return batches * 32 / (time.perf_counter() - start)


def densenet_images_per_s(size: int, steps: int) -> float:
    from torchvision.models import densenet121

    torch.manual_seed(0)
    model = densenet121(weights=None, num_classes=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    images = torch.randint(0, 256, (32, 1, size, size), dtype=torch.uint8)
    labels = torch.randint(0, 2, (32,))

    def step() -> None:
        x = (images.float() / 255).expand(-1, 3, -1, -1)
        loss = torch.nn.functional.cross_entropy(model((x - mean) / std), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * 32 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512, help="images in the cache (512)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", type=int, default=60, help="timed loader batches (60)")
    parser.add_argument("--steps", type=int, default=0, help="timed DenseNet121 steps (0: skip)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[0, 2, 4], help="DataLoader workers (0 2 4)"
    )
    parser.add_argument("--gpu-need", type=float, default=2000.0, help="images/s a GPU trains")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(
        f"cpus {os.cpu_count()}, torch threads {threads}, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, {args.size} px, batch 32"
    )
    with tempfile.TemporaryDirectory(prefix="finegrain-loader-bench-") as tmp:
        index, cache = build_cache(Path(tmp), args.images, args.size)
        augmented = CXRDataset(index, cache, OBSERVATION, "train", augment=Augmentation())
        plain = CXRDataset(index, cache, OBSERVATION, "train")
        torch.set_num_threads(1)  # the main-process loader gets one core, like one worker
        rates = {}
        for where, dataset in (("loader", augmented), ("device", plain)):
            for workers in args.workers:
                rates[where, workers] = loader_images_per_s(dataset, args.batches, workers)
        on_cpu = batch_augment_images_per_s(args.size, max(4, args.batches // 4))
    torch.set_num_threads(threads)
    baseline = rates["loader", args.workers[0]]
    print(
        f"\n| augment on | workers | loader images/s | vs baseline | GPU need {args.gpu_need:.0f}/s |"
    )
    print("|---|---:|---:|---:|---:|")
    for (where, workers), rate in rates.items():
        print(
            f"| {where} | {workers} | {rate:,.0f} | {rate / baseline:.2f}x | "
            f"{'enough' if rate >= args.gpu_need else f'{rate / args.gpu_need:.2f} of it'} |"
        )
    print(
        f"\nbatch augmentation (augment_seeded) on this CPU, 1 thread: {on_cpu:,.0f} images/s "
        "(on the training device instead of the loader)"
    )
    per_core = rates["loader", 0]
    print(
        f"RESULT the loader path needs ~{args.gpu_need / per_core:.1f} cores of per-image "
        f"augmentation to feed {args.gpu_need:.0f} images/s; the device path's loader delivers "
        f"{rates['device', 0] / baseline:.0f}x the baseline on one core"
    )
    if args.steps:
        train_ips = densenet_images_per_s(args.size, args.steps)
        print(f"DenseNet121 train step on this CPU, {threads} threads: {train_ips:.2f} images/s")


if __name__ == "__main__":
    main()
