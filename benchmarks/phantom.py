"""Phantom and MIMIC-index speed, each against a baseline measured in the same run, and the
calibration check (generated label shares against the calibration table).

    python benchmarks/phantom.py [--studies 2000] [--size 128] [--eval-studies N]

1. ``make_phantom`` (2,000 studies at 128 px by default) against its I/O floor: writing the
   same number of JPEGs of a constant image into the same folder layout (no drawing, no reports,
   no CSVs). The ratio is the cost of drawing and report writing over plain I/O.
2. ``index_mimic`` on the result, and its file-existence check (``existing_files``: one
   ``scandir`` per study folder, threaded) against ``os.path.exists`` per file.
3. The index counts (kept and dropped by reason).
4. Calibration: per calibrated observation, the label shares per frontal image as the index
   sees them against the calibration table, the share of atypical positives (report labeler)
   against real reports, and the atypical / typical positives per split.

Timings on a shared machine are noisy; compare the ratios, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from finegrain.data.mimic import index_mimic
from finegrain.data.phantom import CALIBRATED, load_calibration, make_phantom
from finegrain.data.sources import _list_dir, existing_files
from finegrain.observations import subcategory_column


def io_floor(out: Path, images: int, size: int) -> float:
    """Seconds to write ``images`` constant JPEGs into one folder per image (MIMIC-like)."""
    start = time.perf_counter()
    pixels = np.full((size, size), 128, np.uint8)
    for i in range(images):
        folder = out / "files" / f"p{i % 10 + 10}" / f"p{10000000 + i}" / f"s{50000000 + i}"
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        Image.fromarray(pixels, mode="L").save(buf, format="JPEG", quality=90)
        (folder / f"{i:08x}.jpg").write_bytes(buf.getvalue())
    return time.perf_counter() - start


def calibration_report(frame) -> None:
    """Generated vs target label shares (points), atypical share, positives per split."""
    calibration = load_calibration()
    print(f"calibration ({calibration.profile}), per frontal image: generated / target, points")
    print(f"  {'observation':18s} {'positive':>13s} {'uncertain':>13s} {'negative':>13s} "
          f"{'blank':>13s} {'atypical of pos':>17s}")  # fmt: skip
    worst = 0.0
    for obs in CALIBRATED:
        values = frame[obs].astype("float").to_numpy()
        got = [np.mean(values == 1), np.mean(values == -1), np.mean(values == 0)]
        got.append(float(np.isnan(values).mean()))
        target = calibration.shares[obs].as_tuple()
        worst = max(worst, *(abs(g - t) for g, t in zip(got, target, strict=True)))
        sub = frame.loc[values == 1, subcategory_column(obs)].astype(str)
        cells = " ".join(
            f"{100 * g:5.1f} /{100 * t:5.1f}" for g, t in zip(got, target, strict=True)
        )
        print(f"  {obs:18s} {cells}   {(sub == 'atypical').mean():.3f} / "
              f"{calibration.atypical[obs]:.3f}")  # fmt: skip
    print(f"  largest difference: {100 * worst:.2f} points")
    print("positives per split (atypical / typical):")
    for split in ("train", "validate", "test"):
        part = frame[frame["split"] == split]
        counts = []
        for obs in CALIBRATED:
            positive = part[obs].astype("float").to_numpy() == 1
            sub = part[subcategory_column(obs)].astype(str).to_numpy()
            atypical = int((positive & (sub == "atypical")).sum())
            typical = int((positive & (sub == "typical")).sum())
            counts.append(f"{obs} {atypical}/{typical}")
        print(f"  {split:8s} {len(part):6d} images: " + ", ".join(counts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=2000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-studies", type=int, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="finegrain-bench-phantom-"))
    try:
        root = work / "phantom"
        start, cpu = time.perf_counter(), time.process_time()
        summary = make_phantom(
            root,
            studies=args.studies,
            size=args.size,
            seed=args.seed,
            eval_studies=args.eval_studies,
        )
        t_phantom, c_phantom = time.perf_counter() - start, time.process_time() - cpu
        cpu = time.process_time()
        t_floor = io_floor(work / "floor", summary.images, args.size)
        c_floor = time.process_time() - cpu
        print(
            f"phantom: {summary.studies} studies ({args.studies} + 2 x {args.eval_studies} "
            f"evaluation), {summary.images} images at {args.size} px"
            if args.eval_studies
            else f"phantom: {args.studies} studies, {summary.images} images at {args.size} px"
        )
        print(
            f"  make_phantom        {t_phantom:7.2f} s  ({summary.images / t_phantom:7.0f} img/s)"
        )
        print(f"  I/O floor           {t_floor:7.2f} s  (constant JPEGs, same count)")
        print(f"  ratio phantom/floor {t_phantom / t_floor:7.2f}x")
        print(
            f"  CPU time (less sensitive to a busy machine): phantom {c_phantom:.2f} s, "
            f"floor {c_floor:.2f} s, ratio {c_phantom / max(c_floor, 1e-9):.2f}x"
        )

        start = time.perf_counter()
        frame, index_summary = index_mimic(root, progress=False)
        t_index = time.perf_counter() - start
        paths = [
            os.path.join(root, p.relative_to(root)) for p in sorted((root / "files").rglob("*.jpg"))
        ]
        start = time.perf_counter()
        fast = existing_files(paths)
        t_fast = time.perf_counter() - start
        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:  # one scandir per folder, forced
            listing = dict(pool.map(_list_dir, {os.path.dirname(p) for p in paths}))
        scanned = np.array([os.path.basename(p) in listing[os.path.dirname(p)] for p in paths])
        t_scan = time.perf_counter() - start
        start = time.perf_counter()
        slow = np.array([os.path.exists(p) for p in paths])
        t_exists = time.perf_counter() - start
        assert (fast == slow).all() and (scanned == slow).all()
        print(f"index_mimic: {t_index:.2f} s for {len(frame)} kept rows (labeler included)")
        print(
            f"  existence check of {len(paths)} files: existing_files {t_fast * 1e3:.1f} ms, "
            f"scandir per folder {t_scan * 1e3:.1f} ms, os.path.exists loop (baseline) "
            f"{t_exists * 1e3:.1f} ms; baseline/existing_files {t_exists / max(t_fast, 1e-9):.2f}x"
        )
        print("index counts:")
        print("  " + index_summary.format().replace("\n", "\n  "))
        calibration_report(frame)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
