"""Three-tier readings: negative / atypical positive / typical positive.

A checkpoint gives one number per image, the positive probability. Two thresholds fitted on the
validation split turn it into the fine-grained reading the paper argues for:

- ``positive`` -- the positive/negative cut. Default (``method="sensitivity"``): the *highest*
  threshold ``t`` such that at least ``sensitivity`` of the validation positives score ``>= t``
  (i.e. the ``ceil(sensitivity * n_positive)``-th highest positive score). With
  ``method="youden"``: the threshold maximising Youden's J = TPR - FPR between validation
  positives (label 1) and negatives (label 0).
- ``typical`` -- the atypical/typical cut: the threshold maximising Youden's J between
  validation positives labelled *typical* (1) and *atypical* (0), i.e. the ROC point of AUC^FG
  farthest above the diagonal. Among equal J the highest threshold wins (as ``argmax`` over
  scikit-learn's ``roc_curve`` thresholds).

Candidate thresholds are the observed scores; an image is positive when ``score >= positive``
and typical when ``score >= typical``::

    score <  positive             -> "negative"
    positive <= score < typical   -> "atypical positive"
    score >= max(positive, typical) -> "typical positive"

A method that learns a fine score of its own (:meth:`finegrain.train.methods.Method.fine_score`)
passes it as ``fine_scores``: the atypical/typical cut is then fitted on, and applied to, the
fine score, and the positive cut stays on the positive probability.

>>> th = fit_thresholds([1, 1, 1, 1, 0, 0], ["atypical", "atypical", "typical", "typical", "", ""],
...                     [0.3, 0.4, 0.8, 0.9, 0.1, 0.2], sensitivity=0.75)
>>> th.positive, th.typical
(0.4, 0.8)
>>> tier(0.5, th)
'atypical positive'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from finegrain.errors import FinegrainError
from finegrain.labels import check_labels, check_subcategories
from finegrain.observations import ATYPICAL, NEGATIVE, POSITIVE, TYPICAL

NEGATIVE_TIER = "negative"
ATYPICAL_TIER = "atypical positive"
TYPICAL_TIER = "typical positive"
TIERS = (NEGATIVE_TIER, ATYPICAL_TIER, TYPICAL_TIER)
METHODS = ("sensitivity", "youden")


@dataclass(frozen=True)
class Thresholds:
    """Fitted tier thresholds and the validation evidence behind them."""

    positive: float
    typical: float
    method: str = "sensitivity"
    sensitivity: float | None = None  # the target (method "sensitivity")
    achieved_sensitivity: float | None = None  # share of validation positives >= positive
    specificity: float | None = None  # share of validation negatives < positive (None: none)
    youden_j: float | None = None  # J of the atypical/typical cut
    n_positive: int = 0
    n_negative: int = 0
    n_atypical: int = 0
    n_typical: int = 0
    iteration: int | None = None  # checkpoint iteration the predictions came from

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of str/float/int/None (storable in a ``weights_only`` checkpoint)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        """Inverse of :meth:`to_dict`; needs ``positive`` and ``typical``, ignores unknown keys."""
        missing = [k for k in ("positive", "typical") if k not in data]
        if missing:
            raise FinegrainError(f"thresholds are missing field(s) {missing}: {data!r}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _as_arrays(labels, subcategories, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=float)
    if not (scores.ndim == np.ndim(labels) == np.ndim(subcategories) == 1):
        raise FinegrainError("labels, subcategories and scores must be one-dimensional")
    if not (len(scores) == len(labels) == len(subcategories)):
        raise FinegrainError(
            f"labels ({len(labels)}), subcategories ({len(subcategories)}) and scores "
            f"({len(scores)}) must have the same length"
        )
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise FinegrainError(f"score at row {bad[0]} is not finite ({scores[bad[0]]})")
    # float so that missing labels are NaN; "" for a missing subcategory
    labels = check_labels(pd.Series(list(labels), dtype=object), source="labels", column="label")
    subs = check_subcategories(
        pd.Series(list(subcategories), dtype=object), source="subcategories", column="subcategory"
    )
    return (
        labels.to_numpy(dtype=float, na_value=np.nan),
        subs.fillna("").to_numpy(dtype=object),
        scores,
    )


def youden_threshold(y_true, score) -> tuple[float, float]:
    """``(threshold, J)`` maximising Youden's J = TPR - FPR for the rule ``score >= threshold``.

    Candidates are the observed scores; ties in J go to the highest threshold.

    >>> youden_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    (0.8, 0.5)
    """
    y = np.asarray(y_true, dtype=int)
    s = np.asarray(score, dtype=float)
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    if n1 == 0 or n0 == 0:
        raise FinegrainError(
            f"Youden's J needs both classes; got {n1} of class 1 and {n0} of class 0"
        )
    order = np.argsort(-s, kind="stable")
    s_desc, y_desc = s[order], y[order]
    last = np.flatnonzero(np.r_[s_desc[1:] != s_desc[:-1], True])  # end of each tie group
    candidates = s_desc[last]  # unique scores, descending
    tp = np.cumsum(y_desc == 1, dtype=np.int64)[last]  # class 1 with score >= candidate
    fp = np.cumsum(y_desc == 0, dtype=np.int64)[last]
    j_scaled = tp * n0 - fp * n1  # J * n1 * n0 in integers: ties are exact
    best = int(np.argmax(j_scaled))  # first maximum in descending order = highest threshold
    return float(candidates[best]), float(j_scaled[best] / (n1 * n0))


def sensitivity_threshold(positive_scores, sensitivity: float) -> float:
    """Highest threshold ``t`` with ``mean(positive_scores >= t) >= sensitivity``.

    >>> sensitivity_threshold([0.2, 0.5, 0.6, 0.9], 0.75)
    0.5
    """
    if not 0 < sensitivity <= 1:
        raise FinegrainError(f"sensitivity must be in (0, 1], got {sensitivity}")
    s = np.sort(np.asarray(positive_scores, dtype=float))[::-1]
    if s.size == 0:
        raise FinegrainError("the positive threshold needs at least one validation positive")
    k = max(1, math.ceil(sensitivity * s.size - 1e-9))
    return float(s[k - 1])


def fit_thresholds(
    labels: Sequence,
    subcategories: Sequence,
    scores: Sequence,
    *,
    sensitivity: float = 0.95,
    method: str = "sensitivity",
    iteration: int | None = None,
    fine_scores: Sequence | None = None,
) -> Thresholds:
    """Fit the tier thresholds on validation predictions (see the module docstring); the
    atypical/typical cut on ``fine_scores`` when given (else on ``scores``).

    ``labels`` are 1 / 0 / -1 (uncertain rows and missing labels are ignored), ``subcategories``
    ``"atypical"`` / ``"typical"`` / empty; only label-1 rows with a subcategory enter the
    atypical/typical cut. Raises ``ValueError`` naming what is missing when a needed group is
    empty, and when a Youden cut has J = 0 (no threshold does better than chance: nothing to
    store).
    """
    if method not in METHODS:
        raise FinegrainError(f"unknown threshold method {method!r}; choose from {METHODS}")
    labels, subs, scores = _as_arrays(labels, subcategories, scores)
    pos, neg = labels == POSITIVE, labels == NEGATIVE
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    if n_pos == 0:
        raise FinegrainError("no validation positives (label 1): cannot fit the positive threshold")
    if method == "sensitivity":
        t_pos = sensitivity_threshold(scores[pos], sensitivity)
    else:
        if n_neg == 0:
            raise FinegrainError("method 'youden' needs validation negatives (label 0); found none")
        t_pos, j_pos = youden_threshold(pos[pos | neg].astype(int), scores[pos | neg])
        if j_pos <= 0:
            raise FinegrainError(
                f"the positive/negative cut has Youden's J {j_pos:g}: no threshold separates "
                f"the {n_pos} validation positives from the {n_neg} negatives better than chance"
            )
    atyp, typ = pos & (subs == ATYPICAL), pos & (subs == TYPICAL)
    n_atyp, n_typ = int(atyp.sum()), int(typ.sum())
    if n_atyp == 0 or n_typ == 0:
        raise FinegrainError(
            "the atypical/typical cut needs validation positives of both subcategories; "
            f"found {n_atyp} atypical and {n_typ} typical"
        )
    fg = atyp | typ
    fine = scores if fine_scores is None else np.asarray(fine_scores, dtype=float)
    t_typ, j = youden_threshold(typ[fg].astype(int), fine[fg])
    if j <= 0:
        raise FinegrainError(
            f"the atypical/typical cut has Youden's J {j:g}: no threshold separates the {n_typ} "
            f"typical from the {n_atyp} atypical validation positives better than chance"
        )
    return Thresholds(
        positive=t_pos,
        typical=t_typ,
        method=method,
        sensitivity=float(sensitivity) if method == "sensitivity" else None,
        achieved_sensitivity=float((scores[pos] >= t_pos).mean()),
        specificity=float((scores[neg] < t_pos).mean()) if n_neg else None,
        youden_j=j,
        n_positive=n_pos,
        n_negative=n_neg,
        n_atypical=n_atyp,
        n_typical=n_typ,
        iteration=iteration,
    )


def _cuts(thresholds: Thresholds | dict) -> tuple[float, float]:
    if isinstance(thresholds, dict):
        thresholds = Thresholds.from_dict(thresholds)
    return float(thresholds.positive), float(thresholds.typical)


def tier(score: float, thresholds: Thresholds | dict, fine_score: float | None = None) -> str:
    """The reading for one positive probability (and fine score, when the method has its own):
    negative / atypical positive / typical positive."""
    t_pos, t_typ = _cuts(thresholds)
    if score < t_pos:
        return NEGATIVE_TIER
    fine = score if fine_score is None else fine_score
    return ATYPICAL_TIER if fine < t_typ else TYPICAL_TIER


def tiers(
    scores: Sequence[float],
    thresholds: Thresholds | dict,
    fine_scores: Sequence[float] | None = None,
) -> list[str | None]:
    """:func:`tier` over many scores; NaN (an unreadable image) gives ``None``."""
    scores = np.asarray(scores, float)
    fine = scores if fine_scores is None else np.asarray(fine_scores, float)
    return [
        None if math.isnan(s) else tier(s, thresholds, f) for s, f in zip(scores, fine, strict=True)
    ]
