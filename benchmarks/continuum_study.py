"""The comparisons on the calibrated continuum phantom (docs/study.md, section 7: the decision
rules were committed before any of its runs). Resumable: the phantom, its index and cache and
every finished run are reused.

    PYTHONPATH=src python benchmarks/continuum_study.py OUT [--until HH:MM]
    PYTHONPATH=src python benchmarks/continuum_study.py OUT --analyse   # the pre-registered numbers

``--analyse`` writes ``OUT/continuum-study.md`` and ``OUT/continuum-study.csv``: per observation
the headroom first (the oracle against the mined labels, U-Ones against both), then each
method's test AUC^FG against the image truth and Spearman's ρ with the true severity (primary),
AUC^FG against the mined labels (secondary) and split by where the atypical label comes from
(a severity word, a change word), coarse AUC beside; and each method minus U-Ones with its
hierarchical paired bootstrap CI and the yes / no / worse of the rule.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.experiment.grid import RunSpec
from finegrain.experiment.study import cpu_seconds

OBSERVATIONS = ("Consolidation", "Edema")
#: (method, τ): the paper's four, τ fixed a priori at the paper's 0.3, then the fine-label ones
METHODS = (
    ("u-ones", None),
    ("pu-rm", 0.3),
    ("u-ignore", None),
    ("u-zeros", None),
    ("graded", None),
    ("ordinal", None),
    ("three-class", None),
)
REFERENCE = "u-ones"
#: Fresh seeds: the calibration trained U-Ones with seeds 0-2.
SEEDS = (5, 6, 7, 8, 9)
PRESET = "calibrated"


def specs() -> list[list[RunSpec]]:
    """The grid in blocks of one method, in the order trained."""
    return [
        [RunSpec(obs, method, tau, s) for s in SEEDS for obs in OBSERVATIONS]
        for method, tau in METHODS
    ]


def _matrix(selections, split: str, column: str) -> pd.DataFrame:
    """``[image_id x seed]`` of one variant's ``column`` at the chosen checkpoints."""
    from finegrain.experiment.aggregate import selected_predictions

    columns = {}
    for sel in sorted(selections, key=lambda s: s.spec.seed):
        frame = selected_predictions(sel, split)
        if frame is not None:
            columns[sel.spec.seed] = frame.set_index("image_id")[column]
    return pd.DataFrame(columns)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Midranks down the first axis (columns ranked separately)."""
    from scipy.stats import rankdata

    return rankdata(x, axis=0)


def _rho_columns(score: np.ndarray, severity: np.ndarray) -> np.ndarray:
    """Spearman's ρ of each column of ``score`` [cases, k] with ``severity`` [cases, k]."""
    a, b = _ranks(score), _ranks(severity)
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    return (a * b).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))


