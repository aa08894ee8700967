"""AUC^FG and friends: plain functions over arrays, in the style of ``sklearn.metrics``.

* :func:`auc_fg` — ROC AUC of a score between **atypical** (0) and **typical** (1) positives.
* :func:`auc` — the ordinary ROC AUC, positive (1) versus negative (0).
* :func:`bootstrap_ci` — stratified percentile bootstrap CI, vectorised over replicates.
* :func:`delong_test`, :func:`delong_ci` — DeLong's paired test and a single AUC's CI
  (fast midrank algorithm of Sun & Xu, 2014).
* :func:`auc_fg_by_source` — AUC^FG with the atypical cases of one source only (a severity word,
  a change word): how much of AUC^FG rests on what one image cannot show.
* :func:`severity_rho` — Spearman's ρ of a score with the true severity (phantom positives).

All AUCs are the Mann–Whitney U statistic divided by the number of pairs: the fraction of
(class 1, class 0) pairs in which the class-1 case has the higher score, ties counting one half.
The numerator is computed in integers from midranks, so the value is the exact fraction
rounded once to a float; it equals ``sklearn.metrics.roc_auc_score`` up to that library's own
floating-point rounding (below 1e-12).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import ndtri
from scipy.stats import norm

from finegrain.errors import FinegrainError
from finegrain.observations import ATYPICAL, TYPICAL

__all__ = [
    "DeLongResult",
    "auc",
    "auc_fg",
    "auc_fg_by_source",
    "auc_replicates",
    "bootstrap_ci",
    "bootstrap_indices",
    "delong_ci",
    "delong_test",
    "severity_rho",
]

#: Replicates drawn per block in the bootstrap (each block has its own child seed, so the
#: resamples depend only on ``seed`` and the data, never on memory or chunking).
BOOTSTRAP_BLOCK = 64

_SUBCATEGORY_CODES: dict[Any, int] = {ATYPICAL: 0, TYPICAL: 1, 0: 0, 1: 1}
_BINARY_CODES: dict[Any, int] = {0: 0, 1: 1}


# --------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------


def _as_1d(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        raise FinegrainError(f"{name} must be a 1-D array-like, got a scalar {values!r}")
    if arr.ndim != 1:
        raise FinegrainError(f"{name} must be 1-D, got an array of shape {arr.shape}")
    return arr


def _check_classes(values: Any, name: str, codes: dict[Any, int], expected: str) -> np.ndarray:
    """Map class labels to int8 0/1; a ValueError names the first bad value and its position."""
    arr = _as_1d(values, name)
    if arr.dtype.kind == "b":
        return arr.astype(np.int8)
    if arr.dtype.kind in "iuf":
        ok = (arr == 0) | (arr == 1)
        if not ok.all():
            pos = int(np.flatnonzero(~ok)[0])
            raise FinegrainError(
                f"{name}: unknown label {arr[pos].item()!r} at position {pos}; expected {expected}"
            )
        return arr.astype(np.int8)
    out = np.empty(arr.shape[0], dtype=np.int8)
    for pos, value in enumerate(arr.tolist()):
        key = value.strip().lower() if isinstance(value, str) else value
        try:
            code = codes.get(key)
        except TypeError:  # unhashable
            code = None
        if code is None:
            raise FinegrainError(
                f"{name}: unknown label {value!r} at position {pos}; expected {expected}"
            )
        out[pos] = code
    return out


def _check_score(score: Any, n: int, name: str = "score") -> np.ndarray:
    arr = _as_1d(score, name)
    if arr.shape[0] != n:
        raise FinegrainError(f"lengths differ: {n} labels but {arr.shape[0]} values in {name}")
    try:
        out = arr.astype(np.float64)
    except (TypeError, ValueError):
        for pos, value in enumerate(arr.tolist()):
            try:
                float(value)
            except (TypeError, ValueError):
                raise FinegrainError(
                    f"{name}: non-numeric value {value!r} at position {pos}"
                ) from None
        raise
    bad = ~np.isfinite(out)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise FinegrainError(
            f"{name}: {out[pos]} at position {pos} ({int(bad.sum())} non-finite value(s) in all); "
            "scores must be finite numbers"
        )
    return out


def _check_both_classes(y: np.ndarray, what: str, names: tuple[str, str]) -> tuple[int, int]:
    n1 = int(y.sum())
    n0 = int(y.shape[0] - n1)
    for count, label in ((n0, names[0]), (n1, names[1])):
        if count == 0:
            raise FinegrainError(
                f"{what} is undefined: no {label} cases among {y.shape[0]} "
                f"(it needs at least one {names[0]} and one {names[1]} case)"
            )
    return n1, n0


# --------------------------------------------------------------------------------------------
# the Mann–Whitney core
# --------------------------------------------------------------------------------------------


def _u2_from_counts(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Twice the Mann–Whitney U from per-distinct-score counts (last axis sorted by score).

    ``2U = sum over scores u of pos[u] * (2 * #neg below u + #neg at u)`` — the rank-sum
    ``2 R1 - n1 (n1 + 1)`` written with midranks, exact in int64.
    """
    below = np.cumsum(neg, axis=-1) - neg
    return np.sum(pos * (2 * below + neg), axis=-1)


