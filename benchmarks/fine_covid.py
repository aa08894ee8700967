"""Exploratory: each method's fine score on 353 real COVID-19 radiographs against the
radiologists' severity scores (Spearman ρ), from the checkpoints of the fine-label comparison
(``benchmarks/fine_study.py``: densenet-tiny, 64 px, trained on the calibrated phantom; each
run at its checkpoint chosen on phantom validation AUC^FG).

    PYTHONPATH=src python benchmarks/fine_covid.py STUDY_OUT [--covid DIR]

Writes ``STUDY_OUT/fine-covid.csv`` (one row per run and score) and prints a Markdown table:
per observation and method, the mean over seeds of ρ between the fine score (and the positive
probability) and the Brixia global score (0-18), the geographic extent (0-8) and opacity (0-6).
A model trained on a synthetic phantom is not expected to transfer; the numbers are what they
are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fine_study import DEMO, specs  # noqa: E402
from predict_covid import COVID, SCORES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from scipy.stats import spearmanr

    from finegrain.experiment.plan import plan_runs
    from finegrain.experiment.selection import select_runs
    from finegrain.predict import Predictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--covid", type=Path, default=COVID)
    args = parser.parse_args(argv)
    meta = pd.read_csv(args.covid / "images.csv")
    selections, _ = select_runs(plan_runs([s for b in specs() for s in b], args.out / "runs", DEMO))
    images = None
    rows = []
    for sel in selections:
        if sel.iteration is None:
            continue
        predictor = Predictor.from_checkpoint(sel.run.checkpoint_path(sel.iteration))
        if images is None:  # every run has the same preprocessing (64 px)
            images = np.stack([predictor.read(args.covid / p) for p in meta["image"]])
        scores = predictor.scores(images)
        for column, name in SCORES.items():
            known = meta[column].notna().to_numpy()
            for score in ("fine_score", "score"):
                rho = spearmanr(scores[score][known], meta[column][known]).statistic
                rows.append(
                    {
                        "observation": sel.spec.observation,
                        "method": sel.spec.method,
                        "seed": sel.spec.seed,
                        "score": score,
                        "severity": name,
                        "n": int(known.sum()),
                        "rho": float(rho),
                    }
                )
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "fine-covid.csv", index=False)
    mean = table.groupby(["observation", "method", "score", "severity"], sort=False)["rho"]
    summary = mean.agg(["mean", "min", "max", "count"]).reset_index()
    print("| observation | method | score | " + " | ".join(SCORES.values()) + " |")
    print("|---|---|---|" + "---|" * len(SCORES))
    for (obs, method, score), part in summary.groupby(
        ["observation", "method", "score"], sort=False
    ):
        cells = [
            f"{r['mean']:+.2f} ({r['min']:+.2f} to {r['max']:+.2f}, {int(r['count'])} seeds)"
            for _, r in part.set_index("severity").loc[list(SCORES.values())].iterrows()
        ]
        print(f"| {obs} | {method} | {score} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
