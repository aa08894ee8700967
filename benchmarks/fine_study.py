"""The pre-registered comparison of the methods trained on fine labels with U-Ones on the
calibrated phantom (docs/study.md, section 3). Resumable: the phantom, its index and cache
and every finished run are reused.

    PYTHONPATH=src python benchmarks/fine_study.py OUT [--until HH:MM] [--data-only]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from finegrain.experiment.grid import RunSpec
from finegrain.experiment.presets import DEMO
from finegrain.experiment.runner import DataSource, prepare_data, run_grid

OBSERVATIONS = ("Consolidation", "Edema")
#: methods in the order trained; seeds 0-4 of each before the next
PRIMARY = ("u-ones", "graded", "ordinal", "three-class")
SEEDS = 5
#: exploratory, after the primary grid: no cue = grade unknown, 2 seeds
SECONDARY = ("graded-nocue", "ordinal-nocue", "three-class-nocue")
SECONDARY_SEEDS = 2


def specs() -> list[list[RunSpec]]:
    """The grid in blocks, in the order trained."""
    blocks = [
        [RunSpec(obs, m, None, s) for s in range(SEEDS) for obs in OBSERVATIONS] for m in PRIMARY
    ]
    blocks += [
        [RunSpec(obs, m, None, s) for s in range(SECONDARY_SEEDS) for obs in OBSERVATIONS]
        for m in SECONDARY
    ]
    return blocks


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--until", help="UTC HH:MM: start no block after it")
    parser.add_argument("--data-only", action="store_true")
    args = parser.parse_args()
    t0, c0 = time.perf_counter(), _cpu()
    data = prepare_data(DataSource(phantom=True), args.out, DEMO, progress=False)
    print(f"data ready: {time.perf_counter() - t0:.0f} s wall, {_cpu() - c0:.0f} s CPU", flush=True)
    if args.data_only:
        return
    for block in specs():
        if args.until and time.strftime("%H:%M", time.gmtime()) >= args.until:
            print(f"stopped at {args.until} UTC before {block[0].method}", flush=True)
            break
        b0, bc0 = time.perf_counter(), _cpu()
        outcome = run_grid(block, args.out / "runs", DEMO, data, jobs=DEMO.jobs, progress=False)
        print(
            f"{block[0].variant}: trained {len(outcome.trained)}, skipped "
            f"{len(outcome.skipped)}; {time.perf_counter() - b0:.0f} s wall, "
            f"{_cpu() - bc0:.0f} s CPU",
            flush=True,
        )


if __name__ == "__main__":
    main()