def _auc_checked(y: np.ndarray, s: np.ndarray) -> float:
    """AUC of validated int8 labels ``y`` (both classes present) and finite scores ``s``."""
    _, inverse = np.unique(s, return_inverse=True)
    n_unique = int(inverse.max()) + 1
    pos = np.bincount(inverse[y == 1], minlength=n_unique).astype(np.int64)
    neg = np.bincount(inverse[y == 0], minlength=n_unique).astype(np.int64)
    n1, n0 = int(pos.sum()), int(neg.sum())
    return float(_u2_from_counts(pos, neg)) / (2.0 * n1 * n0)


def auc_fg(subcategory: Sequence | np.ndarray, score: Sequence | np.ndarray) -> float:
    """AUC^FG: the ROC AUC of ``score`` between atypical (0) and typical (1) positive cases.

    The probability that a typical positive scores higher than an atypical one (ties count one
    half). 0.5 means the score carries no information about the subcategory; above 0.5 the model
    is more confident on typical than on atypical positives.

    Parameters
    ----------
    subcategory : array-like of shape (n,)
        ``"atypical"``/``"typical"`` (case and surrounding space ignored) or 0/1 (bool allowed),
        for **positive** cases only.
    score : array-like of shape (n,)
        The model's positive probability (any finite numbers; only their order matters).

    Raises
    ------
    ValueError
        Lengths differ, a score is NaN or infinite, a label is unknown (the message names the
        value and its position), or either subcategory is empty.

    Examples
    --------
    >>> auc_fg(["atypical", "atypical", "typical", "typical"], [0.2, 0.6, 0.6, 0.9])
    0.875
    """
    y = _check_classes(
        subcategory, "subcategory", _SUBCATEGORY_CODES, "'atypical'/'typical' or 0/1"
    )
    s = _check_score(score, y.shape[0])
    _check_both_classes(y, "auc_fg", (ATYPICAL, TYPICAL))
    return _auc_checked(y, s)


