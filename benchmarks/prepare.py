"""Benchmark `finegrain prepare` against a naive loader on full-size synthetic radiograph JPEGs.

Generates N full-size JPEGs once (smooth anatomy-scale structure + detector-like noise, quality
95, cached under --data between runs), then in the same run measures images/s of

- the naive loader: Pillow open -> convert("L") -> resize((size, size)), one process;
- ``prepare`` with DCT-domain (draft) decoding, --workers processes (and with one worker);

and the peak resident memory of the whole ``prepare`` process tree (parent + forkserver +
workers, sampled from /proc) for N and 2N images, which must stay flat. Linux only for memory.

    python benchmarks/prepare.py --n 200 --workers 2

Timings on a shared machine are noisy: compare the ratio, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

CHILD_CODE = """
import json, resource, sys, time
import pandas as pd
from finegrain.data.cache import prepare
frame = pd.read_csv(sys.argv[1], dtype=str)
start = time.perf_counter()
summary = prepare(frame, sys.argv[2], size=int(sys.argv[3]), workers=int(sys.argv[4]),
                  progress=False)
elapsed = time.perf_counter() - start
print(json.dumps({"elapsed": elapsed, "ok": summary.ok, "failed": summary.failed,
                  "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def synthetic_radiograph(seed: int, width: int, height: int, noise: float) -> np.ndarray:
    """A uint8 image with radiograph-like statistics: smooth large structures, mid-scale
    texture and per-pixel noise (which sets the JPEG entropy, hence the decoding cost)."""
    rng = np.random.default_rng(seed)

    def field(h: int, w: int) -> np.ndarray:
        small = Image.fromarray((rng.random((h, w)) * 255).astype(np.uint8))
        return np.asarray(small.resize((width, height), Image.BICUBIC), dtype=np.float32)

    image = 0.7 * field(12, 10) + 0.25 * field(150, 125)
    image += rng.normal(0.0, noise, (height, width)).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _write_one(args: tuple) -> None:
    path, seed, width, height, noise, quality = args
    tmp = path.with_suffix(".tmp")
    Image.fromarray(synthetic_radiograph(seed, width, height, noise)).save(
        tmp, format="JPEG", quality=quality
    )
    os.replace(tmp, path)


def ensure_images(folder: Path, n: int, width: int, height: int, noise: float, quality: int):
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"img-{i:05d}.jpg" for i in range(n)]
    todo = [(p, i, width, height, noise, quality) for i, p in enumerate(paths) if not p.exists()]
    if todo:
        print(f"generating {len(todo)} JPEGs of {width}x{height} in {folder} (once) ...")
        with Pool(min(2, os.cpu_count() or 1)) as pool:
            pool.map(_write_one, todo, chunksize=4)
    return paths


def naive(paths: list[Path], size: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the naive loader over ``paths``."""
    start, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        with Image.open(path) as image:
            np.asarray(image.convert("L").resize((size, size)))
    return time.perf_counter() - start, time.process_time() - cpu


def tree_rss_kb(root: int, cpu_ticks: dict[int, int] | None = None) -> int:
    """Sum of VmRSS over ``root`` and all its descendants (Linux /proc); records each
    process's cumulative CPU ticks (user + system) into ``cpu_ticks``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    stat = handle.read()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid and c not in tree]
        tree.update(children)
        frontier.extend(children)
    total = 0
    for pid in tree:
        try:
            if cpu_ticks is not None:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                cpu_ticks[pid] = int(fields[11]) + int(fields[12])
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def run_prepare(rows: list[tuple[str, str]], size: int, workers: int, work: Path) -> dict:
    """Run prepare in a fresh child process; sample the peak RSS of its process tree."""
    import pandas as pd

    index = work / f"index-{len(rows)}.csv"
    pd.DataFrame(rows, columns=["image_id", "path"]).to_csv(index, index=False)
    out = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD_CODE, str(index), str(out), str(size), str(workers)],
        stdout=subprocess.PIPE,
        text=True,
    )
    peak, ticks = [0], {}

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_kb(proc.pid, ticks))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    if sys.platform.startswith("linux"):
        sampler.start()
    stdout, _ = proc.communicate()
    if sampler.is_alive():
        sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"prepare child failed with code {proc.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_tree_rss_mb"] = peak[0] / 1024
    # CPU seconds of the whole tree (sampled every 20 ms; includes start-up and imports)
    result["cpu_s"] = sum(ticks.values()) / os.sysconf("SC_CLK_TCK")
    result["n"] = len(rows)
    for f in out.iterdir():
        f.unlink()
    out.rmdir()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="number of JPEGs (200)")
    parser.add_argument("--width", type=int, default=2500)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--quality", type=int, default=95)
    parser.add_argument("--noise", type=float, default=1.5, help="pixel noise sigma (1.5)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(tempfile.gettempdir()) / "finegrain-bench",
        help="where the generated JPEGs are kept between runs",
    )
    args = parser.parse_args()

    folder = args.data / f"jpeg-{args.width}x{args.height}-q{args.quality}-noise{args.noise:g}"
    paths = ensure_images(folder, args.n, args.width, args.height, args.noise, args.quality)
    megabytes = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
    for p in paths:  # warm the page cache so both loaders measure decoding, not the disk
        p.read_bytes()
    print(
        f"{len(paths)} JPEGs {args.width}x{args.height}, quality {args.quality}, mean "
        f"{megabytes:.2f} MB; target {args.size} px; cpus {os.cpu_count()}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )

    t_naive, cpu_naive = naive(paths, args.size)
    naive_ips = len(paths) / t_naive
    print(
        f"naive (open -> convert -> resize, 1 process): {naive_ips:7.1f} images/s, "
        f"{1000 * cpu_naive / len(paths):.0f} ms CPU per image"
    )

    with tempfile.TemporaryDirectory(prefix="finegrain-prepare-bench-") as tmp:
        work = Path(tmp)
        rows = [(f"i{i}", str(p)) for i, p in enumerate(paths)]
        one = run_prepare(rows, args.size, 1, work)
        cpu_ratio = (cpu_naive / len(paths)) / (one["cpu_s"] / one["n"])
        print(
            f"prepare, draft decoding, 1 worker:            {one['n'] / one['elapsed']:7.1f} "
            f"images/s  ({one['n'] / one['elapsed'] / naive_ips:.1f}x naive), "
            f"{1000 * one['cpu_s'] / one['n']:.0f} ms CPU per image incl. start-up "
            f"({cpu_ratio:.1f}x less CPU than naive)"
        )
        results = []
        for factor in (1, 2):  # 2N images: the same files listed twice under new ids
            rows_k = [(f"i{k}-{i}", str(p)) for k in range(factor) for i, p in enumerate(paths)]
            result = run_prepare(rows_k, args.size, args.workers, work)
            assert result["failed"] == 0, result
            results.append(result)
            print(
                f"prepare, draft decoding, {args.workers} workers, N={result['n']:5d}: "
                f"{result['n'] / result['elapsed']:7.1f} images/s  "
                f"({result['n'] / result['elapsed'] / naive_ips:.1f}x naive), peak RSS of the "
                f"process tree {result['peak_tree_rss_mb']:.0f} MB (parent alone "
                f"{result['self_maxrss_kb'] / 1024:.0f} MB)"
            )
    ratio = results[0]["n"] / results[0]["elapsed"] / naive_ips
    growth = results[1]["peak_tree_rss_mb"] / max(results[0]["peak_tree_rss_mb"], 1e-9)
    print(
        f"RESULT prepare/naive = {ratio:.1f}x wall-clock (target >= 5x with 2 workers on 2 "
        f"cores); CPU per image {cpu_ratio:.1f}x less, i.e. ~{cpu_ratio * args.workers:.1f}x "
        f"with {args.workers} free cores; peak memory 2N/N = {growth:.2f} (flat = ~1.0)"
    )


if __name__ == "__main__":
    main()
