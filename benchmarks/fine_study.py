"""The pre-registered comparison of the methods trained on fine labels with U-Ones on the
calibrated phantom (docs/study.md, section 3). Resumable: the phantom, its index and cache
and every finished run are reused.

    PYTHONPATH=src python benchmarks/fine_study.py OUT [--until HH:MM] [--data-only]
    PYTHONPATH=src python benchmarks/fine_study.py OUT --analyse   # the pre-registered numbers

``--analyse`` writes ``OUT/fine-study.md`` and ``OUT/fine-study.csv``: per observation the
oracle, each method's test AUC^FG (fine score and positive probability) against mined labels,
against image truth and coarse AUC (mean over seeds), and Δ vs U-Ones with the hierarchical
paired bootstrap CI (:func:`finegrain.experiment.aggregate.paired_difference_ci`).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.experiment.grid import RunSpec
from finegrain.experiment.plan import plan_runs
from finegrain.experiment.presets import DEMO_V03 as DEMO  # the demo of sections 1-5
from finegrain.experiment.runner import DataSource, prepare_data, run_grid
from finegrain.experiment.study import cpu_seconds

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


def _matrix(selections, split: str, column: str) -> pd.DataFrame:
    """``[image_id x seed]`` of one variant's ``column`` at the chosen checkpoints."""
    from finegrain.experiment.aggregate import selected_predictions

    columns = {}
    for sel in sorted(selections, key=lambda s: s.spec.seed):
        frame = selected_predictions(sel, split)
        if frame is not None:
            columns[sel.spec.seed] = frame.set_index("image_id")[column]
    return pd.DataFrame(columns)


def analyse(out: Path, split: str = "test", n_boot: int = 2000) -> pd.DataFrame:
    """The pre-registered numbers (docs/study.md, section 3) from the finished runs."""
    from finegrain.data.phantom import read_truth
    from finegrain.experiment.aggregate import paired_difference_ci, selected_predictions
    from finegrain.experiment.localisation import phantom_of_index
    from finegrain.experiment.plan import plan_runs
    from finegrain.experiment.selection import select_runs
    from finegrain.experiment.study import decide
    from finegrain.experiment.truth import case_truth
    from finegrain.metrics import auc

    selections, _ = select_runs(plan_runs([s for b in specs() for s in b], out / "runs", DEMO))
    truth = read_truth(phantom_of_index(out / "data" / "index.csv"))
    rows = []
    for obs in OBSERVATIONS:
        by_method: dict[str, list] = {}
        for sel in selections:
            if sel.spec.observation == obs:
                by_method.setdefault(sel.spec.method, []).append(sel)
        reference = by_method.get("u-ones", [])
        if not reference:
            continue
        cases = selected_predictions(reference[0], split).set_index("image_id")
        cases = cases[["label", "subcategory"]]
        known = cases["label"].isin([0, 1])
        positive = cases[cases["label"] == 1]
        sub = positive["subcategory"]
        kind = case_truth(truth, positive.index, obs)
        kind.index = positive.index
        groups = {
            "mined": (sub.isin(["atypical", "typical"]), (sub == "typical")),
            "truth": (
                kind["image_truth"].isin(["slight", "significant"]),
                kind["image_truth"] == "significant",
            ),
        }
        oracle = {"observation": obs, "method": "oracle", "seeds": 0}
        for name, (keep, y) in groups.items():
            oracle[f"{name}_fine"] = auc(y[keep].astype(int), kind["severity"][keep])
            oracle[f"n_{name}"] = f"{int((~y[keep]).sum())} / {int(y[keep].sum())}"
        rows.append(oracle)
        ref = {c: _matrix(reference, split, c) for c in ("score", "fine_score")}
        for method, sels in by_method.items():
            mats = {c: _matrix(sels, split, c) for c in ("score", "fine_score")}
            seeds = [s for s in mats["score"].columns if s in ref["score"].columns]
            row = {"observation": obs, "method": method, "seeds": len(mats["score"].columns)}
            for name, (keep, y) in groups.items():
                ids = keep[keep].index
                for col, tag in (("fine_score", "fine"), ("score", "prob")):
                    m = mats[col].loc[ids].to_numpy()
                    row[f"{name}_{tag}"] = float(
                        np.mean([auc(y[ids].astype(int), m[:, j]) for j in range(m.shape[1])])
                    )
                if method != "u-ones":
                    a = mats["fine_score"].loc[ids, seeds].to_numpy()
                    b = ref["fine_score"].loc[ids, seeds].to_numpy()
                    d, lo, hi = paired_difference_ci(y[ids].astype(int).to_numpy(), a, b,
                                                     n_boot=n_boot)  # fmt: skip
                    row.update({f"d_{name}": d, f"d_{name}_lo": lo, f"d_{name}_hi": hi,
                                f"decide_{name}": decide(lo, hi)})  # fmt: skip
            ids = known[known].index
            y = (cases.loc[ids, "label"] == 1).astype(int)
            m = mats["score"].loc[ids].to_numpy()
            row["coarse_auc"] = float(np.mean([auc(y, m[:, j]) for j in range(m.shape[1])]))
            if method != "u-ones":
                a = mats["score"].loc[ids, seeds].to_numpy()
                b = ref["score"].loc[ids, seeds].to_numpy()
                d, lo, hi = paired_difference_ci(y.to_numpy(), a, b, n_boot=n_boot)
                row.update({"d_coarse": d, "d_coarse_lo": lo, "d_coarse_hi": hi,
                            "decide_coarse": decide(lo, hi)})  # fmt: skip
            row["paired_seeds"] = len(seeds)
            rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(out / "fine-study.csv", index=False)
    (out / "fine-study.md").write_text(_markdown(table))
    return table


