"""MIMIC-CXR-JPG at full row count on one machine: how every stage's cost grows with the size.

For each size (studies; default 10,000, 50,000 and MIMIC's 227,835) this writes the phantom in
MIMIC-CXR-JPG's shape (``finegrain phantom --mimic-counts``: MIMIC's ratios of subjects, studies,
images and split sizes; exactly MIMIC's counts at 227,835 studies) at a small pixel size, then
runs every stage of the pipeline as its own process, as a user would:

1. ``finegrain index --mimic`` (reads the four CSVs, labels every report);
2. ``finegrain prepare`` (the image cache);
3. the training dataset and loader: ``read_index`` + ``ImageCache`` + ``CXRDataset`` (train
   split) + ``make_train_loader`` up to its first batch, on the frontal index and on an index
   of every view (``--views all``: MIMIC's 377 k rows at full size);
4. ``finegrain benchmark --index --cache`` (demo preset, 1 seed, the paper's two observations,
   a few iterations: every run builds its datasets and evaluates validate and test);
5. ``finegrain benchmark --report-only`` (results, tables, figures, localisation, HTML).

Each stage is measured from outside (``os.wait4``): wall time, CPU time (user + system of the
process and its waited-for children, or of its whole process tree sampled every 0.25 s from
/proc, whichever is larger: prepare's forkserver workers are not waited for by the stage's own
process) and the peak RSS of its largest process; the tree's summed RSS is sampled too. Between consecutive sizes it prints the fitted
growth exponent ``log(cost2 / cost1) / log(n2 / n1)`` of CPU time and the ratio to a linear
extrapolation of the smaller size (the baseline, measured in the same run); 1.0 is linear.

    nice -n 5 python benchmarks/mimic_scale.py --sizes 10000 50000 227835 --work /tmp/fg-scale

Needs about 17 KB of disk per study at 32 px (3.9 GB at full size, mostly file-system blocks).
Results go to WORK/mimic-scale.json (appended per size, so sizes can be run one at a time).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from prepare import tree_rss_kb  # benchmarks/prepare.py (a script's folder is on sys.path)

DATASET_CODE = """
import json, sys, time
t0 = time.perf_counter()
from finegrain.data.cache import ImageCache
from finegrain.data.dataset import CXRDataset
from finegrain.data.index import read_index
from finegrain.train.config import TrainConfig
from finegrain.train.distributed import DistInfo
from finegrain.train.loop import make_train_loader
import torch
t1 = time.perf_counter()
index = read_index(sys.argv[1])
t2 = time.perf_counter()
dataset = CXRDataset(index, ImageCache(sys.argv[2]), "Consolidation", "train")
t3 = time.perf_counter()
config = TrainConfig(index="-", cache="-", observation="Consolidation", batch_size=32,
                     num_workers=0)
batch = next(iter(make_train_loader(dataset, config, DistInfo(device=torch.device("cpu")))))
t4 = time.perf_counter()
print(json.dumps({"rows": len(index), "kept": len(dataset), "import_s": t1 - t0,
                  "read_index_s": t2 - t1, "dataset_s": t3 - t2, "first_batch_s": t4 - t3}))
