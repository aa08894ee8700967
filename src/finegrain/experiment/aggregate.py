"""From run directories to numbers: the long results table, mean ± std over seeds, and the
test-split statistics beyond the paper (bootstrap CI, paired DeLong test against U-Ones).

Every AUC^FG here ranks the score the method declares (:mod:`finegrain.scores`: the fine score,
which is the positive probability for the paper's methods); ``paired_difference`` also gives the
paper's AUC^FG of the positive probability beside it.

Choices (documented in docs/benchmark.md):

* **Selection** — each run's checkpoint is chosen on validation AUC^FG (ties -> earliest);
  the test split is read at that same iteration.
* **Mean ± std** — over seeds, sample standard deviation (``ddof=1``); one seed shows no std.
* **Bootstrap CI** — percentile 95% interval of the *seed-mean* test AUC^FG: test cases are
  resampled with replacement and the same resample is applied to every seed's scores, so the
  interval reflects case sampling around the number in the table.
* **DeLong p** — paired DeLong test of AUC^FG on the test split between a method and the
  grid's reference method (U-Ones in the paper's tables), on *seed-averaged* scores (each test case's score averaged over the seeds' chosen checkpoints).
* **Per-run CI** — each run's AUC^FG at its chosen checkpoint with a stratified percentile
  bootstrap CI over that split's cases (:func:`run_statistics`).
* **Paired difference** — method − reference (same seed, same data order, same cases): the mean
  over the paired seeds of the per-seed AUC^FG difference, with a hierarchical bootstrap CI
  (each replicate resamples the seeds with replacement, then the cases, stratified by
  subcategory, one case resample shared by every seed and both methods);
  see :func:`paired_difference`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from finegrain.errors import FinegrainError
from finegrain.experiment.grid import RunSpec, axes_of, settings_text
from finegrain.experiment.selection import (
    METRIC_FIELDS,
    TRAINING_FIELDS,
    RunSelection,
    missing_predictions,
)
from finegrain.observations import ATYPICAL, POSITIVE, TYPICAL
from finegrain.scores import RANKED, SCORE

#: A grid cell: a method and its τ (``None`` for a τ-free method).
Cell = tuple[str, float | None]

RESULT_COLUMNS: tuple[str, ...] = (
    "observation",
    "method",
    "tau",
    "seed",
    "iteration",
    "split",
    *METRIC_FIELDS,
    "selected",
    "variant",
    *TRAINING_FIELDS,
    "ece",
    "brier",
)
#: The calibration columns of the results table (:func:`checkpoint_calibration`).
CALIBRATION_FIELDS: tuple[str, ...] = ("ece", "brier")
#: A variant of the grid: its method, τ and the values of the grid's other axes (``variant``
#: spells them, e.g. ``u-ones-iterations600``).
KEY: list[str] = ["observation", "method", "tau", "variant"]
#: Class counts of an evaluation: atypical / typical positives (AUC^FG), positive / negative (AUC).
COUNT_FIELDS: tuple[str, ...] = ("n_atypical", "n_typical", "n_positive", "n_negative")
SUMMARY_COLUMNS: list[str] = [
    "observation",
    "method",
    "tau",
    "variant",
    "split",
    "auc_fg_mean",
    "auc_fg_std",
    "auc_fg_fine_mean",
    "auc_fg_fine_std",
    "auc_mean",
    "auc_std",
    "seeds",
    *COUNT_FIELDS,
]


def results_table(selections: Sequence[RunSelection]) -> pd.DataFrame:
    """One row per run × checkpoint × split, with ``selected`` marking the chosen checkpoint,
    ``variant`` naming the run's variant, the positive probability's ``ece`` and ``brier``
    (:func:`checkpoint_calibration`) and a column per extra axis of the grid (e.g.
    ``iterations``) at the end."""
    axes = axes_of([sel.spec for sel in selections])
    columns = [*RESULT_COLUMNS, *axes]
    frames = []
    for sel in selections:
        m = sel.metrics.copy()
        calibration = checkpoint_calibration(sel, m["split"].unique())
        if calibration.empty:
            m = m.assign(**dict.fromkeys(CALIBRATION_FIELDS, math.nan))
        else:
            m = m.merge(calibration, on=["split", "iteration"], how="left")
        m["observation"] = sel.spec.observation
        m["method"] = sel.spec.method
        m["tau"] = sel.spec.tau
        m["variant"] = sel.spec.variant
        for name in axes:
            m[name] = dict(sel.spec.settings).get(name)
        m["seed"] = sel.spec.seed
        m["selected"] = m["iteration"] == sel.iteration if sel.iteration is not None else False
        frames.append(m[columns])
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(
        ["observation", "method", "tau", "variant", "seed", "split", "iteration"], kind="stable"
    ).reset_index(drop=True)


def checkpoint_calibration(sel: RunSelection, splits: Sequence[str]) -> pd.DataFrame:
    """ECE (15 equal-mass bins) and Brier of the positive probability, positives against
    negatives, at every checkpoint of the run's predictions of ``splits`` (``split,
    iteration, ece, brier``; empty without predictions, NaN where a checkpoint has no case or
    its scores are not probabilities)."""
    from finegrain.calibration import brier_score, expected_calibration_error

    rows = []
    for split in splits:
        frame = sel.run.read_predictions(split)
        if frame is None:
            continue
        label = pd.to_numeric(frame["label"], errors="coerce")
        known = frame[label.isin([0, 1])]
        for iteration, group in known.groupby("iteration", sort=True):
            y = (pd.to_numeric(group["label"]) == POSITIVE).to_numpy(dtype=int)
            p = group["score"].to_numpy(dtype=float)
            ok = bool(len(p)) and np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1
            rows.append(
                {
                    "split": split,
                    "iteration": int(iteration),
                    "ece": expected_calibration_error(y, p) if ok else math.nan,
                    "brier": brier_score(y, p) if ok else math.nan,
                }
            )
    return pd.DataFrame(rows, columns=["split", "iteration", *CALIBRATION_FIELDS])


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds of AUC^FG and AUC at the selected checkpoints.

    One row per (observation, variant, split) with ``auc_fg_mean``, ``auc_fg_std`` (AUC^FG of
    the positive probability), ``auc_fg_fine_mean``, ``auc_fg_fine_std`` (of the method's own
    fine score),
    ``auc_mean``, ``auc_std``, ``seeds`` (number of seeds with a defined AUC^FG) and the class
    counts ``n_atypical``, ``n_typical``, ``n_positive``, ``n_negative`` of the split (``-1``
    when the seeds' evaluations disagree, which a shared split should never do).
    """
    chosen = results[results["selected"].astype(bool)].copy()
    if "variant" not in chosen.columns:  # a results table without extra axes (finegrain <= 0.2)
        chosen["variant"] = [
            RunSpec("", m, None if pd.isna(t) else float(t), 0).variant
            for m, t in zip(chosen["method"], chosen["tau"], strict=True)
        ]
    chosen["tau_key"] = chosen["tau"].fillna(-1.0)
    rows = []
    for (obs, method, tau_key, variant, split), g in chosen.groupby(
        ["observation", "method", "tau_key", "variant", "split"], sort=True
    ):
        fg = g["auc_fg"].astype(float).dropna()
        a = g["auc"].astype(float).dropna()
        # a run (or results table) from before the fine score: it is the positive probability
        fine = g["auc_fg"].astype(float)
        if "auc_fg_fine" in g.columns:
            fine = g["auc_fg_fine"].astype(float).fillna(fine)
        fine = fine.dropna()
        row = {
            "observation": obs,
            "method": method,
            "tau": None if tau_key < 0 else float(tau_key),
            "variant": variant,
            "split": split,
            "auc_fg_mean": fg.mean() if len(fg) else math.nan,
            "auc_fg_std": fg.std(ddof=1) if len(fg) > 1 else math.nan,
            "auc_fg_fine_mean": fine.mean() if len(fine) else math.nan,
            "auc_fg_fine_std": fine.std(ddof=1) if len(fine) > 1 else math.nan,
            "auc_mean": a.mean() if len(a) else math.nan,
            "auc_std": a.std(ddof=1) if len(a) > 1 else math.nan,
            "seeds": len(fg),
        }
        for column in COUNT_FIELDS:  # the same split for every seed: one count, or -1 if not
            values = (
                pd.to_numeric(g[column], errors="coerce").dropna().astype(int).unique()
                if column in g.columns
                else []
            )
            row[column] = int(values[0]) if len(values) == 1 else -1
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def selected_predictions(selection: RunSelection, split: str) -> pd.DataFrame | None:
    """The run's predictions of ``split`` at the chosen iteration (``None`` if unavailable):
    ``image_id, label, subcategory, score, fine_score``."""
    if selection.iteration is None:
        return None
    frame = selection.run.read_predictions(split, selection.iteration)
    if frame is None:
        return None
    return frame[["image_id", "label", "subcategory", "score", "fine_score"]].reset_index(drop=True)


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
    selections: Sequence[RunSelection], split: str, column: str = RANKED
) -> tuple[pd.DataFrame, np.ndarray] | None:
    """Per-case labels and a ``[cases, seeds]`` matrix of ``column`` (the score AUC^FG ranks,
    or the positive probability ``score``) for one variant's seeds.

    Only cases every seed scored are kept (they are the same split, so normally all).
    """
    found = _seed_columns(selections, split, (column,))
    return None if found is None else (found[0], found[1][column])


