"""From run directories to numbers: the long results table, mean ± std over seeds, and the
test-split statistics beyond the paper (bootstrap CI, paired DeLong test against U-Ones).

Choices (documented in docs/benchmark.md):

* **Selection** — each run's checkpoint is chosen on validation AUC^FG (ties -> earliest);
  the test split is read at that same iteration.
* **Mean ± std** — over seeds, sample standard deviation (``ddof=1``); one seed shows no std.
* **Bootstrap CI** — percentile 95% interval of the *seed-mean* test AUC^FG: test cases are
  resampled with replacement and the same resample is applied to every seed's scores, so the
  interval reflects case sampling around the number in the table.
* **DeLong p** — paired DeLong test of AUC^FG on the test split between a method and U-Ones, on
  *seed-averaged* scores (each test case's score averaged over the seeds' chosen checkpoints).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from finegrain.experiment.grid import REFERENCE_METHOD, RunSpec
from finegrain.experiment.selection import METRIC_FIELDS, RunSelection
from finegrain.observations import ATYPICAL, POSITIVE, TYPICAL

RESULT_COLUMNS: tuple[str, ...] = (
    "observation",
    "method",
    "tau",
    "seed",
    "iteration",
    "split",
    *METRIC_FIELDS,
    "selected",
)
KEY: list[str] = ["observation", "method", "tau"]


def results_table(selections: Sequence[RunSelection]) -> pd.DataFrame:
    """One row per run × checkpoint × split, with ``selected`` marking the chosen checkpoint."""
    frames = []
    for sel in selections:
        m = sel.metrics.copy()
        m["observation"] = sel.spec.observation
        m["method"] = sel.spec.method
        m["tau"] = sel.spec.tau
        m["seed"] = sel.spec.seed
        m["selected"] = m["iteration"] == sel.iteration if sel.iteration is not None else False
        frames.append(m[list(RESULT_COLUMNS)])
    if not frames:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(
        ["observation", "method", "tau", "seed", "split", "iteration"], kind="stable"
    ).reset_index(drop=True)


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds of AUC^FG and AUC at the selected checkpoints.

    One row per (observation, method, tau, split) with ``auc_fg_mean``, ``auc_fg_std``,
    ``auc_mean``, ``auc_std`` and ``seeds`` (number of seeds with a defined AUC^FG).
    """
    chosen = results[results["selected"].astype(bool)].copy()
    chosen["tau_key"] = chosen["tau"].fillna(-1.0)
    rows = []
    for (obs, method, tau_key, split), g in chosen.groupby(
        ["observation", "method", "tau_key", "split"], sort=True
    ):
        fg = g["auc_fg"].astype(float).dropna()
        a = g["auc"].astype(float).dropna()
        rows.append(
            {
                "observation": obs,
                "method": method,
                "tau": None if tau_key < 0 else float(tau_key),
                "split": split,
                "auc_fg_mean": fg.mean() if len(fg) else math.nan,
                "auc_fg_std": fg.std(ddof=1) if len(fg) > 1 else math.nan,
                "auc_mean": a.mean() if len(a) else math.nan,
                "auc_std": a.std(ddof=1) if len(a) > 1 else math.nan,
                "seeds": len(fg),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "observation",
            "method",
            "tau",
            "split",
            "auc_fg_mean",
            "auc_fg_std",
            "auc_mean",
            "auc_std",
            "seeds",
        ],
    )


def selected_predictions(selection: RunSelection, split: str) -> pd.DataFrame | None:
    """The run's predictions of ``split`` at the chosen iteration (``None`` if unavailable)."""
    if selection.iteration is None:
        return None
    frame = selection.run.read_predictions(split, selection.iteration)
    if frame is None:
        return None
    return frame[["image_id", "label", "subcategory", "score"]].reset_index(drop=True)


def fg_cases(frame: pd.DataFrame) -> pd.DataFrame:
    """Positive cases with an atypical/typical subcategory: the cases AUC^FG is computed on."""
    sub = frame["subcategory"].astype("string").str.strip().str.lower()
    keep = (pd.to_numeric(frame["label"], errors="coerce") == POSITIVE) & sub.isin(
        [ATYPICAL, TYPICAL]
    )
    out = frame[keep.fillna(False).to_numpy(dtype=bool)].copy()
    out["subcategory"] = sub[keep.fillna(False).to_numpy(dtype=bool)].astype(str)
    return out


def seed_score_matrix(
    selections: Sequence[RunSelection], split: str
) -> tuple[pd.DataFrame, np.ndarray] | None:
    """Per-case labels and a ``[cases, seeds]`` score matrix for one variant's seeds.

    Only cases every seed scored are kept (they are the same split, so normally all).
    """
    cases: pd.DataFrame | None = None
    columns = []
    for sel in sorted(selections, key=lambda s: s.spec.seed):
        pred = selected_predictions(sel, split)
        if pred is None:
            continue
        pred = pred.drop_duplicates("image_id", keep="last").set_index("image_id")
        columns.append(pred["score"].rename(f"seed{sel.spec.seed}"))
        if cases is None:
            cases = pred[["label", "subcategory"]]
    if cases is None:
        return None
    wide = pd.concat([cases, *columns], axis=1, join="inner")
    scores = wide[[c.name for c in columns]].to_numpy(dtype=float)
    return wide[["label", "subcategory"]].reset_index(), scores


