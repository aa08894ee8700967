"""Does PU-RM differ from U-Ones in calibration? (docs/study.md, section 8: the rule was committed
before any of its numbers.) Reads section 7's finished runs; trains nothing, writes nothing
into them.

    PYTHONPATH=src python benchmarks/calibration_study.py STUDY7 --out OUT

writes ``OUT/calibration-study.md`` and ``OUT/calibration-study.csv`` (one row per observation
and method: ECE of the positive probability, 15 equal-mass bins, with its bootstrap CI; Δ ECE
against U-Ones with the hierarchical CI and the yes / no / worse of the rule; Brier and its Δ;
equal-width ECE; ECE and Brier after temperature scaling fitted on validation; for a method
with a fine score of its own, the calibration of P(typical | positive) among the mined
positives), ``OUT/calibration-tiers.csv`` (the tier reading, five seeds' counts summed) and
``OUT/reliability-OBS.png`` (reliability diagrams, each method's seeds pooled).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from continuum_study import OBSERVATIONS, PRESET, REFERENCE, specs  # noqa: E402
from finegrain.calibration import (  # noqa: E402
    BRIER,
    ECE,
    N_BINS,
    brier_score,
    calibration_replicates,
    expected_calibration_error,
)
from finegrain.experiment.study import cpu_seconds, decide  # noqa: E402

TARGET = "pu-rm"
N_BOOT = 2000
SEED = 0
SENSITIVITY = 0.95


def hierarchical_delta(reps_a: np.ndarray, reps_b: np.ndarray, point_a, point_b, seed=SEED):
    """Mean over seeds of ``a_k − b_k`` and its hierarchical bootstrap 95% CI. ``reps_*`` are
    ``[seeds, n_boot]``: each seed's measure on the case resamples shared by every seed and both
    methods; the seeds are then resampled with replacement and their differences averaged
    (:func:`finegrain.experiment.aggregate.paired_difference_ci`'s procedure)."""
    k, n_boot = reps_a.shape
    diffs = reps_a - reps_b
    picks = np.random.default_rng([seed, 1]).integers(0, k, size=(n_boot, k))
    reps = diffs[picks, np.arange(n_boot)[:, None]].mean(axis=1)
    low, high = np.nanquantile(reps, [0.025, 0.975])
    return float(np.mean(np.asarray(point_a) - np.asarray(point_b))), float(low), float(high)


def _known(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[pd.to_numeric(frame["label"], errors="coerce").isin([0, 1])]


def analyse(study: Path, out: Path, n_boot: int = N_BOOT) -> pd.DataFrame:
    from finegrain.data.phantom import read_truth
    from finegrain.experiment.aggregate import selected_predictions
    from finegrain.experiment.localisation import phantom_of_index
    from finegrain.experiment.plan import plan_runs
    from finegrain.experiment.presets import get_preset
    from finegrain.experiment.selection import select_runs
    from finegrain.experiment.truth import case_truth
    from finegrain.metrics import bootstrap_indices
    from finegrain.predict.tiers import (
        TRUTH_ROWS,
        fit_reading,
        mined_class,
        tier_table,
        tiers,
    )
    from finegrain.train.methods import get_method

    preset = get_preset(PRESET)
    selections, _ = select_runs(plan_runs([s for b in specs() for s in b], study / "runs", preset))
    truth = read_truth(phantom_of_index(study / "data" / "index.csv"))
    rows, tier_rows, pooled = [], [], {}
    for obs in OBSERVATIONS:
        by_method: dict[str, list] = {}
        for sel in sorted(selections, key=lambda s: s.spec.seed):
            if sel.spec.observation == obs:
                by_method.setdefault(sel.spec.method, []).append(sel)
        if REFERENCE not in by_method:
            continue
        # the cases: the test images labelled positive or negative, the same for every run
        cases = _known(selected_predictions(by_method[REFERENCE][0], "test")).set_index("image_id")
        ids = cases.index
        y = cases["label"].astype(int).to_numpy()
        indices = bootstrap_indices(y, n_boot, seed=SEED)  # stratified by the coarse label
        test_all = selected_predictions(by_method[REFERENCE][0], "test")["image_id"]
        image_truth = case_truth(truth, test_all, obs)["image_truth"].to_numpy()
        image_truth = pd.Series(image_truth, index=test_all.to_numpy())
        per_method = {}
        for method, sels in by_method.items():
            own_fine = get_method(method).own_fine_score
            runs = []
            for sel in sels:
                test = selected_predictions(sel, "test").set_index("image_id")
                val = selected_predictions(sel, "validate")
                p = test.loc[ids, "score"].to_numpy(dtype=float)
                # temperature scaling and the thresholds fitted after it, on validation
                reading = fit_reading(
                    val["label"].to_numpy(dtype=float),
                    val["subcategory"].fillna("").astype(str).tolist(),
                    val["score"].to_numpy(dtype=float),
                    fine_scores=val["fine_score"].to_numpy(dtype=float) if own_fine else None,
                    calibration="temperature",
                    sensitivity=SENSITIVITY,
                    iteration=sel.iteration,
                )
                t = reading.recalibration
                p_ts = t.apply(p)
                run = {
                    "seed": sel.spec.seed,
                    "iteration": sel.iteration,
                    "p": p,
                    "p_ts": p_ts,
                    "temperature": t.temperature,
                    "ece": expected_calibration_error(y, p),
                    "ece_uniform": expected_calibration_error(y, p, strategy="uniform"),
                    "brier": brier_score(y, p),
                    "ece_ts": expected_calibration_error(y, p_ts),
                    "brier_ts": brier_score(y, p_ts),
                    "reps_ece": calibration_replicates(y, p, indices, measure=ECE),
                    "reps_brier": calibration_replicates(y, p, indices, measure=BRIER),
                    "reps_ece_ts": calibration_replicates(y, p_ts, indices, measure=ECE),
                }
                if own_fine:  # P(typical | positive) among the mined positives, its own
                    pos = test[
                        (test["label"] == 1) & test["subcategory"].isin(["atypical", "typical"])
                    ]
                    typ = (pos["subcategory"] == "typical").astype(int).to_numpy()
                    f = pos["fine_score"].to_numpy(dtype=float)
                    run["fine_ece"] = expected_calibration_error(typ, f)
                    run["fine_brier"] = brier_score(typ, f)
                    run["fine_n"] = f"{int((typ == 0).sum())} / {int(typ.sum())}"
                # the tier reading on all test images the run scored
                full = selected_predictions(sel, "test")
                got = tiers(
                    t.apply(full["score"].to_numpy(dtype=float)),
                    reading.thresholds,
                    full["fine_score"].to_numpy(dtype=float) if own_fine else None,
                )
                mined = mined_class(
                    full["label"].to_numpy(dtype=float),
                    full["subcategory"].fillna("").astype(str).tolist(),
                )
                run["tiers_mined"] = tier_table(mined, got)
                run["tiers_truth"] = tier_table(
                    image_truth.loc[full["image_id"]].to_numpy(), got, TRUTH_ROWS
                )
                runs.append(run)
            per_method[method] = runs
            pooled[(obs, method)] = (
                np.tile(y, len(runs)),
                np.concatenate([r["p"] for r in runs]),
                np.concatenate([r["p_ts"] for r in runs]),
            )
            for ref, name in (("tiers_mined", "mined label"), ("tiers_truth", "image truth")):
                summed = sum(r[ref][["negative", "atypical positive", "typical positive"]]
                             for r in runs)  # fmt: skip
                summed["n"] = summed.sum(axis=1)
                right = np.diag(summed.iloc[:, :3].to_numpy())
                summed["share_right"] = right / summed["n"].replace(0, np.nan).to_numpy()
                for row, values in summed.iterrows():
                    tier_rows.append(
                        {"observation": obs, "method": method, "against": name, "row": row,
                         **values.to_dict()}
                    )  # fmt: skip
        reference = {r["seed"]: r for r in per_method[REFERENCE]}
        for method, runs in per_method.items():
            row = {
                "observation": obs,
                "method": method,
                "seeds": len(runs),
                "cases": len(y),
                "positives": int(y.sum()),
                "iterations": " ".join(str(r["iteration"]) for r in runs),
                "temperature": float(np.mean([r["temperature"] for r in runs])),
            }
            for key in ("ece", "ece_uniform", "brier", "ece_ts", "brier_ts"):
                row[key] = float(np.mean([r[key] for r in runs]))
                row[f"{key}_seeds"] = " ".join(f"{r[key]:.4f}" for r in runs)
            # each run's ECE with its own 95% percentile bootstrap CI
            row["ece_ci_seeds"] = " ".join(
                "[{:.4f}, {:.4f}]".format(*np.quantile(r["reps_ece"], [0.025, 0.975])) for r in runs
            )
            if "fine_ece" in runs[0]:
                row["fine_ece"] = float(np.mean([r["fine_ece"] for r in runs]))
                row["fine_brier"] = float(np.mean([r["fine_brier"] for r in runs]))
                row["fine_n"] = runs[0]["fine_n"]
            paired = [r for r in runs if r["seed"] in reference]
            row["paired_seeds"] = len(paired)
            if method != REFERENCE and paired:
                refs = [reference[r["seed"]] for r in paired]
                for key, reps in (("ece", "reps_ece"), ("brier", "reps_brier"),
                                  ("ece_ts", "reps_ece_ts")):  # fmt: skip
                    d, lo, hi = hierarchical_delta(
                        np.stack([r[reps] for r in paired]),
                        np.stack([r[reps] for r in refs]),
                        [r[key] for r in paired],
                        [r[key] for r in refs],
                    )
                    row.update({f"d_{key}": d, f"d_{key}_lo": lo, f"d_{key}_hi": hi})
                    if key == "ece":
                        # worse calibration is a *higher* ECE: the rule's yes is a CI below 0
                        row["decide_ece"] = {"yes": "worse", "worse": "yes"}.get(
                            decide(lo, hi), decide(lo, hi)
                        )
            rows.append(row)
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "calibration-study.csv", index=False)
    tier_table_ = pd.DataFrame(tier_rows)
    tier_table_.to_csv(out / "calibration-tiers.csv", index=False)
    (out / "calibration-study.md").write_text(_markdown(table, tier_table_))
    _figures(pooled, out)
    return table


def _figures(pooled, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import CalibrationDisplay

    for obs in OBSERVATIONS:
        methods = [m for (o, m) in pooled if o == obs]
        if not methods:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
        for ax, which, title in ((axes[0], 1, "model's own"), (axes[1], 2, "temperature-scaled")):
            for method in methods:
                y, *probabilities = pooled[(obs, method)]
                CalibrationDisplay.from_predictions(
                    y, probabilities[which - 1], n_bins=N_BINS, strategy="quantile", ax=ax,
                    name=method, linewidth=2.5 if method in (REFERENCE, TARGET) else 1,
                    alpha=1 if method in (REFERENCE, TARGET) else 0.5,
                )  # fmt: skip
            ax.set_title(
                f"{obs}: {title}\n(test, seeds pooled, {N_BINS} equal-mass bins)", fontsize=10
            )
            ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        fig.savefig(out / f"reliability-{obs}.png", dpi=110)
        plt.close(fig)


def _f(x, sign: bool = False, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return (f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}").replace("-", "−")


def _delta(r, key: str, verdict: bool = False) -> str:
    if pd.isna(r.get(f"d_{key}", np.nan)):
        return ""
    text = f"{_f(r[f'd_{key}'], True)} [{_f(r[f'd_{key}_lo'], True)}, {_f(r[f'd_{key}_hi'], True)}]"
    return text + (f" **{r['decide_ece']}**" if verdict else "")


def _markdown(table: pd.DataFrame, tiers: pd.DataFrame) -> str:
    lines = []
    for obs, part in table.groupby("observation", sort=False):
        first = part.iloc[0]
        lines += [
            f"#### {obs} (test: {first['cases']} cases, {first['positives']} positive; "
            f"{N_BINS} equal-mass bins)",
            "",
            "| method | seeds | ECE | Δ ECE vs U-Ones [95% CI] | Brier | Δ Brier [95% CI] | "
            "ECE equal-width | T (mean) | ECE after T | Brier after T | Δ ECE after T [95% CI] "
            "| fine score: ECE / Brier (atypical / typical) |",
            "|---|---:|---:|---|---:|---|---:|---:|---:|---:|---|---|",
        ]
        for _, r in part.iterrows():
            fine = (
                f"{_f(r['fine_ece'])} / {_f(r['fine_brier'])} ({r['fine_n']})"
                if "fine_ece" in r and not pd.isna(r.get("fine_ece"))
                else ""
            )
            cells = [
                r["method"], str(int(r["seeds"])), _f(r["ece"]), _delta(r, "ece", True),
                _f(r["brier"]), _delta(r, "brier"), _f(r["ece_uniform"]),
                _f(r["temperature"], digits=3), _f(r["ece_ts"]), _f(r["brier_ts"]),
                _delta(r, "ece_ts"), fine,
            ]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("Per-seed ECE (seeds 5–9) with each run's 95% bootstrap CI:")
        lines.append("")
        for _, r in part[part["method"].isin([REFERENCE, TARGET])].iterrows():
            lines.append(f"- {r['method']}: {r['ece_seeds']}; CIs {r['ece_ci_seeds']}")
        lines.append("")
        lines.append(
            "Tier reading (thresholds fitted on validation after temperature scaling; "
            "share right per row, five seeds' counts summed):"
        )
        lines.append("")
        lines.append(
            "| method | against | row | → negative | → atypical | → typical | n | share right |"
        )
        lines.append("|---|---|---|---:|---:|---:|---:|---:|")
        for _, t in tiers[tiers["observation"] == obs].iterrows():
            lines.append(
                f"| {t['method']} | {t['against']} | {t['row']} | {int(t['negative'])} | "
                f"{int(t['atypical positive'])} | {int(t['typical positive'])} | {int(t['n'])} | "
                f"{_f(t['share_right'], digits=3)} |"
            )
        lines.append("")
    lines.append(
        "Δ: method − U-Ones, mean over the paired seeds; 95% CI hierarchical bootstrap (2,000 "
        "case resamples stratified by the coarse label, shared by every run, each run's bins "
        "re-derived; then the seeds). yes: CI below 0 (better calibrated); no: CI contains 0; "
        "worse: CI above 0."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("study", type=Path, help="section 7's output folder (read only)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n-boot", type=int, default=N_BOOT)
    args = parser.parse_args()
    if args.out.resolve().is_relative_to(args.study.resolve()):
        parser.error("--out must lie outside the study's folder (it is only read)")
    t0, c0 = time.perf_counter(), cpu_seconds()
    analyse(args.study, args.out, n_boot=args.n_boot)
    print((args.out / "calibration-study.md").read_text())
    print(f"analysis: {time.perf_counter() - t0:.0f} s wall, {cpu_seconds() - c0:.0f} s CPU")


if __name__ == "__main__":
    main()