def auc(y_true: Sequence | np.ndarray, score: Sequence | np.ndarray) -> float:
    """The ordinary ROC AUC: positive (1) versus negative (0) cases, ties counting one half.

    Same core and validation as :func:`auc_fg`; ``y_true`` holds 0/1 (or bool). Uncertain
    labels (-1) are rejected: decide what they mean before calling.

    Examples
    --------
    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y = _check_classes(y_true, "y_true", _BINARY_CODES, "0 (negative) or 1 (positive)")
    s = _check_score(score, y.shape[0])
    _check_both_classes(y, "auc", ("negative", "positive"))
    return _auc_checked(y, s)


# --------------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------------


def _index_blocks(
    strata: np.ndarray, n_boot: int, seed: int, stratify: bool
) -> Iterator[np.ndarray]:
    """Yield (b, n) arrays of resampled positions, ``BOOTSTRAP_BLOCK`` replicates at a time."""
    n = strata.shape[0]
    groups = [np.flatnonzero(strata == v) for v in np.unique(strata)] if stratify else None
    n_blocks = -(-n_boot // BOOTSTRAP_BLOCK)
    for k, child in enumerate(np.random.SeedSequence(seed).spawn(n_blocks)):
        rng = np.random.default_rng(child)
        b = min(BOOTSTRAP_BLOCK, n_boot - k * BOOTSTRAP_BLOCK)
        if groups is None:
            yield rng.integers(0, n, size=(b, n))
        else:
            yield np.concatenate(
                [g[rng.integers(0, g.shape[0], size=(b, g.shape[0]))] for g in groups], axis=1
            )


def bootstrap_indices(
    strata: Sequence | np.ndarray, n_boot: int = 2000, *, seed: int = 0, stratify: bool = True
) -> np.ndarray:
    """The (n_boot, n) array of resampled positions that :func:`bootstrap_ci` uses.

    With ``stratify`` each replicate draws, with replacement, as many cases from each distinct
    value of ``strata`` as the data has (so no replicate loses a class); columns are grouped by
    stratum. Deterministic given ``seed``.

    >>> bootstrap_indices([0, 0, 1], n_boot=2, seed=1).shape
    (2, 3)
    """
    strata = _as_1d(strata, "strata")
    if n_boot < 1:
        raise FinegrainError(f"n_boot must be at least 1, got {n_boot}")
    return np.concatenate(list(_index_blocks(strata, n_boot, seed, stratify)), axis=0)


def auc_replicates(
    y: Sequence | np.ndarray, score: Sequence | np.ndarray, indices: np.ndarray
) -> np.ndarray:
    """AUC of each resample: row ``r`` of ``indices`` selects the cases of replicate ``r``.

    Vectorised: the scores are ranked once; each replicate's AUC is computed from per-score
    class counts (``bincount`` over all replicates at once). A replicate lacking a class is NaN.
    ``y`` is 0/1 (use 0 = atypical, 1 = typical for AUC^FG).

    >>> auc_replicates([0, 1, 1], [0.1, 0.5, 0.9], np.array([[0, 1, 2], [1, 1, 2]])).tolist()
    [1.0, nan]
    """
    y = _check_classes(y, "y", _SUBCATEGORY_CODES, "0/1 or 'atypical'/'typical'")
    s = _check_score(score, y.shape[0])
    indices = np.asarray(indices)
    if indices.ndim != 2:
        raise FinegrainError(f"indices must be a 2-D (n_boot, n) array, got shape {indices.shape}")
    _, inverse = np.unique(s, return_inverse=True)
    return _replicate_aucs(y, inverse, int(inverse.max()) + 1 if s.size else 0, indices)


def _replicate_aucs(
    y: np.ndarray, inverse: np.ndarray, n_unique: int, idx: np.ndarray
) -> np.ndarray:
    b = idx.shape[0]
    is_pos = y[idx].astype(bool)
    key = inverse[idx] + (np.arange(b, dtype=np.int64) * n_unique)[:, None]
    pos = np.bincount(key[is_pos], minlength=b * n_unique).reshape(b, n_unique)
    neg = np.bincount(key[~is_pos], minlength=b * n_unique).reshape(b, n_unique)
    n1 = is_pos.sum(axis=1)
    n0 = idx.shape[1] - n1
    u2 = _u2_from_counts(pos.astype(np.int64), neg.astype(np.int64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((n1 > 0) & (n0 > 0), u2 / (2.0 * n1 * n0), np.nan)


def bootstrap_ci(
    metric: Callable[..., float],
    *arrays: Sequence | np.ndarray,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    stratify: bool = True,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval ``(low, high)`` of ``metric(*arrays)``.

    Cases are resampled with replacement, stratified by the values of the first array (the class
    labels) so that every replicate keeps both classes. For :func:`auc` and :func:`auc_fg` all
    replicates are computed at once from one ranking of the scores (no Python loop over
    replicates); any other ``metric(*arrays) -> float`` is called once per replicate on the same
    resamples. Deterministic given ``seed``.

    Without ``stratify``, replicates in which the metric is undefined (NaN, e.g. a class drawn
    empty) are left out of the percentiles with a warning giving their count.

    Examples
    --------
    >>> low, high = bootstrap_ci(auc_fg, [0, 0, 0, 1, 1, 1], [.1, .3, .6, .4, .7, .9], seed=0)
    >>> 0.0 <= low <= auc_fg([0, 0, 0, 1, 1, 1], [.1, .3, .6, .4, .7, .9]) <= high <= 1.0
    True
    """
    if not 0.0 < level < 1.0:
        raise FinegrainError(f"level must be between 0 and 1 (exclusive), got {level}")
    if n_boot < 1:
        raise FinegrainError(f"n_boot must be at least 1, got {n_boot}")
    if not arrays:
        raise FinegrainError("bootstrap_ci needs at least one array after the metric")
    arrays_np = [_as_1d(a, f"array {i}") for i, a in enumerate(arrays)]
    n = arrays_np[0].shape[0]
    for i, a in enumerate(arrays_np[1:], start=1):
        if a.shape[0] != n:
            raise FinegrainError(
                f"lengths differ: array 0 has {n} values but array {i} has {a.shape[0]}"
            )
    metric(*arrays)  # validates the inputs and raises the metric's own errors (empty class, ...)

    if metric in (auc, auc_fg) and len(arrays) == 2:
        codes = _SUBCATEGORY_CODES if metric is auc_fg else _BINARY_CODES
        y = _check_classes(arrays[0], "labels", codes, "")
        s = _check_score(arrays[1], n)
        _, inverse = np.unique(s, return_inverse=True)
        n_unique = int(inverse.max()) + 1
        reps = np.concatenate(
            [
                _replicate_aucs(y, inverse, n_unique, idx)
                for idx in _index_blocks(y, n_boot, seed, stratify)
            ]
        )
    else:
        strata = np.unique(arrays_np[0].astype(str), return_inverse=True)[1]
        reps = np.array(
            [
                float(metric(*(a[row] for a in arrays_np)))
                for idx in _index_blocks(strata, n_boot, seed, stratify)
                for row in idx
            ]
        )
    undefined = int(np.isnan(reps).sum())
    if undefined == reps.shape[0]:
        raise FinegrainError(f"the metric is undefined (NaN) in all {n_boot} bootstrap replicates")
    if undefined:
        warnings.warn(
            f"bootstrap_ci: {undefined} of {n_boot} replicates were undefined (NaN) and left out",
            stacklevel=2,
        )
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(reps, [alpha, 1.0 - alpha])
    return float(low), float(high)


