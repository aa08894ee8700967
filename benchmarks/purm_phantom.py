"""Why does (or doesn't) PU-RM beat U-Ones on the phantom? A mechanism check.

PCE differs from CE only for a positive whose predicted positive probability p is at or below τ:
there the loss turns linear and its gradient stops growing, so the model is not forced to push
that (often atypical) case to 1. If hardly any positive ever sits below τ, PU-RM *is* U-Ones.

This script trains U-Ones and PU-RM on the phantom through ``finegrain benchmark`` for one or more
training lengths (same seeds, same data) and prints, per method, length and checkpoint:
validation AUC^FG, the fraction of validation positives with p <= τ (PCE's linear regime), and the
mean p of atypical and typical positives.

    python benchmarks/purm_phantom.py --iterations 300 1500 --seeds 2 --out /tmp/purm
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

from finegrain.metrics import auc_fg
from finegrain.train.methods import TAU
from finegrain.train.rundir import RunDirectory, find_runs


def run_grid(out: Path, iterations: int, seeds: int, observations: list[str]) -> None:
    """Train U-Ones and PU-RM (demo preset otherwise) into ``out`` (resumes if present)."""
    cmd = [
        sys.executable, "-m", "finegrain", "benchmark", "--out", str(out), "--no-progress",
        "--methods", "u-ones", "pu-rm", "--seeds", str(seeds), "--iterations", str(iterations),
        "--checkpoint-every", str(max(1, iterations // 5)), "--observations", *observations,
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def describe(out: Path, tau: float) -> pd.DataFrame:
    """One row per run × checkpoint: AUC^FG, fraction of positives below τ, mean p by class."""
    rows = []
    finished, _ = find_runs(out / "runs")
    for seed_dir in finished:
        method, observation = seed_dir.parent.name.split("-tau")[0], seed_dir.parent.parent.name
        frame = RunDirectory(seed_dir).read_predictions("validate")
        if frame is None:
            continue
        for iteration, group in frame.groupby("iteration"):
            positives = group[group["label"] == 1]
            sub = positives.dropna(subset=["subcategory"])
            rows.append(
                {
                    "observation": observation,
                    "method": method,
                    "seed": seed_dir.name,
                    "iteration": int(iteration),
                    "auc_fg": auc_fg(sub["subcategory"], sub["score"]),
                    "positives_below_tau": float((positives["score"] <= tau).mean()),
                    "p_atypical": float(sub.loc[sub["subcategory"] == "atypical", "score"].mean()),
                    "p_typical": float(sub.loc[sub["subcategory"] == "typical", "score"].mean()),
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, nargs="+", default=[300, 1500])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--observations", nargs="+", default=["Consolidation", "Edema"])
    parser.add_argument("--tau", type=float, default=TAU, help="PCE's τ (default: PU-RM's own)")
    parser.add_argument("--out", type=Path, default=Path("purm-phantom"))
    args = parser.parse_args(argv)
    tables = []
    for iterations in args.iterations:
        out = args.out / f"it{iterations}"
        run_grid(out, iterations, args.seeds, args.observations)
        table = describe(out, args.tau).assign(length=iterations)
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    pd.set_option("display.width", 160)
    print("per checkpoint, mean over seeds:")
    print(
        table.groupby(["observation", "length", "method", "iteration"])[
            ["auc_fg", "positives_below_tau", "p_atypical", "p_typical"]
        ]
        .mean()
        .round(4)
        .to_string()
    )
    best = table.loc[table.groupby(["observation", "length", "method", "seed"])["auc_fg"].idxmax()]
    print("\nbest checkpoint by validation AUC^FG (the paper's protocol), mean ± std over seeds:")
    summary = best.groupby(["observation", "length", "method"])["auc_fg"].agg(["mean", "std"])
    print(summary.round(4).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
