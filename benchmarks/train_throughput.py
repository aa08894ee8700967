"""Training throughput: the full training step fed from the image cache vs in-memory tensors.

In the same run, for the same model, batch and image size, measures images/s of

- **cache**: the real pipeline of ``finegrain.train.loop`` -- ``CXRDataset`` over an
  ``ImageCache`` (prepared here from synthetic PNGs), seeded items, the endless DataLoader
  (``make_train_loader``), the method's loss, backward and Adam step;
- **memory**: the same step on pre-made random uint8 batches already in memory;

and prints the ratio cache / memory (target >= 0.9: the input pipeline keeps up). Timed blocks
of the two modes alternate, so slow drifts of a shared machine hit both.

With ``--device cuda`` it also measures the step with autocast (bf16 where supported, else
fp16) + channels_last against fp32, with augmentation on the device (``augment_on="device"``,
the CUDA default of ``finegrain train``: plain batches from the loader, pinned, copied
non-blocking, augmented as a batch on the GPU), and prints images/s, the peak GPU memory, and
the projected GPU-hours of the paper's Table 2 grid (2 observations x 4 methods x 3 seeds = 24
runs of 50k iterations at batch 32; evaluation time not included) and its wall time on one
8-GPU node (one run per GPU).

    python benchmarks/train_throughput.py                         # densenet-tiny, 64 px, CPU
    python benchmarks/train_throughput.py --model densenet121 --size 224 --iterations 3
    python benchmarks/train_throughput.py --device cuda --model densenet121 --size 224 \
        --workers 4 --iterations 60 --json gpu.json

Timings on a shared machine are noisy: compare the ratio, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from finegrain.data.augment import Augmentation, augment_seeded
from finegrain.data.batch import to_device
from finegrain.data.cache import ImageCache, prepare
from finegrain.data.dataset import CXRDataset
from finegrain.data.index import INDEX_COLUMNS, read_index, write_index
from finegrain.train.config import TrainConfig
from finegrain.train.distributed import DistInfo
from finegrain.train.loop import make_train_loader
from finegrain.train.methods import get_method
from finegrain.train.models import build_model

OBSERVATION = "Edema"


def make_cache(folder: Path, n: int, size: int) -> tuple[Path, Path]:
    """``n`` synthetic grayscale PNGs (2x the cache size), an index table and its cache."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        path = folder / "images" / f"img{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        yy, xx = np.mgrid[0 : 2 * size, 0 : 2 * size] / (2 * size)
        image = 120 + 60 * np.sin(6 * xx + i) * np.cos(4 * yy) + rng.normal(0, 12, xx.shape)
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(path)
        row = {c: None for c in INDEX_COLUMNS}
        row.update(
            image_id=f"img{i:05d}",
            path=str(path),
            subject_id=str(i // 2),
            study_id=str(i),
            split="train",
            view="PA",
        )
        row[OBSERVATION] = int(rng.choice([1, 0, -1]))
        rows.append(row)
    index = folder / "index.csv"
    write_index(pd.DataFrame(rows), index)
    prepare(index, folder / "cache", size=size, progress=False, workers=1)
    return index, folder / "cache"


TABLE2_RUNS = 2 * 4 * 3  # observations x methods x seeds
PAPER_ITERATIONS = 50_000


def timed_steps(
    model, optimizer, batches, steps, method, device, amp_dtype, channels_last, augment=None
):
    """Run ``steps`` training steps drawing from ``batches``; seconds per step. ``augment``
    (an Augmentation) is applied to each batch on the device, as ``augment_on="device"``."""
    model.train()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for step in range(steps):
        batch = to_device(next(batches), device)
        images = batch["image"]
        if augment is not None:
            seeds = range(step * images.shape[0], (step + 1) * images.shape[0])
            images = augment_seeded(images, augment, list(seeds))
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(images)
        loss = method.loss(logits, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def fresh_model(name, device, channels_last):
    torch.manual_seed(0)
    model = build_model(name, pretrained=False).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        model.normalize.memory_format = torch.channels_last
    return model, torch.optim.Adam(model.parameters(), lr=1e-4)


def memory_batches(n_batches, batch, size):
    data = [
        (
            torch.randint(0, 256, (batch, 1, size, size), dtype=torch.uint8),
            torch.randint(-1, 2, (batch,)),
            torch.arange(batch),
        )
        for _ in range(n_batches)
    ]
    while True:
        yield from data


def compare(args, device, dataset, amp_dtype, channels_last, augment=None) -> dict:
    """images/s from the cache vs from memory, alternating timed blocks. ``augment``: the
    augmentation applied on the device to the cache batches (the dataset then has none)."""
    method = get_method("pu-rm")
    config = TrainConfig(
        index="-",
        cache="-",
        observation=OBSERVATION,
        batch_size=args.batch_size,
        num_workers=args.workers,
        seed=0,
    )
    info = DistInfo(device=device)
    loader = iter(make_train_loader(dataset, config, info))
    memory = memory_batches(8, args.batch_size, args.size)
    models = {
        "cache": fresh_model(args.model, device, channels_last),
        "memory": fresh_model(args.model, device, channels_last),
    }
    sources = {"cache": loader, "memory": memory}
    augments = {"cache": augment, "memory": None}
    for mode in models:  # warm-up (workers start, allocator, cudnn autotune)
        timed_steps(
            *models[mode],
            sources[mode],
            args.warmup,
            method,
            device,
            amp_dtype,
            False,
            augments[mode],
        )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = {"cache": 0.0, "memory": 0.0}
    blocks = max(1, args.iterations // args.block)
    for _ in range(blocks):
        for mode in ("memory", "cache"):
            seconds[mode] += timed_steps(
                *models[mode],
                sources[mode],
                args.block,
                method,
                device,
                amp_dtype,
                False,
                augments[mode],
            )
    per_step = {m: s / blocks for m, s in seconds.items()}
    peak = {}
    if device.type == "cuda":  # two models and their optimisers live on the GPU here
        peak["peak_gpu_memory_gb_two_models"] = torch.cuda.max_memory_allocated(device) / 2**30
    return {
        **peak,
        "images_per_s_cache": args.batch_size / per_step["cache"],
        "images_per_s_memory": args.batch_size / per_step["memory"],
        "ratio_cache_over_memory": per_step["memory"] / per_step["cache"],
        "ms_per_step_cache": 1000 * per_step["cache"],
        "ms_per_step_memory": 1000 * per_step["memory"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="densenet-tiny")
    parser.add_argument("--size", type=int, default=64, help="image side (64)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=40, help="timed steps per mode (40)")
    parser.add_argument("--block", type=int, default=10, help="steps per alternating block")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--images", type=int, default=256, help="images in the cache (256)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (0)")
    parser.add_argument("--no-augment", action="store_true", help="cache mode without augmentation")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    args.block = min(args.block, args.iterations)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        index, cache_dir = make_cache(Path(tmp), args.images, args.size)
        frame = read_index(index)
        augment = None if args.no_augment else Augmentation()
        dataset = CXRDataset(frame, ImageCache(cache_dir), OBSERVATION, "train", augment=augment)
        plain = CXRDataset(frame, ImageCache(cache_dir), OBSERVATION, "train")
        setup_s = time.perf_counter() - t0

        results: dict = {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, threads {torch.get_num_threads()}"
            + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
            "model": args.model,
            "size": args.size,
            "batch_size": args.batch_size,
            "workers": args.workers,
            "augment": augment is not None,
            "setup_s": round(setup_s, 2),
        }
        if device.type == "cuda":
            bf16 = torch.cuda.is_bf16_supported()
            amp_dtype = torch.bfloat16 if bf16 else torch.float16
            results["fp32"] = compare(args, device, plain, None, False, augment)
            results["amp_channels_last"] = compare(args, device, plain, amp_dtype, True, augment)
            results["amp_channels_last_augment_in_loader"] = compare(
                args, device, dataset, amp_dtype, True
            )
            results["amp_dtype"] = str(amp_dtype)
            results["amp_speedup_memory"] = (
                results["amp_channels_last"]["images_per_s_memory"]
                / results["fp32"]["images_per_s_memory"]
            )
            torch.cuda.reset_peak_memory_stats(device)
            one = fresh_model(args.model, device, True)
            loader = iter(
                make_train_loader(
                    plain,
                    TrainConfig(
                        index="-",
                        cache="-",
                        observation=OBSERVATION,
                        batch_size=args.batch_size,
                        num_workers=args.workers,
                    ),
                    DistInfo(device=device),
                )
            )
            timed_steps(
                *one, loader, args.warmup, get_method("pu-rm"), device, amp_dtype, True, augment
            )
            results["peak_gpu_memory_gb_one_run"] = torch.cuda.max_memory_allocated(device) / 2**30
            best = results["amp_channels_last"]["images_per_s_cache"]
            hours = PAPER_ITERATIONS * args.batch_size / best / 3600
            results["train_images_per_s"] = best
            results["projected_50k_hours"] = hours
            results["projected_table2_gpu_hours"] = TABLE2_RUNS * hours
            results["projected_table2_wall_hours_8_gpus"] = -(-TABLE2_RUNS // 8) * hours
        else:
            results["fp32"] = compare(args, device, dataset, None, False)
            if args.model == "densenet-tiny" and args.size == 64 and args.batch_size == 32:
                ms = results["fp32"]["ms_per_step_cache"]
                results["demo_grid_minutes_16x300"] = round(16 * 300 * ms / 1000 / 60, 2)

    for key, value in results.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k:26s} {v:10.3f}")
        else:
            print(f"{key:28s} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
