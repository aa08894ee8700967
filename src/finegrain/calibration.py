"""Does a probability mean what it says? Reliability bins, expected calibration error (ECE) and
the Brier score: plain functions over arrays, in the style of ``sklearn.metrics``.

* :func:`reliability_bins` — per bin, the mean probability and the share of positives: the
  points of a reliability diagram. The bins are exactly those of scikit-learn's
  ``sklearn.calibration.calibration_curve`` (which draws finegrain's diagrams, through
  ``CalibrationDisplay``): ``strategy="quantile"`` puts the edges at the 0, 1/n, ..., 1
  quantiles of the probabilities (equal-mass bins), ``"uniform"`` at 0, 1/n, ..., 1
  (equal-width); a probability on an inner edge falls in the lower bin.
* :func:`expected_calibration_error` — ``Σ_b (n_b / N) |share of positives in b − mean
  probability in b|`` over the non-empty bins.
* :func:`brier_score` — the mean squared difference between probability and outcome
  (``sklearn.metrics.brier_score_loss``).
* :func:`calibration_replicates` — ECE or Brier on each row of a bootstrap resample
  (:func:`finegrain.metrics.bootstrap_indices`), for confidence intervals and paired
  differences.

finegrain's default binning is **15 equal-mass bins** (:data:`N_BINS`, :data:`STRATEGY`): every
bin then holds about N/15 cases, so the upward bias that sampling noise gives a binned ECE is
about the same for two models whatever the shape of their probability distributions (with
equal-width bins, a model whose probabilities crowd near 0 and 1 leaves thin middle bins whose
noise alone raises its ECE; Nixon et al., 2019). 15 bins as in Guo et al. (2017).
(The phantom's *calibration* to real label statistics is another thing:
:mod:`finegrain.data.phantom.calibration`.)

>>> y, p = [0, 0, 1, 1], [0.1, 0.3, 0.6, 0.8]
>>> expected_calibration_error(y, p, n_bins=2, strategy="uniform")  # (2 × 0.2 + 2 × 0.3) / 4
0.25
>>> round(brier_score(y, p), 4)
0.075
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from finegrain.errors import FinegrainError
from finegrain.metrics import _BINARY_CODES, _check_classes, _check_score

__all__ = [
    "ECE",
    "BRIER",
    "N_BINS",
    "STRATEGIES",
    "STRATEGY",
    "ReliabilityBins",
    "brier_score",
    "calibration_ci",
    "calibration_replicates",
    "check_probability",
    "expected_calibration_error",
    "reliability_bins",
]

#: The number of bins of every ECE finegrain reports unless told otherwise.
N_BINS = 15
#: Equal-mass bins (``"quantile"``) by default; ``"uniform"``: equal-width.
STRATEGY = "quantile"
STRATEGIES = ("quantile", "uniform")
#: How many resampled cases :func:`calibration_replicates` holds at once (memory bound).
_BLOCK_CELLS = 4_000_000
#: The two calibration measures, as :func:`calibration_replicates` names them.
ECE, BRIER = "ece", "brier"


@dataclass(frozen=True)
class ReliabilityBins:
    """The non-empty bins of a reliability diagram, lowest first."""

    count: np.ndarray  # cases per bin
    mean_probability: np.ndarray  # what the model said, on average
    fraction_positive: np.ndarray  # how often the outcome was positive
    edges: np.ndarray  # the n_bins + 1 edges (empty bins included)

    @property
    def gap(self) -> np.ndarray:
        """``fraction_positive − mean_probability`` per bin (> 0: the model under-predicts)."""
        return self.fraction_positive - self.mean_probability


def check_probability(probability: Any, n: int, name: str = "probability") -> np.ndarray:
    """``probability`` as float64, each value finite and within [0, 1]; an error names the
    first value that is not and its position."""
    p = _check_score(probability, n, name)
    bad = (p < 0) | (p > 1)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise FinegrainError(
            f"{name}: {p[pos]} at position {pos} is not a probability (outside [0, 1]; "
            f"{int(bad.sum())} such value(s))"
        )
    return p


def _check(y_true: Any, probability: Any) -> tuple[np.ndarray, np.ndarray]:
    y = _check_classes(y_true, "y_true", _BINARY_CODES, "0 (negative) or 1 (positive)")
    p = check_probability(probability, y.shape[0])
    if y.shape[0] == 0:
        raise FinegrainError("calibration needs at least one case; got none")
    return y, p


def _check_binning(n_bins: int, strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise FinegrainError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if int(n_bins) != n_bins or n_bins < 1:
        raise FinegrainError(f"n_bins must be a positive integer, got {n_bins!r}")


def _edges(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    """The bin edges of ``calibration_curve``: quantiles of ``p``, or equal widths."""
    if strategy == "quantile":
        return np.percentile(p, np.linspace(0, 1, n_bins + 1) * 100)
    return np.linspace(0.0, 1.0, n_bins + 1)


def _bin_sums(
    y: np.ndarray, p: np.ndarray, edges: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin (empty ones included): case count, sum of probabilities, sum of outcomes."""
    ids = np.searchsorted(edges[1:-1], p)
    return (
        np.bincount(ids, minlength=n_bins),
        np.bincount(ids, weights=p, minlength=n_bins),
        np.bincount(ids, weights=y, minlength=n_bins),
    )