def _seed_columns(
    selections: Sequence[RunSelection], split: str, columns: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, np.ndarray]] | None:
    """:func:`seed_score_matrix` for several prediction columns, each run's predictions read
    once."""
    cases: pd.DataFrame | None = None
    parts: dict[str, list[pd.Series]] = {c: [] for c in columns}
    for sel in sorted(selections, key=lambda s: s.spec.seed):
        pred = selected_predictions(sel, split)
        if pred is None:
            continue
        pred = pred.drop_duplicates("image_id", keep="last").set_index("image_id")
        for column in columns:
            parts[column].append(pred[column].rename(f"{column}-seed{sel.spec.seed}"))
        if cases is None:
            cases = pred[["label", "subcategory"]]
    if cases is None:
        return None
    wide = pd.concat([cases, *(s for c in columns for s in parts[c])], axis=1, join="inner")
    matrices = {c: wide[[s.name for s in parts[c]]].to_numpy(dtype=float) for c in columns}
    return wide[["label", "subcategory"]].reset_index(), matrices


def variant_key(spec: RunSpec) -> tuple:
    """``(observation, method, tau, settings)``: the runs of one variant differ by seed only."""
    return (spec.observation, spec.method, spec.tau, spec.settings)


def _sort_key(key: tuple) -> tuple:
    obs, method, tau, settings = key
    return (obs, method, -1.0 if tau is None else tau, repr(settings))