def _group(selections: Sequence[RunSelection]) -> dict[tuple, list[RunSelection]]:
    groups: dict[tuple, list[RunSelection]] = {}
    for sel in selections:
        key = (sel.spec.observation, sel.spec.method, sel.spec.tau)
        groups.setdefault(key, []).append(sel)
    return groups


def averaged_scores(selections: Sequence[RunSelection], split: str) -> pd.DataFrame | None:
    """Seed-averaged scores of one variant on ``split``: image_id, label, subcategory, score."""
    found = seed_score_matrix(selections, split)
    if found is None:
        return None
    cases, scores = found
    cases = cases.copy()
    cases["score"] = scores.mean(axis=1)
    return cases


def seed_mean_ci(
    typical: np.ndarray,
    scores: np.ndarray,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the seed-mean AUC^FG.

    ``typical`` is 0/1 per case (0 atypical, 1 typical), ``scores`` is ``[cases, seeds]``. Each
    replicate resamples the cases (stratified by subcategory, as
    :func:`finegrain.metrics.bootstrap_ci` does) and applies the same resample to every seed.
    With one seed this equals ``bootstrap_ci(auc_fg, typical, scores[:, 0])``.
    """
    from finegrain.metrics import auc_replicates, bootstrap_ci, bootstrap_indices

    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.shape[1] == 1:
        from finegrain.metrics import auc_fg

        return bootstrap_ci(auc_fg, typical, scores[:, 0], n_boot=n_boot, level=level, seed=seed)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 (exclusive), got {level}")
    idx = bootstrap_indices(typical, n_boot, seed=seed)
    reps = np.mean(
        [auc_replicates(typical, scores[:, j], idx) for j in range(scores.shape[1])], axis=0
    )
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(reps, [alpha, 1.0 - alpha])
    return float(low), float(high)


def split_statistics(
    selections: Sequence[RunSelection],
    *,
    split: str = "test",
    reference: str = REFERENCE_METHOD,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Bootstrap CI of the seed-mean AUC^FG and the paired DeLong p-value against ``reference``.

    One row per (observation, method, tau) with ``n_atypical``, ``n_typical``, ``ci_low``,
    ``ci_high``, ``delong_p`` (``NaN`` for the reference itself or when undefined) and ``note``
    (why a value is missing).
    """
    from finegrain.metrics import delong_test

    groups = _group(selections)
    matrices = {key: seed_score_matrix(sels, split) for key, sels in groups.items()}
    rows = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], -1.0 if k[2] is None else k[2])):
        obs, method, tau = key
        row = {
            "observation": obs,
            "method": method,
            "tau": tau,
            "n_atypical": 0,
            "n_typical": 0,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "delong_p": math.nan,
            "note": "",
        }
        rows.append(row)
        found = matrices[key]
        if found is None:
            row["note"] = f"no {split} predictions"
            continue
        cases, scores = found
        keep = fg_cases(cases).index.to_numpy()
        sub = (cases.loc[keep, "subcategory"] == TYPICAL).to_numpy(dtype=int)
        scores = scores[keep]
        row["n_atypical"] = int((sub == 0).sum())
        row["n_typical"] = int((sub == 1).sum())
        if row["n_atypical"] == 0 or row["n_typical"] == 0:
            row["note"] = f"{split} split lacks atypical or typical positives"
            continue

        try:
            row["ci_low"], row["ci_high"] = seed_mean_ci(
                sub, scores, n_boot=n_boot, level=level, seed=seed
            )
        except ValueError as exc:
            row["note"] = f"bootstrap CI undefined: {exc}"
        ref_key = (obs, reference, None)
        if method == reference or ref_key not in matrices or matrices[ref_key] is None:
            if method != reference:
                row["note"] = (row["note"] + f"; no {reference} run to compare").strip("; ")
            continue
        ref_cases, ref_scores = matrices[ref_key]
        a = pd.Series(scores.mean(axis=1), index=cases.loc[keep, "image_id"].to_numpy())
        b = pd.Series(ref_scores.mean(axis=1), index=ref_cases["image_id"].to_numpy())
        common = a.index.intersection(b.index)
        if len(common) < len(a):
            row["note"] = f"DeLong on {len(common)} of {len(a)} cases scored by both"
        y = pd.Series(sub, index=a.index).loc[common].to_numpy()
        if y.min() == y.max():
            continue
        result = delong_test(y, a.loc[common].to_numpy(), b.loc[common].to_numpy())
        row["delong_p"] = float(result.p_value)
    return pd.DataFrame(
        rows,
        columns=[
            "observation",
            "method",
            "tau",
            "n_atypical",
            "n_typical",
            "ci_low",
            "ci_high",
            "delong_p",
            "note",
        ],
    )


def spec_key(spec: RunSpec) -> tuple:
    return (spec.observation, spec.method, spec.tau)