def _f(x: float, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return (f"{x:+.3f}" if sign else f"{x:.3f}").replace("-", "−")


def _markdown(table: pd.DataFrame) -> str:
    lines = []
    for obs, part in table.groupby("observation", sort=False):
        oracle = part[part["method"] == "oracle"].iloc[0]
        ref = part[part["method"] == "u-ones"].iloc[0]
        lines += [
            f"#### {obs} (test; mined atypical / typical {oracle['n_mined']}, image truth "
            f"slight / significant {oracle['n_truth']})",
            "",
            "| method | seeds | AUC^FG mined (fine score) | mined (P+) | image truth (fine score) "
            "| image truth (P+) | coarse AUC | Δ mined [95% CI] | Δ image truth [95% CI] "
            "| Δ coarse AUC [95% CI] | goal |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|",
            f"| oracle (true severity) | | {_f(oracle['mined_fine'])} | | "
            f"{_f(oracle['truth_fine'])} | | | | | | |",
        ]
        for _, r in part[part["method"] != "oracle"].iterrows():
            cells = [r["method"], str(int(r["seeds"])), _f(r["mined_fine"]), _f(r["mined_prob"]),
                     _f(r["truth_fine"]), _f(r["truth_prob"]), _f(r["coarse_auc"])]  # fmt: skip
            if r["method"] == "u-ones":
                cells += ["", "", "", ""]
            else:
                for name in ("mined", "truth", "coarse"):
                    cells.append(
                        f"{_f(r[f'd_{name}'], True)} [{_f(r[f'd_{name}_lo'], True)}, "
                        f"{_f(r[f'd_{name}_hi'], True)}] {r[f'decide_{name}']}"
                    )
                half = [(oracle[f"{n}_fine"] - ref[f"{n}_fine"]) / 2 for n in ("mined", "truth")]
                goal = (r["d_mined"] >= half[0] and r["d_truth"] >= half[1]
                        and r["d_coarse"] >= -0.01)  # fmt: skip
                cells.append("reached" if goal else "not reached")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(
        "Goal (per observation here; the pre-registered goal needs both observations): Δ "
        "AUC^FG ≥ half of U-Ones' gap to the oracle against mined labels and image truth, Δ "
        "coarse AUC ≥ −0.01. yes/no/worse: the 95% CI above 0 / contains 0 / below 0."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--until", help="UTC HH:MM: start no block after it")
    parser.add_argument("--data-only", action="store_true")
    parser.add_argument("--analyse", action="store_true")
    args = parser.parse_args()
    if args.analyse:
        t0, c0 = time.perf_counter(), cpu_seconds()
        analyse(args.out)
        print((args.out / "fine-study.md").read_text())
        print(f"analysis: {time.perf_counter() - t0:.0f} s wall, {cpu_seconds() - c0:.0f} s CPU")
        return
    t0, c0 = time.perf_counter(), cpu_seconds()
    data = prepare_data(DataSource(phantom=True), args.out, DEMO, progress=False)
    print(
        f"data ready: {time.perf_counter() - t0:.0f} s wall, {cpu_seconds() - c0:.0f} s CPU",
        flush=True,
    )
    if args.data_only:
        return
    for block in specs():
        if args.until and time.strftime("%H:%M", time.gmtime()) >= args.until:
            print(f"stopped at {args.until} UTC before {block[0].method}", flush=True)
            break
        b0, bc0 = time.perf_counter(), cpu_seconds()
        runs = plan_runs(block, args.out / "runs", DEMO, data)
        outcome = run_grid(runs, threads=DEMO.threads, jobs=DEMO.jobs, progress=False)
        print(
            f"{block[0].variant}: trained {len(outcome.trained)}, skipped "
            f"{len(outcome.skipped)}; {time.perf_counter() - b0:.0f} s wall, "
            f"{cpu_seconds() - bc0:.0f} s CPU",
            flush=True,
        )


if __name__ == "__main__":
    main()