def _group(selections: Sequence[RunSelection]) -> dict[tuple, list[RunSelection]]:
    """Selections by :func:`variant_key`, sorted by it."""
    groups: dict[tuple, list[RunSelection]] = {}
    for sel in selections:
        groups.setdefault(variant_key(sel.spec), []).append(sel)
    return {k: groups[k] for k in sorted(groups, key=_sort_key)}


def _variant(key: tuple) -> str:
    obs, method, tau, settings = key
    return RunSpec(obs, method, tau, 0, settings).variant


def _reference_key(key: tuple, reference: Cell) -> tuple:
    """The variant of the ``reference`` cell that a variant is compared with: same observation
    and axes."""
    obs, _, _, settings = key
    return (obs, *reference, settings)


def averaged_scores(selections: Sequence[RunSelection], split: str) -> pd.DataFrame | None:
    """Seed-averaged scores of one variant on ``split``: image_id, label, subcategory, score
    (the positive probability) and fine_score (the method's fine score)."""
    found = _seed_columns(selections, split, (SCORE, RANKED))
    if found is None:
        return None
    cases, matrices = found
    cases = cases.copy()
    for column, matrix in matrices.items():
        cases[column] = matrix.mean(axis=1)
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
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.shape[1] == 1:
        return _single_ci(typical, scores[:, 0], n_boot=n_boot, level=level, seed=seed)
    if not 0.0 < level < 1.0:
        raise FinegrainError(f"level must be between 0 and 1 (exclusive), got {level}")
    reps = np.mean(
        [_replicates(typical, scores[:, j], n_boot, seed) for j in range(scores.shape[1])], axis=0
    )
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(reps, [alpha, 1.0 - alpha])
    return float(low), float(high)


