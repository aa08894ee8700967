"""Benchmark: can the cache-backed data path feed DenseNet121 training without it waiting?

In one run, on the same machine:

1. builds a cache of N 224 px images with ``prepare`` (synthetic, generated once per run);
2. times a training-shaped loop that reads shuffled batches of 32 through a DataLoader over
   ``CXRDataset`` (with and without the default augmentation, on one core in the main process,
   and with ``--num-workers`` worker processes), touching every batch as training would;
3. times DenseNet121 training steps (torchvision, random init, 2 classes, batch 32 at 224,
   uint8 -> float normalisation, forward + backward + Adam step);

and prints augmented loading on ONE core over DenseNet training on all cores (target >= 10x).

    python benchmarks/data_loader.py --batches 60 --steps 2

Timings on a shared machine are noisy; the ratio is measured in the same run.
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

from finegrain.data.augment import Augmentation
from finegrain.data.cache import ImageCache, prepare
from finegrain.data.dataset import CXRDataset
from finegrain.data.index import normalise_index
from finegrain.observations import OBSERVATIONS

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
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=32,
        shuffle=True,
        drop_last=True,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(0),
    )
    seen, start, checksum = 0, None, 0
    while seen < batches:
        for images, labels, _ in loader:
            if start is None:  # first batch: worker start-up is not throughput
                start = time.perf_counter()
                continue
            assert images.dtype == torch.uint8 and images.shape[0] == 32
            checksum += int(images[:, 0, 0, 0].sum()) + int(labels.sum())
            seen += 1
            if seen >= batches:
                break
    return seen * 32 / (time.perf_counter() - start)


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
    parser.add_argument("--steps", type=int, default=2, help="timed DenseNet121 steps (2)")
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers (2)")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(f"cpus {os.cpu_count()}, torch threads {threads}, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="finegrain-loader-bench-") as tmp:
        index, cache = build_cache(Path(tmp), args.images, args.size)
        plain = CXRDataset(index, cache, OBSERVATION, "train")
        augmented = CXRDataset(index, cache, OBSERVATION, "train", augment=Augmentation())
        rates = {}
        torch.set_num_threads(1)  # the main-process loader gets one core, like one worker
        for name, dataset, workers in (
            ("no augmentation, 1 core", plain, 0),
            ("augmentation, 1 core", augmented, 0),
            (f"augmentation, {args.num_workers} workers", augmented, args.num_workers),
        ):
            rates[name] = loader_images_per_s(dataset, args.batches, workers)
            print(f"loader, batch 32, {name:28s}: {rates[name]:8.0f} images/s")
    torch.set_num_threads(threads)
    train_ips = densenet_images_per_s(args.size, args.steps)
    print(
        f"DenseNet121 train step, batch 32 at {args.size}, {threads} threads: "
        f"{train_ips:8.2f} images/s"
    )
    one_core = rates["augmentation, 1 core"]
    print(
        f"RESULT loader/DenseNet121 = {one_core / train_ips:.0f}x (augmented loading on ONE core "
        f"vs training on all {threads}; target >= 10x)"
    )


if __name__ == "__main__":
    main()