# --------------------------------------------------------------------------------------------
# DeLong
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeLongResult:
    """Paired DeLong comparison of two AUCs measured on the same cases."""

    auc_a: float
    auc_b: float
    difference: float  # auc_a - auc_b
    se: float  # standard error of the difference
    z: float
    p_value: float  # two-sided
    var_a: float
    var_b: float
    covariance: float
    n_positive: int  # class 1 (typical, for AUC^FG)
    n_negative: int  # class 0 (atypical, for AUC^FG)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _midranks(x: np.ndarray) -> np.ndarray:
    """Midranks (1-based, ties averaged) along the last axis."""
    out = np.empty(x.shape, dtype=np.float64)
    for row in range(x.shape[0]):
        _, inverse, counts = np.unique(x[row], return_inverse=True, return_counts=True)
        ends = np.cumsum(counts)
        out[row] = (ends - (counts - 1) / 2.0)[inverse]
    return out


def _delong_components(
    y: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sun & Xu (2014): AUCs (k,) and the structural components V10 (k, m), V01 (k, n)."""
    x = scores[:, y == 1]  # class 1, m cases
    z = scores[:, y == 0]  # class 0, n cases
    m, n = x.shape[1], z.shape[1]
    tx, tz = _midranks(x), _midranks(z)
    t_all = _midranks(np.concatenate([x, z], axis=1))
    aucs = (t_all[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v10 = (t_all[:, :m] - tx) / n  # per class-1 case: fraction of class-0 cases it beats
    v01 = 1.0 - (t_all[:, m:] - tz) / m  # per class-0 case: fraction of class-1 cases beating it
    return aucs, v10, v01


def _delong_covariance(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    aucs, v10, v01 = _delong_components(y, scores)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((len(aucs), len(aucs)))
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((len(aucs), len(aucs)))
    return aucs, s10 / m + s01 / n


def _check_labels_any(y_true: Any) -> np.ndarray:
    return _check_classes(
        y_true, "y_true", _SUBCATEGORY_CODES, "0/1 (or 'atypical'/'typical' for AUC^FG)"
    )


def delong_test(
    y_true: Sequence | np.ndarray, score_a: Sequence | np.ndarray, score_b: Sequence | np.ndarray
) -> DeLongResult:
    """Paired DeLong test of ``AUC(score_a) == AUC(score_b)`` on the same cases.

    ``y_true`` is 0/1, or ``"atypical"``/``"typical"`` to compare two models' AUC^FG. Uses the
    fast midrank algorithm of Sun & Xu (2014), O(n log n). The p-value is two-sided from the
    normal approximation; when the variance of the difference is zero, ``z`` is 0 (equal AUCs,
    p = 1) or infinite (p = 0).

    Examples
    --------
    >>> r = delong_test([0, 0, 0, 1, 1, 1], [.1, .2, .3, .7, .8, .9], [.5, .2, .6, .4, .8, .3])
    >>> r.auc_a, round(r.auc_b, 4), r.difference > 0
    (1.0, 0.5556, True)
    """
    y = _check_labels_any(y_true)
    a = _check_score(score_a, y.shape[0], "score_a")
    b = _check_score(score_b, y.shape[0], "score_b")
    n1, n0 = _check_both_classes(y, "delong_test", ("class 0", "class 1"))
    aucs, cov = _delong_covariance(y, np.vstack([a, b]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    se = math.sqrt(max(var, 0.0))
    # with no variance at all the difference is either nothing (z = 0) or certain (z = +-inf)
    z = 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
    if se > 0.0:
        z = diff / se
    p = float(2.0 * norm.sf(abs(z)))
    return DeLongResult(
        auc_a=float(aucs[0]),
        auc_b=float(aucs[1]),
        difference=diff,
        se=se,
        z=float(z),
        p_value=min(p, 1.0),
        var_a=float(cov[0, 0]),
        var_b=float(cov[1, 1]),
        covariance=float(cov[0, 1]),
        n_positive=n1,
        n_negative=n0,
    )


def delong_ci(
    y_true: Sequence | np.ndarray, score: Sequence | np.ndarray, *, level: float = 0.95
) -> tuple[float, float]:
    """Normal-approximation CI of one AUC from DeLong's variance, clipped to [0, 1].

    A cheap alternative to :func:`bootstrap_ci` (one ranking, no resampling); ``y_true`` as in
    :func:`delong_test`.

    >>> low, high = delong_ci([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> round(low, 3), high
    (0.057, 1.0)
    """
    if not 0.0 < level < 1.0:
        raise FinegrainError(f"level must be between 0 and 1 (exclusive), got {level}")
    y = _check_labels_any(y_true)
    s = _check_score(score, y.shape[0])
    _check_both_classes(y, "delong_ci", ("class 0", "class 1"))
    aucs, cov = _delong_covariance(y, s[None, :])
    half = float(ndtri(0.5 + level / 2.0)) * math.sqrt(max(float(cov[0, 0]), 0.0))
    value = float(aucs[0])
    return max(0.0, value - half), min(1.0, value + half)


# --------------------------------------------------------------------------------------------
# where AUC^FG comes from, and the true severity
# --------------------------------------------------------------------------------------------


def auc_fg_by_source(
    subcategory: Sequence | np.ndarray,
    source: Sequence | np.ndarray,
    score: Sequence | np.ndarray,
    sources: Sequence[str] = ("severity", "change"),
) -> dict[str, float]:
    """AUC^FG of ``score`` with the atypical cases restricted to one ``source`` each (every
    typical case kept), and the count of atypical cases per source.

    ``source`` says where each case's subcategory comes from (the index's ``<Obs> cue``:
    ``severity`` a severity word, ``change`` a change word only). An atypical label from a
    change word ("improving consolidation") says what happened between two studies, which one
    image cannot show; the split shows how much of AUC^FG that part is. A source without
    atypical cases gives NaN.

    >>> sub = ["atypical", "atypical", "typical", "typical"]
    >>> auc_fg_by_source(sub, ["severity", "change", "no", "severity"], [0.1, 0.9, 0.5, 0.6])
    {'severity': 1.0, 'change': 0.0, 'n_severity': 1, 'n_change': 1}
    """
    y = _check_classes(subcategory, "subcategory", _SUBCATEGORY_CODES, "atypical/typical")
    s = _check_score(score, len(y))
    where = np.asarray(source, dtype=object)
    if len(where) != len(y):
        raise FinegrainError(f"source has {len(where)} values for {len(y)} cases")
    found: dict[str, float] = {}
    for name in sources:
        keep = (y == 1) | (where == name)
        part = y[keep]
        found[name] = auc_fg(part, s[keep]) if 0 < part.sum() < len(part) else math.nan
    for name in sources:
        found[f"n_{name}"] = int(((y == 0) & (where == name)).sum())
    return found


def severity_rho(score: Sequence | np.ndarray, severity: Sequence | np.ndarray) -> float:
    """Spearman's ρ between ``score`` and the true ``severity`` of the same cases (ties: mean
    ranks); NaN when either is constant.

    >>> round(severity_rho([0.2, 0.5, 0.4, 0.9], [0.1, 0.3, 0.5, 0.8]), 6)
    0.8
    """
    from scipy.stats import spearmanr

    s = _check_score(score, len(np.asarray(severity)))
    truth = _check_score(severity, len(s), "severity")
    if len(s) < 2 or np.all(s == s[0]) or np.all(truth == truth[0]):
        return math.nan
    return float(spearmanr(s, truth).statistic)
