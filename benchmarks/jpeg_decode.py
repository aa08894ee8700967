"""Real-size JPEG decode: ``prepare`` per core against the decoder's reduced-size decode alone.

MIMIC-CXR-JPG's images are about 2,500 x 3,000 pixels. This generates N synthetic grayscale
radiograph JPEGs of that size (``benchmarks/prepare.py``'s generator: smooth anatomy-scale
structure + detector-like noise; 2,544 x 3,056, quality 95 by default; kept under --data between
runs) and measures, in one process, interleaved over --rounds rounds (the best round counts, the
machine being shared), the CPU time per image of

- **naive**: Pillow open -> ``convert("L")`` -> ``resize((size, size))`` (full-size decode);
- **floor**: Pillow open -> ``draft("L", (size, size))`` -> ``load()``: libjpeg's reduced-size
  (DCT-domain 1/2, 1/4, 1/8) decode alone, no resize: what any reader has to pay;
- **read_grayscale**: the cache's reader (floor + bicubic resize to ``size``);
- **prepare**: ``finegrain.data.cache.prepare(..., workers=0)`` over all N images (decode, resize,
  memmap write, fsync, manifest): what ``finegrain prepare --workers 1`` costs per image;
- **simplejpeg** (only if importable; ``--extra-path`` may name a folder to import it from):
  libjpeg-turbo's scaled decode (``min_height`` / ``min_width``) from bytes + the same resize.

It prints images/s per core (1 / CPU seconds per image) and the ratios prepare / floor (goal
<= 1.2) and naive / prepare. The page cache is warmed first, so the disk is not measured.

    nice -n 5 python benchmarks/jpeg_decode.py --n 300 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finegrain.data.imageio import read_grayscale  # noqa: E402
from prepare import ensure_images  # noqa: E402  (benchmarks/prepare.py: the JPEG generator)


def naive(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L").resize((size, size)))


def floor(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as image:
        image.draft("L", (size, size))
        image.load()
        return np.asarray(image)


def cache_reader(path: Path, size: int) -> np.ndarray:
    return read_grayscale(path, size)


def simplejpeg_reader(path: Path, size: int) -> np.ndarray:
    import simplejpeg

    pixels = simplejpeg.decode_jpeg(
        path.read_bytes(), colorspace="GRAY", min_height=size, min_width=size
    )
    image = Image.fromarray(pixels[:, :, 0])
    return np.asarray(image.resize((size, size), Image.Resampling.BICUBIC))


def cpu_per_image(read: Callable[[Path, int], np.ndarray], paths: list[Path], size: int) -> float:
    start = time.process_time()
    for path in paths:
        read(path, size)
    return (time.process_time() - start) / len(paths)


def prepare_per_image(paths: list[Path], size: int, work: Path) -> float:
    import pandas as pd

    from finegrain.data.cache import prepare

    frame = pd.DataFrame({"image_id": [f"i{i}" for i in range(len(paths))], "path": paths})
    with tempfile.TemporaryDirectory(dir=work) as out:
        start = time.process_time()
        summary = prepare(frame, out, size=size, workers=0, progress=False)
        cpu = time.process_time() - start
    assert summary.failed == 0, summary.format()
    return cpu / len(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="number of JPEGs (300)")
    parser.add_argument("--width", type=int, default=2544)
    parser.add_argument("--height", type=int, default=3056)
    parser.add_argument("--quality", type=int, default=95)
    parser.add_argument("--noise", type=float, default=1.5, help="pixel noise sigma (1.5)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "fg-scale")
    parser.add_argument("--extra-path", help="a folder to import simplejpeg from (appended)")
    args = parser.parse_args()
    if args.extra_path:
        sys.path.append(args.extra_path)

    folder = args.data / f"jpeg-{args.width}x{args.height}-q{args.quality}-noise{args.noise:g}"
    paths = ensure_images(folder, args.n, args.width, args.height, args.noise, args.quality)
    megabytes = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
    for p in paths:  # warm the page cache: decoding is measured, not the disk
        p.read_bytes()
    with Image.open(paths[0]) as image:
        image.draft("L", (args.size, args.size))
        reduced = image.size
    readers: dict[str, Callable[[Path, int], np.ndarray]] = {
        "naive": naive,
        "floor": floor,
        "read_grayscale": cache_reader,
    }
    try:
        import simplejpeg  # noqa: F401

        readers["simplejpeg"] = simplejpeg_reader
    except ImportError:
        print("simplejpeg not importable: skipped (pip install simplejpeg)")
    print(
        f"{len(paths)} JPEGs {args.width}x{args.height}, quality {args.quality}, mean "
        f"{megabytes:.2f} MB; reduced-size decode at {reduced[0]}x{reduced[1]}; target "
        f"{args.size} px; cpus {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}"
    )
    best: dict[str, float] = {}
    for round_ in range(args.rounds):
        costs = {name: cpu_per_image(read, paths, args.size) for name, read in readers.items()}
        costs["prepare"] = prepare_per_image(paths, args.size, args.data)
        for name, cost in costs.items():
            best[name] = min(best.get(name, np.inf), cost)
        print(
            f"round {round_ + 1}: "
            + ", ".join(f"{k} {1000 * v:.1f} ms" for k, v in costs.items())
            + f" CPU per image (load average {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    for name, cost in best.items():
        print(
            f"{name:>15}: {1000 * cost:6.1f} ms CPU per image = {1 / cost:6.1f} images/s per core"
        )
    print(
        f"RESULT prepare / floor = {best['prepare'] / best['floor']:.2f} (goal <= 1.2); "
        f"naive / prepare = {best['naive'] / best['prepare']:.2f}x"
        + (
            f"; simplejpeg (+ resize) / floor = {best['simplejpeg'] / best['floor']:.2f}"
            if "simplejpeg" in best
            else ""
        )
    )


if __name__ == "__main__":
    main()