# The report bootstraps the same (cases, scores) pair up to three times: a run's CI
# (run_statistics), its variant's seed-mean CI (seed_mean_ci) and every paired difference it
# takes part in (paired_difference_ci; the reference method in each of them). Each replicate
# array is a pure function of (typical, score, n_boot, seed), so it is computed once and kept
# (2,000 floats each); the resampled positions, an (n_boot, cases) array, only for the latest
# cases. Same resamples, same numbers as finegrain.metrics.bootstrap_ci / auc_replicates.
_REPLICATE_CACHE: dict[tuple, np.ndarray] = {}
_REPLICATE_CACHE_SIZE = 1024
_INDEX_CACHE: dict[tuple, np.ndarray] = {}
_BLOCK = 256


def _digest(array: np.ndarray) -> tuple[str, tuple[int, ...], str]:
    array = np.ascontiguousarray(array)
    return (
        hashlib.blake2b(array.tobytes(), digest_size=16).hexdigest(),
        array.shape,
        array.dtype.str,
    )


def _replicates(typical: np.ndarray, score: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """``auc_replicates(typical, score, bootstrap_indices(typical, n_boot, seed=seed))``, each
    distinct argument set computed once (read-only result)."""
    from finegrain.metrics import auc_replicates, bootstrap_indices

    typical = np.asarray(typical, dtype=int)
    score = np.asarray(score, dtype=float)
    cases = (_digest(typical), n_boot, seed)
    key = (cases, _digest(score))
    found = _REPLICATE_CACHE.get(key)
    if found is not None:
        return found
    idx = _INDEX_CACHE.get(cases)
    if idx is None:
        _INDEX_CACHE.clear()
        idx = _INDEX_CACHE[cases] = bootstrap_indices(typical, n_boot, seed=seed)
    # in blocks of rows: the same numbers, without (n_boot, cases)-sized temporaries
    reps = np.concatenate(
        [auc_replicates(typical, score, idx[r : r + _BLOCK]) for r in range(0, n_boot, _BLOCK)]
    )
    reps.flags.writeable = False
    if len(_REPLICATE_CACHE) >= _REPLICATE_CACHE_SIZE:
        _REPLICATE_CACHE.clear()
    _REPLICATE_CACHE[key] = reps
    return reps


def _single_ci(
    typical: np.ndarray, score: np.ndarray, *, n_boot: int, level: float, seed: int
) -> tuple[float, float]:
    """``bootstrap_ci(auc_fg, typical, score, ...)`` (stratified) from the cached replicates."""
    from finegrain.metrics import auc_fg

    if not 0.0 < level < 1.0:
        raise FinegrainError(f"level must be between 0 and 1 (exclusive), got {level}")
    if n_boot < 1:
        raise FinegrainError(f"n_boot must be at least 1, got {n_boot}")
    auc_fg(typical, score)  # validates, with the metric's own errors (an empty class, ...)
    reps = _replicates(typical, score, n_boot, seed)
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(reps, [alpha, 1.0 - alpha])
    return float(low), float(high)


def split_statistics(
    selections: Sequence[RunSelection],
    *,
    split: str = "test",
    reference: Cell,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Bootstrap CI of the seed-mean AUC^FG and the paired DeLong p-value against the
    ``reference`` cell (same observation and axes).

    One row per variant (observation, method, tau, variant) with ``n_atypical``, ``n_typical``,
    ``ci_low``,
    ``ci_high``, ``delong_p`` (``NaN`` for the reference itself or when undefined) and ``note``
    (why a value is missing).
    """
    from finegrain.metrics import delong_test

    groups = _group(selections)
    matrices = {key: seed_score_matrix(sels, split) for key, sels in groups.items()}
    rows = []
    for key in groups:
        obs, method, tau, _ = key
        row = {
            "observation": obs,
            "method": method,
            "tau": tau,
            "variant": _variant(key),
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
            row["note"] = missing_predictions(groups[key], split)
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
        ref_key = _reference_key(key, reference)
        if ref_key == key or ref_key not in matrices or matrices[ref_key] is None:
            if ref_key != key:
                row["note"] = (row["note"] + f"; no {reference[0]} run to compare").strip("; ")
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
            "variant",
            "n_atypical",
            "n_typical",
            "ci_low",
            "ci_high",
            "delong_p",
            "note",
        ],
    )


RUN_STAT_COLUMNS: list[str] = [
    "observation",
    "method",
    "tau",
    "variant",
    "seed",
    "split",
    "iteration",
    "auc_fg",
    "ci_low",
    "ci_high",
    "n_atypical",
    "n_typical",
]


def run_statistics(
    selections: Sequence[RunSelection],
    *,
    splits: Sequence[str] = ("validate", "test"),
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Each run's AUC^FG at its chosen checkpoint with a stratified percentile bootstrap CI.

    One row per run × split (splits without predictions are left out); the CI resamples that
    split's atypical and typical positives (:func:`finegrain.metrics.bootstrap_ci`).
    """
    from finegrain.metrics import auc_fg

    rows = []
    for sel in sorted(selections, key=lambda s: s.spec):
        for split in splits:
            pred = selected_predictions(sel, split)
            if pred is None:
                continue
            cases = fg_cases(pred)
            typical = (cases["subcategory"] == TYPICAL).to_numpy(dtype=int)
            score = cases[RANKED].to_numpy(dtype=float)
            row = {
                "observation": sel.spec.observation,
                "method": sel.spec.method,
                "tau": sel.spec.tau,
                "variant": sel.spec.variant,
                "seed": sel.spec.seed,
                "split": split,
                "iteration": sel.iteration,
                "auc_fg": math.nan,
                "ci_low": math.nan,
                "ci_high": math.nan,
                "n_atypical": int((typical == 0).sum()),
                "n_typical": int((typical == 1).sum()),
            }
            if row["n_atypical"] and row["n_typical"]:
                row["auc_fg"] = auc_fg(typical, score)
                row["ci_low"], row["ci_high"] = _single_ci(
                    typical, score, n_boot=n_boot, level=level, seed=seed
                )
            rows.append(row)
    return pd.DataFrame(rows, columns=RUN_STAT_COLUMNS)


def paired_matrices(
    method_runs: Sequence[RunSelection],
    reference_runs: Sequence[RunSelection],
    split: str,
    column: str = RANKED,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, list[int]] | None:
    """Scores of two variants on the same cases, paired by seed.

    Returns ``(cases, a, b, seeds)``: the AUC^FG cases (``image_id``, ``label``,
    ``subcategory``) scored by every paired run, and ``[cases, seeds]`` matrices of ``column``
    (the score AUC^FG ranks, or the positive probability ``score``) of the method (``a``) and
    the reference (``b``) over the seeds both have. ``None`` if no seed pairs.
    """
    by_seed_a = {s.spec.seed: s for s in method_runs}
    by_seed_b = {s.spec.seed: s for s in reference_runs}
    seeds = sorted(set(by_seed_a) & set(by_seed_b))
    if not seeds:
        return None
    found_a = seed_score_matrix([by_seed_a[k] for k in seeds], split, column)
    found_b = seed_score_matrix([by_seed_b[k] for k in seeds], split, column)
    if found_a is None or found_b is None:
        return None
    (cases_a, a), (cases_b, b) = found_a, found_b
    if a.shape[1] != len(seeds) or b.shape[1] != len(seeds):
        return None  # a paired run lacks predictions of this split
    a = pd.DataFrame(a, index=cases_a["image_id"].to_numpy())
    b = pd.DataFrame(b, index=cases_b["image_id"].to_numpy())
    cases = fg_cases(cases_a.set_index("image_id", drop=False))
    common = cases.index[cases.index.isin(b.index)]
    cases = cases.loc[common].reset_index(drop=True)
    return cases, a.loc[common].to_numpy(), b.loc[common].to_numpy(), seeds


def paired_difference_ci(
    typical: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean over seeds of ``AUC^FG(a_k) - AUC^FG(b_k)`` and its hierarchical bootstrap CI.

    ``typical`` is 0/1 per case; ``a`` and ``b`` are ``[cases, seeds]`` with column ``k`` of both
    from the same seed. Each replicate (1) resamples the cases with replacement, stratified by
    subcategory, and applies that resample to every seed of both methods (the test set is shared:
    cases are crossed with seeds, not nested in them), then (2) resamples the seeds with
    replacement and averages their differences. Returns ``(mean, low, high)`` (percentile CI).
    With one seed the interval covers case sampling only.

    >>> y = np.array([0, 0, 1, 1])
    >>> a, b = np.array([[.1], [.2], [.8], [.9]]), np.array([[.5], [.2], [.4], [.9]])
    >>> paired_difference_ci(y, a, b)[0]  # AUC^FG 1.0 vs 0.75
    0.25
    """
    from finegrain.metrics import auc_fg

    typical = np.asarray(typical, dtype=int)
    a = np.asarray(a, dtype=float).reshape(len(typical), -1)
    b = np.asarray(b, dtype=float).reshape(len(typical), -1)
    if a.shape != b.shape:
        raise FinegrainError(f"paired score matrices differ in shape: {a.shape} vs {b.shape}")
    if not 0.0 < level < 1.0:
        raise FinegrainError(f"level must be between 0 and 1 (exclusive), got {level}")
    k = a.shape[1]
    per_seed = np.array([auc_fg(typical, a[:, j]) - auc_fg(typical, b[:, j]) for j in range(k)])
    diffs = np.stack(
        [
            _replicates(typical, a[:, j], n_boot, seed)
            - _replicates(typical, b[:, j], n_boot, seed)
            for j in range(k)
        ]
    )  # [seeds, replicates]
    picks = np.random.default_rng([seed, 1]).integers(0, k, size=(n_boot, k))
    reps = diffs[picks, np.arange(n_boot)[:, None]].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(reps, [alpha, 1.0 - alpha])
    return float(per_seed.mean()), float(low), float(high)


PAIRED_COLUMNS: list[str] = [
    "observation",
    "method",
    "tau",
    "variant",
    "reference",
    "split",
    "seeds",
    "difference",
    "ci_low",
    "ci_high",
    "delong_p",
    "seed_differences",
    "n_atypical",
    "n_typical",
    "note",
    "difference_probability",
    "settings",
]


def paired_difference(
    selections: Sequence[RunSelection],
    *,
    method: str,
    tau: float | None,
    reference: Cell,
    settings: tuple = (),
    splits: Sequence[str] = ("validate", "test"),
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """The paired difference ``method − reference`` of AUC^FG, per observation and split, for
    the variant with the grid's other axes at ``settings`` (the ``reference`` cell at the
    same).

    Runs are paired by seed (same seed: same initialisation stream and data order, since the
    data order depends only on the seed). Columns: ``seeds`` (number of pairs), ``difference``
    (mean over the pairs of the per-seed AUC^FG difference, each at its run's checkpoint chosen
    on validation), ``ci_low``/``ci_high`` (:func:`paired_difference_ci`), ``delong_p`` (paired
    DeLong test on the *pooled* predictions: each case's score averaged over the seeds),
    ``seed_differences`` (the per-seed values, ``;``-separated), the case counts, ``note``,
    ``difference_probability``: the same mean difference of the paper's AUC^FG of the
    positive probability (equal to ``difference`` unless a method ranks a fine score of its
    own), and ``settings``: the values of the grid's other axes (``lr=0.001``; ``""`` without).
    """
    from finegrain.metrics import delong_test

    groups = _group(selections)
    rows = []
    observations = sorted({s.spec.observation for s in selections})
    for obs in observations:
        key = (obs, method, tau, tuple(settings))
        mine = groups.get(key, [])
        ref = groups.get(_reference_key(key, reference), [])
        for split in splits:
            row = dict.fromkeys(PAIRED_COLUMNS, math.nan)
            row.update(
                observation=obs, method=method, tau=tau, variant=_variant(key),
                reference=reference[0], split=split, settings=settings_text(settings),
                seeds=0, seed_differences="", n_atypical=0, n_typical=0, note="",
            )  # fmt: skip
            rows.append(row)
            found = paired_matrices(mine, ref, split) if mine and ref else None
            if found is None:
                row["note"] = f"no paired {split} predictions of {method} and {reference[0]}"
                continue
            cases, a, b, seeds = found
            typical = (cases["subcategory"] == TYPICAL).to_numpy(dtype=int)
            row["seeds"] = len(seeds)
            row["n_atypical"] = int((typical == 0).sum())
            row["n_typical"] = int((typical == 1).sum())
            if not row["n_atypical"] or not row["n_typical"]:
                row["note"] = f"{split} split lacks atypical or typical positives"
                continue
            from finegrain.metrics import auc_fg

            per_seed = [
                auc_fg(typical, a[:, j]) - auc_fg(typical, b[:, j]) for j in range(len(seeds))
            ]
            row["seed_differences"] = ";".join(f"{d:+.4f}" for d in per_seed)
            row["difference"], row["ci_low"], row["ci_high"] = paired_difference_ci(
                typical, a, b, n_boot=n_boot, level=level, seed=seed
            )
            row["delong_p"] = float(delong_test(typical, a.mean(axis=1), b.mean(axis=1)).p_value)
            row["difference_probability"] = row["difference"]
            if any(s.method.own_fine_score for s in mine + ref):  # the paper's AUC^FG too
                _, pa, pb, _ = paired_matrices(mine, ref, split, SCORE)
                row["difference_probability"] = float(
                    np.mean([auc_fg(typical, pa[:, j]) - auc_fg(typical, pb[:, j])
                             for j in range(len(seeds))])
                )  # fmt: skip
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


MECHANISM_COLUMNS: list[str] = [
    "observation",
    "method",
    "tau",
    "variant",
    "split",
    "seeds",
    "threshold",
    "linear_share",
    "mean_p_atypical",
    "mean_p_typical",
    "mean_p_negative",
]


def mechanism_table(
    selections: Sequence[RunSelection], *, threshold: float, split: str = "test"
) -> pd.DataFrame:
    """Where PCE acts, per variant: mean over seeds (chosen checkpoints) of the share of positive
    cases with ``p <= threshold`` (PCE's linear regime at τ = threshold; for a τ-free method the
    study's τ is used) and the mean p of atypical positives, typical positives and negatives."""
    rows = []
    for key, sels in _group(selections).items():
        obs, method, tau, _ = key
        t = threshold if tau is None else tau
        values = []
        for sel in sels:
            pred = selected_predictions(sel, split)
            if pred is None:
                continue
            label = pd.to_numeric(pred["label"], errors="coerce")
            pos = pred[label == POSITIVE]
            cases = fg_cases(pred)
            values.append(
                (
                    float((pos["score"] <= t).mean()) if len(pos) else math.nan,
                    float(cases.loc[cases["subcategory"] == ATYPICAL, "score"].mean()),
                    float(cases.loc[cases["subcategory"] == TYPICAL, "score"].mean()),
                    float(pred.loc[label == 0, "score"].mean()),
                )
            )
        if not values:
            continue
        arr = np.array(values, dtype=float)
        counts = np.isfinite(arr).sum(axis=0)
        mean = np.where(counts > 0, np.nansum(arr, axis=0) / np.maximum(counts, 1), np.nan)
        rows.append(
            {
                "observation": obs,
                "method": method,
                "tau": tau,
                "variant": _variant(key),
                "split": split,
                "seeds": len(values),
                "threshold": t,
                "linear_share": mean[0],
                "mean_p_atypical": mean[1],
                "mean_p_typical": mean[2],
                "mean_p_negative": mean[3],
            }
        )
    return pd.DataFrame(rows, columns=MECHANISM_COLUMNS)


FINE_LABEL_COLUMNS: list[str] = [
    "observation",
    "method",
    "tau",
    "variant",
    "split",
    "seeds",
    "auc_fg_text",
    "n_atypical_text",
    "n_typical_text",
    "auc_fg_human",
    "n_atypical_human",
    "n_typical_human",
    "n_both",
    "agree",
    "kappa",
]


def fine_label_summary(
    selections: Sequence[RunSelection],
    index: pd.DataFrame,
    *,
    source: str = "mesh",
    split: str = "test",
) -> pd.DataFrame:
    """AUC^FG against the text-mined subcategories next to AUC^FG against a second (human)
    source, ``<Obs> subcategory <source>`` of ``index`` (e.g. OpenI's MeSH), joined by image id.

    One row per (observation, method, tau) with an index column for the observation: the seed
    means at the chosen checkpoints, the class counts of each, and the agreement of the two
    sources on the split's positives that both label (``n_both``, ``agree``, Cohen's ``kappa``).
    """
    from finegrain.data.index import fine_label_column
    from finegrain.evaluate import subcategory_agreement
    from finegrain.metrics import auc_fg

    ids = index["image_id"].astype(str)
    rows = []
    for key, group in _group(selections).items():
        obs, method, tau, _ = key
        column = fine_label_column(obs, source)
        if column not in index.columns:
            continue
        human_of = dict(zip(ids, index[column].astype("string").fillna(""), strict=True))
        fg_text, fg_human, agreement, counts = [], [], None, {}
        for sel in group:
            pred = selected_predictions(sel, split)
            if pred is None:
                continue
            human = pred.assign(subcategory=pred["image_id"].astype(str).map(human_of))
            for name, frame, values in (("text", pred, fg_text), ("human", human, fg_human)):
                cases = fg_cases(frame)
                typical = (cases["subcategory"] == TYPICAL).to_numpy(dtype=int)
                counts[f"n_atypical_{name}"] = int((typical == 0).sum())
                counts[f"n_typical_{name}"] = int((typical == 1).sum())
                if 0 < typical.sum() < len(typical):
                    values.append(auc_fg(typical, cases[RANKED].to_numpy(dtype=float)))
            if agreement is None:  # the same cases for every seed
                positive = (pd.to_numeric(pred["label"], errors="coerce") == POSITIVE).to_numpy()
                text = pred["subcategory"].astype("string").str.strip().str.lower()
                agreement = subcategory_agreement(
                    text.to_numpy(dtype=object, na_value=None)[positive],
                    human["subcategory"].to_numpy(dtype=object)[positive],
                )
        if agreement is None:
            continue
        rows.append(
            {
                "observation": obs,
                "method": method,
                "tau": tau,
                "variant": _variant(key),
                "split": split,
                "seeds": len(fg_human),
                "auc_fg_text": float(np.mean(fg_text)) if fg_text else math.nan,
                "auc_fg_human": float(np.mean(fg_human)) if fg_human else math.nan,
                **counts,
                "n_both": agreement["n"],
                "agree": agreement["agree"],
                "kappa": math.nan if agreement["kappa"] is None else agreement["kappa"],
            }
        )
    return pd.DataFrame(rows, columns=FINE_LABEL_COLUMNS)