"""


@dataclass
class Stage:
    """One stage at one size, measured from outside its process."""

    stage: str
    studies: int
    wall_s: float
    cpu_s: float
    max_rss_mb: float  # the largest single process (wait4's ru_maxrss)
    tree_rss_mb: float  # the process tree's summed RSS, sampled every 0.25 s
    detail: str = ""


def measure(stage: str, studies: int, command: list[str], log: Path) -> tuple[Stage, str]:
    """Run ``command`` (stdout and stderr to ``log``); its wall, CPU and peak memory."""
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        peak, ticks = [0], {}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss_kb(proc.pid, ticks))
                done.wait(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{stage} failed ({proc.returncode}); see {log}:\n{text[-3000:]}")
    result = Stage(
        stage=stage,
        studies=studies,
        wall_s=wall,
        # wait4 misses workers that are not its waited-for descendants (prepare's forkserver
        # pool); the sampled tree misses processes shorter than a sample: take the larger
        cpu_s=max(usage.ru_utime + usage.ru_stime, sum(ticks.values()) / os.sysconf("SC_CLK_TCK")),
        max_rss_mb=usage.ru_maxrss / 1024,
        tree_rss_mb=peak[0] / 1024,
    )
    print(
        f"  {stage:<22} wall {wall:8.1f} s  CPU {result.cpu_s:8.1f} s  "
        f"peak RSS {result.max_rss_mb:7.0f} MB (tree {result.tree_rss_mb:.0f} MB)",
        flush=True,
    )
    return result, text


def stage_commands(folder: Path, studies: int, size: int, iterations: int):
    """``(stage name, command, outputs to remove before a re-run)`` of every stage."""
    phantom, data, bench = folder / "phantom", folder / "data", folder / "bench"
    py = [sys.executable, "-m", "finegrain"]
    index, index_all, cache, cache_all = (
        data / "index.csv",
        data / "index-all.csv",
        data / f"cache-{size}",
        data / f"cache-all-{size}",
    )
    outputs = {
        "index": [index],
        "prepare": [cache],
        "index, all views": [index_all],
        "prepare, all views": [cache_all],
        "benchmark (runs + report)": [bench],
    }
    steps: list[tuple[str, list[str]]] = [
        (
            "phantom (setup)",
            py
            + ["phantom", str(phantom), "--studies", str(studies), "--size", str(size)]
            + ["--mimic-counts", "--no-progress"],
        ),
        ("index", py + ["index", "--mimic", str(phantom), "-o", str(index), "--no-progress"]),
        ("prepare", py + ["prepare", str(index), "-o", str(cache), "--size", str(size)]),
        ("dataset + loader", [sys.executable, "-c", DATASET_CODE, str(index), str(cache)]),
        (
            "index, all views",
            py
            + ["index", "--mimic", str(phantom), "-o", str(index_all), "--views", "all"]
            + ["--no-progress"],
        ),
        (
            "prepare, all views",
            py + ["prepare", str(index_all), "-o", str(cache_all), "--size", str(size)],
        ),
        (
            "dataset, all views",
            [sys.executable, "-c", DATASET_CODE, str(index_all), str(cache_all)],
        ),
        (
            "benchmark (runs + report)",
            py
            + ["benchmark", "--index", str(index), "--cache", str(cache), "--out", str(bench)]
            + ["--seeds", "1", "--iterations", str(iterations), "--checkpoint-every"]
            + [str(iterations), "--image-size", str(size), "--no-progress"],
        ),
        (
            "report",
            py
            + ["benchmark", "--index", str(index), "--cache", str(cache), "--out", str(bench)]
            + ["--seeds", "1", "--iterations", str(iterations), "--checkpoint-every"]
            + [str(iterations), "--image-size", str(size), "--no-progress", "--report-only"],
        ),
    ]
    return [(name, command, outputs.get(name, [])) for name, command in steps]


def measure_stage(name: str, studies: int, command: list[str], logs: Path) -> Stage:
    slug = name.split(" (")[0].replace(" ", "-").replace(",", "").replace("+", "and")
    stage, text = measure(name, studies, command, logs / f"{slug}.log")
    if name.startswith("dataset"):
        stage.detail = text.strip().splitlines()[-1]
    elif name in ("index", "index, all views"):
        stage.detail = text.strip().splitlines()[0]
    return stage


def run_size(studies: int, work: Path, size: int, iterations: int) -> list[Stage]:
    folder = work / f"n{studies}"
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "data").mkdir(parents=True)
    logs = folder / "logs"
    logs.mkdir()
    print(f"{studies} studies (load average {os.getloadavg()[0]:.1f}):", flush=True)
    results = [
        measure_stage(name, studies, command, logs)
        for name, command, _ in stage_commands(folder, studies, size, iterations)
    ]
    usage = shutil.disk_usage(folder)
    du = subprocess.run(["du", "-sm", str(folder / "phantom")], capture_output=True, text=True)
    du = du.stdout
    print(f"  phantom on disk: {du.split()[0]} MB; free {usage.free / 1e9:.0f} GB", flush=True)
    return results


def rerun(
    sizes: list[int], stages: list[str], work: Path, size: int, iterations: int, rounds: int
) -> list[Stage]:
    """Measure ``stages`` again on the kept data of every size, the sizes alternating, ``rounds``
    times; the round with the least CPU time counts (the machine is shared)."""
    best: dict[tuple[str, int], Stage] = {}
    for round_ in range(rounds):
        for studies in sizes:
            folder = work / f"n{studies}"
            print(f"re-run {round_ + 1}, {studies} studies (load {os.getloadavg()[0]:.1f}):")
            for name, command, outputs in stage_commands(folder, studies, size, iterations):
                if name not in stages:
                    continue
                for path in outputs:
                    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
                stage = measure_stage(name, studies, command, folder / "logs")
                key = (name, studies)
                if key not in best or stage.cpu_s < best[key].cpu_s:
                    best[key] = stage
    return list(best.values())


def exponent(small: Stage, large: Stage, key: str = "cpu_s") -> float:
    a, b = getattr(small, key), getattr(large, key)
    if a <= 0 or b <= 0:
        return math.nan
    return math.log(b / a) / math.log(large.studies / small.studies)


def print_table(stages: list[Stage]) -> None:
    sizes = sorted({s.studies for s in stages})
    names = list(dict.fromkeys(s.stage for s in stages))
    by = {(s.stage, s.studies): s for s in stages}
    head = " | ".join(f"{n:,} studies: wall / CPU s / peak RSS MB" for n in sizes)
    pairs = list(zip(sizes, sizes[1:], strict=False))
    growth = " | ".join(f"exponent {a // 1000}k→{b // 1000}k (CPU; linear ratio)" for a, b in pairs)
    print(f"| stage | {head} | {growth} |")
    print("|---" * (1 + len(sizes) + len(pairs)) + "|")
    for name in names:
        cells = []
        for n in sizes:
            s = by.get((name, n))
            cells.append(
                "–" if s is None else f"{s.wall_s:.1f} / {s.cpu_s:.1f} / {s.max_rss_mb:.0f}"
            )
        for a, b in pairs:
            if (name, a) in by and (name, b) in by:
                small, large = by[(name, a)], by[(name, b)]
                ratio = (large.cpu_s / small.cpu_s) / (b / a)
                cells.append(f"{exponent(small, large):.2f} ({ratio:.2f}×)")
            else:
                cells.append("–")
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 227_835])
    parser.add_argument("--work", type=Path, default=Path("/tmp/fg-scale"))
    parser.add_argument("--size", type=int, default=32, help="pixel size of phantom and cache")
    parser.add_argument("--iterations", type=int, default=20, help="training iterations per run")
    parser.add_argument("--table-only", action="store_true", help="print the recorded table")
    parser.add_argument("--keep", action="store_true", help="keep each size's data")
    parser.add_argument(
        "--rerun",
        nargs="+",
        metavar="STAGE",
        help="measure these stages again on the kept data of --sizes, sizes alternating, "
        "--rounds times; the least CPU time counts (e.g. --rerun index prepare)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    record = args.work / "mimic-scale.json"
    stages = [Stage(**s) for s in json.loads(record.read_text())] if record.exists() else []
    if args.rerun:
        new = rerun(args.sizes, args.rerun, args.work, args.size, args.iterations, args.rounds)
        keys = {(s.stage, s.studies) for s in new}
        stages = [s for s in stages if (s.stage, s.studies) not in keys] + new
        record.write_text(json.dumps([asdict(s) for s in stages], indent=1))
    elif not args.table_only:
        print(f"cpus {os.cpu_count()}; python {sys.version.split()[0]}", flush=True)
        for studies in args.sizes:
            new = run_size(studies, args.work, args.size, args.iterations)
            stages = [s for s in stages if s.studies != studies] + new
            record.write_text(json.dumps([asdict(s) for s in stages], indent=1))
            if not args.keep:
                shutil.rmtree(args.work / f"n{studies}")
    print_table(stages)


if __name__ == "__main__":
    main()