def reliability_bins(
    y_true: Sequence | np.ndarray,
    probability: Sequence | np.ndarray,
    *,
    n_bins: int = N_BINS,
    strategy: str = STRATEGY,
) -> ReliabilityBins:
    """The reliability diagram's points: per non-empty bin its count, mean probability and share
    of positives (``y_true`` 0/1). The bins are ``calibration_curve``'s (module docstring).

    >>> b = reliability_bins([0, 1, 0, 1], [0.2, 0.4, 0.6, 0.8], n_bins=2)
    >>> b.count.tolist(), b.mean_probability.tolist(), b.fraction_positive.tolist()
    ([2, 2], [0.30000000000000004, 0.7], [0.5, 0.5])
    """
    _check_binning(n_bins, strategy)
    y, p = _check(y_true, probability)
    edges = _edges(p, n_bins, strategy)
    total, sums, positives = _bin_sums(y, p, edges, n_bins)
    keep = total > 0
    return ReliabilityBins(
        count=total[keep],
        mean_probability=sums[keep] / total[keep],
        fraction_positive=positives[keep] / total[keep],
        edges=edges,
    )


def expected_calibration_error(
    y_true: Sequence | np.ndarray,
    probability: Sequence | np.ndarray,
    *,
    n_bins: int = N_BINS,
    strategy: str = STRATEGY,
) -> float:
    """ECE: the case-weighted mean of ``|share of positives − mean probability|`` over the bins
    of :func:`reliability_bins` (0: calibrated; it cannot exceed 1).

    >>> expected_calibration_error([0, 1], [0.0, 1.0], n_bins=2)
    0.0
    """
    _check_binning(n_bins, strategy)
    y, p = _check(y_true, probability)
    total, sums, positives = _bin_sums(y, p, _edges(p, n_bins, strategy), n_bins)
    return float(np.abs(positives - sums).sum() / total.sum())


def brier_score(y_true: Sequence | np.ndarray, probability: Sequence | np.ndarray) -> float:
    """The mean of ``(probability − outcome)²`` (``sklearn.metrics.brier_score_loss``).

    >>> brier_score([0, 1], [0.5, 0.5])
    0.25
    """
    y, p = _check(y_true, probability)
    return float(np.mean((p - y) ** 2))


def calibration_replicates(
    y_true: Sequence | np.ndarray,
    probability: Sequence | np.ndarray,
    indices: np.ndarray,
    *,
    measure: str = ECE,
    n_bins: int = N_BINS,
    strategy: str = STRATEGY,
) -> np.ndarray:
    """``measure`` (:data:`ECE` or :data:`BRIER`) of each resample: row ``r`` of ``indices``
    selects the cases of replicate ``r`` (:func:`finegrain.metrics.bootstrap_indices`). Each
    replicate's equal-mass bins come from its own resampled probabilities, as the measure on
    that sample would place them: ``bootstrap_ci(expected_calibration_error, y, p)`` gives the
    percentiles of these values.

    >>> idx = np.array([[0, 1, 2, 3], [0, 0, 3, 3]])
    >>> calibration_replicates([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.8], idx, n_bins=2).round(4).tolist()
    [0.25, 0.15]
    """
    if measure not in (ECE, BRIER):
        raise FinegrainError(f"measure must be {ECE!r} or {BRIER!r}, got {measure!r}")
    _check_binning(n_bins, strategy)
    y, p = _check(y_true, probability)
    indices = np.asarray(indices)
    if indices.ndim != 2:
        raise FinegrainError(f"indices must be a 2-D (n_boot, n) array, got shape {indices.shape}")
    if measure == BRIER:
        return np.mean((p[indices] - y[indices]) ** 2, axis=1)
    out = np.empty(indices.shape[0])
    # a block of replicates at a time, every step vectorised across the block: each row's
    # edges are np.percentile of that row (the same values as one row at a time), a case's bin
    # the number of inner edges below it (searchsorted's "left": an edge's case goes lower)
    block = max(1, _BLOCK_CELLS // max(1, indices.shape[1]))
    for start in range(0, indices.shape[0], block):
        rows = indices[start : start + block]
        pr, yr = p[rows], y[rows]
        if strategy == "quantile":
            edges = np.percentile(pr, np.linspace(0, 1, n_bins + 1) * 100, axis=1).T
        else:
            edges = np.broadcast_to(np.linspace(0.0, 1.0, n_bins + 1), (len(rows), n_bins + 1))
        flat = np.repeat(n_bins * np.arange(len(rows)), rows.shape[1]).reshape(pr.shape)
        for k in range(1, n_bins):  # + 1 for each inner edge below the case
            flat += pr > edges[:, k : k + 1]
        flat = flat.ravel()
        size = len(rows) * n_bins
        sums = np.bincount(flat, weights=pr.ravel(), minlength=size).reshape(len(rows), n_bins)
        positives = np.bincount(flat, weights=yr.ravel(), minlength=size).reshape(sums.shape)
        out[start : start + len(rows)] = np.abs(positives - sums).sum(axis=1) / rows.shape[1]
    return out


def calibration_ci(
    y_true: Sequence | np.ndarray,
    probability: Sequence | np.ndarray,
    *,
    measure: str = ECE,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    n_bins: int = N_BINS,
    strategy: str = STRATEGY,
    indices: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap CI ``(low, high)`` of ECE or Brier, the resamples stratified by
    ``y_true``: the interval ``finegrain.metrics.bootstrap_ci(expected_calibration_error, y,
    p)`` gives, from :func:`calibration_replicates` (vectorised, no re-checks). ``indices``:
    resamples already drawn (``bootstrap_indices(y, n_boot, seed=seed)``), to share them
    between ECE and Brier.
    """
    from finegrain.metrics import bootstrap_indices

    if not 0.0 < level < 1.0:
        raise FinegrainError(f"level must be between 0 and 1 (exclusive), got {level}")
    y, _ = _check(y_true, probability)
    if indices is None:
        indices = bootstrap_indices(y, n_boot, seed=seed)
    reps = calibration_replicates(
        y,
        probability,
        indices,
        measure=measure,
        n_bins=n_bins,
        strategy=strategy,
    )
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    return float(low), float(high)