def paired_rho_ci(
    severity: np.ndarray, a: np.ndarray, b: np.ndarray, *, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean over seeds of ``ρ(a_k) - ρ(b_k)`` with the true ``severity`` and its hierarchical
    bootstrap 95% CI: each replicate resamples the cases (one resample for every seed and both
    methods: the test set is shared), then the seeds, as
    :func:`finegrain.experiment.aggregate.paired_difference_ci` does for AUC^FG."""
    severity = np.asarray(severity, dtype=float)
    k = a.shape[1]
    tiled = np.repeat(severity[:, None], k, axis=1)
    per_seed = _rho_columns(a, tiled) - _rho_columns(b, tiled)
    rng = np.random.default_rng([seed, 2])
    diffs = np.empty((n_boot, k))
    for r in range(n_boot):
        pick = rng.integers(0, len(severity), len(severity))
        diffs[r] = _rho_columns(a[pick], tiled[pick]) - _rho_columns(b[pick], tiled[pick])
    seeds = np.random.default_rng([seed, 3]).integers(0, k, size=(n_boot, k))
    reps = diffs[np.arange(n_boot)[:, None], seeds].mean(axis=1)
    low, high = np.nanquantile(reps, [0.025, 0.975])
    return float(per_seed.mean()), float(low), float(high)


def analyse(out: Path, split: str = "test", n_boot: int = 2000) -> pd.DataFrame:
    """The pre-registered numbers (docs/study.md, section 7) from the finished runs."""
    from finegrain.data.index import read_index
    from finegrain.data.phantom import read_truth
    from finegrain.experiment.aggregate import paired_difference_ci, selected_predictions
    from finegrain.experiment.localisation import phantom_of_index
    from finegrain.experiment.plan import plan_runs
    from finegrain.experiment.presets import get_preset
    from finegrain.experiment.selection import select_runs
    from finegrain.experiment.study import decide
    from finegrain.experiment.truth import case_truth
    from finegrain.metrics import auc, auc_fg_by_source
    from finegrain.observations import cue_column

    preset = get_preset(PRESET)
    selections, _ = select_runs(plan_runs([s for b in specs() for s in b], out / "runs", preset))
    index_path = out / "data" / "index.csv"
    truth = read_truth(phantom_of_index(index_path))
    index = read_index(index_path).set_index("image_id")
    rows = []
    for obs in OBSERVATIONS:
        by_method: dict[str, list] = {}
        for sel in selections:
            if sel.spec.observation == obs:
                by_method.setdefault(sel.spec.method, []).append(sel)
        reference = by_method.get(REFERENCE, [])
        if not reference:
            continue
        cases = selected_predictions(reference[0], split).set_index("image_id")
        cases = cases[["label", "subcategory"]]
        known = cases["label"].isin([0, 1])
        positive = cases[cases["label"] == 1]
        sub = positive["subcategory"]
        kind = case_truth(truth, positive.index, obs)
        kind.index = positive.index
        source = index.loc[positive.index, cue_column(obs)].astype("string").fillna("")
        drawn = kind["image_truth"].isin(["slight", "significant"])
        groups = {
            "mined": (sub.isin(["atypical", "typical"]), (sub == "typical")),
            "truth": (drawn, kind["image_truth"] == "significant"),
        }
        oracle = {"observation": obs, "method": "oracle", "seeds": 0}
        for name, (keep, y) in groups.items():
            oracle[f"{name}_fine"] = auc(y[keep].astype(int), kind["severity"][keep])
            oracle[f"n_{name}"] = f"{int((~y[keep]).sum())} / {int(y[keep].sum())}"
        mined = groups["mined"][0]
        by_source = auc_fg_by_source(
            sub[mined].to_numpy(), source[mined].to_numpy(), kind["severity"][mined].to_numpy()
        )
        oracle.update({f"mined_{k}": v for k, v in by_source.items()})
        rows.append(oracle)
        ref = {c: _matrix(reference, split, c) for c in ("score", "fine_score")}
        for method, sels in by_method.items():
            mats = {c: _matrix(sels, split, c) for c in ("score", "fine_score")}
            seeds = [s for s in mats["score"].columns if s in ref["score"].columns]
            row = {"observation": obs, "method": method, "seeds": len(mats["score"].columns)}
            for name, (keep, y) in groups.items():
                ids = keep[keep].index
                m = mats["fine_score"].loc[ids].to_numpy()
                row[f"{name}_fine"] = float(
                    np.mean([auc(y[ids].astype(int), m[:, j]) for j in range(m.shape[1])])
                )
                if method != REFERENCE:
                    a = mats["fine_score"].loc[ids, seeds].to_numpy()
                    b = ref["fine_score"].loc[ids, seeds].to_numpy()
                    d, lo, hi = paired_difference_ci(
                        y[ids].astype(int).to_numpy(), a, b, n_boot=n_boot
                    )
                    row.update({f"d_{name}": d, f"d_{name}_lo": lo, f"d_{name}_hi": hi,
                                f"decide_{name}": decide(lo, hi)})  # fmt: skip
            ids = drawn[drawn].index
            m = mats["fine_score"].loc[ids].to_numpy()
            severity = kind.loc[ids, "severity"].to_numpy()
            row["rho"] = float(
                np.mean(_rho_columns(m, np.repeat(severity[:, None], m.shape[1], 1)))
            )
            if method != REFERENCE:
                a = mats["fine_score"].loc[ids, seeds].to_numpy()
                b = ref["fine_score"].loc[ids, seeds].to_numpy()
                d, lo, hi = paired_rho_ci(severity, a, b, n_boot=n_boot)
                row.update({"d_rho": d, "d_rho_lo": lo, "d_rho_hi": hi,
                            "decide_rho": decide(lo, hi)})  # fmt: skip
            ids = mined[mined].index
            m = mats["fine_score"].loc[ids].to_numpy()
            splits = [
                auc_fg_by_source(sub[ids].to_numpy(), source[ids].to_numpy(), m[:, j])
                for j in range(m.shape[1])
            ]
            for key in ("severity", "change"):
                row[f"mined_{key}"] = float(np.nanmean([s[key] for s in splits]))
                row[f"mined_n_{key}"] = splits[0][f"n_{key}"]
            ids = known[known].index
            y = (cases.loc[ids, "label"] == 1).astype(int)
            m = mats["score"].loc[ids].to_numpy()
            row["coarse_auc"] = float(np.mean([auc(y, m[:, j]) for j in range(m.shape[1])]))
            if method != REFERENCE:
                a = mats["score"].loc[ids, seeds].to_numpy()
                b = ref["score"].loc[ids, seeds].to_numpy()
                d, lo, hi = paired_difference_ci(y.to_numpy(), a, b, n_boot=n_boot)
                row.update({"d_coarse": d, "d_coarse_lo": lo, "d_coarse_hi": hi,
                            "decide_coarse": decide(lo, hi)})  # fmt: skip
            row["paired_seeds"] = len(seeds)
            rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(out / "continuum-study.csv", index=False)
    (out / "continuum-study.md").write_text(_markdown(table))
    return table


def _f(x, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return (f"{x:+.3f}" if sign else f"{x:.3f}").replace("-", "−")


def _delta(r, name: str) -> str:
    if f"d_{name}" not in r or pd.isna(r.get(f"d_{name}")):
        return ""
    return (
        f"{_f(r[f'd_{name}'], True)} [{_f(r[f'd_{name}_lo'], True)}, "
        f"{_f(r[f'd_{name}_hi'], True)}] **{r[f'decide_{name}']}**"
    )


def _markdown(table: pd.DataFrame) -> str:
    lines = []
    for obs, part in table.groupby("observation", sort=False):
        oracle = part[part["method"] == "oracle"].iloc[0]
        ref = part[part["method"] == REFERENCE].iloc[0]
        lines += [
            f"#### {obs} (test; image truth slight / significant {oracle['n_truth']}, mined "
            f"atypical / typical {oracle['n_mined']}, of the atypical from a severity word "
            f"{oracle['mined_n_severity']}, from a change word {oracle['mined_n_change']})",
            "",
            f"Headroom first: against the image truth U-Ones reaches {_f(ref['truth_fine'])}, "
            f"{_f(1 - ref['truth_fine'])} below 1; against the mined labels "
            f"{_f(ref['mined_fine'])}, {_f(oracle['mined_fine'] - ref['mined_fine'], True)} to "
            f"the oracle's {_f(oracle['mined_fine'])} (true severity as the score).",
            "",
            "| method | seeds | AUC^FG image truth | ρ true severity | AUC^FG mined | mined, "
            "severity-word atypical | mined, change-word atypical | coarse AUC | Δ image truth "
            "[95% CI] | Δ ρ [95% CI] | Δ mined [95% CI] | Δ coarse [95% CI] |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|",
            f"| oracle (true severity) | | {_f(oracle['truth_fine'])} | 1 | "
            f"{_f(oracle['mined_fine'])} | {_f(oracle['mined_severity'])} | "
            f"{_f(oracle['mined_change'])} | | | | | |",
        ]
        for _, r in part[part["method"] != "oracle"].iterrows():
            cells = [
                r["method"], str(int(r["seeds"])), _f(r["truth_fine"]), _f(r["rho"]),
                _f(r["mined_fine"]), _f(r["mined_severity"]), _f(r["mined_change"]),
                _f(r["coarse_auc"]),
                *(_delta(r, name) for name in ("truth", "rho", "mined", "coarse")),
            ]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(
        "Δ: method − U-Ones, mean over paired seeds, hierarchical bootstrap 95% CI (cases, then "
        "seeds). yes / no / worse: the CI above 0 / containing 0 / below 0. A method trained on "
        "fine labels is scored on its fine score, the paper's methods on P(positive)."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    from finegrain.experiment.plan import plan_runs
    from finegrain.experiment.presets import get_preset
    from finegrain.experiment.runner import DataSource, prepare_data, run_grid

    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--until", help="UTC HH:MM: start no block after it")
    parser.add_argument("--analyse", action="store_true")
    args = parser.parse_args()
    if args.analyse:
        t0, c0 = time.perf_counter(), cpu_seconds()
        analyse(args.out)
        print((args.out / "continuum-study.md").read_text())
        print(f"analysis: {time.perf_counter() - t0:.0f} s wall, {cpu_seconds() - c0:.0f} s CPU")
        return
    preset = get_preset(PRESET)
    t0, c0 = time.perf_counter(), cpu_seconds()
    data = prepare_data(DataSource(phantom=True), args.out, preset, progress=False)
    print(
        f"data ready: {time.perf_counter() - t0:.0f} s wall, {cpu_seconds() - c0:.0f} s CPU",
        flush=True,
    )
    for block in specs():
        if args.until and time.strftime("%H:%M", time.gmtime()) >= args.until:
            print(f"stopped at {args.until} UTC before {block[0].method}", flush=True)
            break
        b0, bc0 = time.perf_counter(), cpu_seconds()
        planned = plan_runs(block, args.out / "runs", preset, data)
        outcome = run_grid(planned, threads=preset.threads, jobs=preset.jobs, progress=False)
        print(
            f"{block[0].variant}: trained {len(outcome.trained)}, skipped "
            f"{len(outcome.skipped)}; {time.perf_counter() - b0:.0f} s wall, "
            f"{cpu_seconds() - bc0:.0f} s CPU",
            flush=True,
        )


if __name__ == "__main__":
    main()
