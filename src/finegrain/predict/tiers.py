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

:func:`fit_reading` is what ``finegrain calibrate`` fits: the probability's recalibration
(:mod:`finegrain.recalibration`, temperature scaling by default) and the thresholds of the
recalibrated probability. A strictly increasing map keeps every order, so those thresholds
give the same tiers as thresholds fitted on the model's own probabilities; the reading counts
the validation cases where they do not (float saturation, an isotonic map's flat steps).

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
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from finegrain.errors import FinegrainError
from finegrain.labels import check_labels, check_subcategories
from finegrain.observations import ATYPICAL, NEGATIVE, POSITIVE, TYPICAL
from finegrain.recalibration import Recalibration, describe, fit_recalibration

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
    #: the recalibration of the probability they were fitted after (its kind; ``none``: the
    #: model's own probability, as every threshold fitted before finegrain 0.4)
    calibration: str = "none"

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
    calibration: str = "none",
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
        calibration=calibration,
    )


@dataclass(frozen=True)
class Reading:
    """What ``finegrain calibrate`` stores in a checkpoint: the probability's recalibration
    (``None``: none) and the tier thresholds fitted after it."""

    recalibration: Recalibration | None
    thresholds: Thresholds
    #: validation cases whose tier differs from the tier that thresholds fitted on the model's
    #: own probabilities give (0 unless the map ties scores the model separates)
    changed: int = 0


def fit_reading(
    labels: Sequence,
    subcategories: Sequence,
    scores: Sequence,
    *,
    fine_scores: Sequence | None = None,
    calibration: str = "temperature",
    sensitivity: float = 0.95,
    method: str = "sensitivity",
    iteration: int | None = None,
) -> Reading:
    """Fit the recalibration of ``calibration`` (:data:`finegrain.recalibration.KINDS`) on the
    validation positives (label 1) against negatives (0), and the tier thresholds of the
    recalibrated probability; ``fine_scores``: a method's own fine score (not recalibrated),
    else the fine score is the (recalibrated) probability.

    The thresholds are :func:`fit_thresholds` on the model's own probabilities carried through
    the map (``t' = f(t)``). For a strictly increasing map they *are* the thresholds fitted on
    the recalibrated validation probabilities (the k-th highest score and Youden's best cut move
    with the map) and give the same tiers; a map that ties probabilities the model separates
    (float saturation, an isotonic step) cannot move a cut inside the tie, and
    :attr:`Reading.changed` counts the validation cases whose tier it changes.

    >>> r = fit_reading([1, 1, 1, 1, 0, 0, 0], ["atypical", "typical", "atypical", "typical",
    ...                 "", "", ""], [0.4, 0.95, 0.7, 0.99, 0.1, 0.6, 0.3], sensitivity=0.75)
    >>> r.recalibration.describe(), round(r.thresholds.positive, 3), r.changed
    ('temperature T = 0.6925', 0.773, 0)
    """
    labels_, subs, raw = _as_arrays(labels, subcategories, scores)
    common = {"sensitivity": sensitivity, "method": method, "iteration": iteration}
    own = fit_thresholds(labels_, subs, raw, fine_scores=fine_scores, **common)
    if calibration == "none":
        return Reading(None, own)
    known = np.isin(labels_, (POSITIVE, NEGATIVE))
    recalibration = fit_recalibration(
        labels_[known] == POSITIVE, raw[known], kind=calibration, iteration=iteration
    )
    probability = recalibration.apply(raw)
    positive = float(recalibration.apply([own.positive])[0])
    typical = (
        own.typical if fine_scores is not None else float(recalibration.apply([own.typical])[0])
    )
    pos, neg = labels_ == POSITIVE, labels_ == NEGATIVE
    thresholds = replace(
        own,
        positive=positive,
        typical=typical,
        achieved_sensitivity=float((probability[pos] >= positive).mean()),
        specificity=float((probability[neg] < positive).mean()) if neg.any() else None,
        calibration=calibration,
    )
    before = tiers(raw, own, fine_scores)
    after = tiers(probability, thresholds, fine_scores)
    changed = sum(a != b for a, b in zip(before, after, strict=True))
    return Reading(recalibration, thresholds, changed)


def reading_of(recalibration: Recalibration | None, thresholds: Thresholds) -> str:
    """Refuse thresholds fitted after another recalibration than the one stored beside them
    (their tiers would not be the ones fitted); returns the recalibration's description."""
    kind = "none" if recalibration is None else recalibration.kind
    if thresholds.calibration != kind:
        raise FinegrainError(
            f"the tier thresholds were fitted after calibration {thresholds.calibration!r}, but "
            f"the probability's calibration is {kind!r}; run `finegrain calibrate` again"
        )
    return describe(recalibration)


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


#: The rows of a tier table against the mined label, and against a phantom's image truth: the
#: i-th row is read right when its case gets the i-th tier of :data:`TIERS`.
MINED_ROWS = ("negative", "atypical", "typical")
TRUTH_ROWS = ("absent", "slight", "significant")


def mined_class(labels: Sequence, subcategories: Sequence) -> np.ndarray:
    """Each case's row of :data:`MINED_ROWS`: ``negative`` (label 0), ``atypical`` or
    ``typical`` (label 1 with that subcategory), ``""`` otherwise (uncertain, blank, a positive
    without a subcategory)."""
    labels_, subs, _ = _as_arrays(labels, subcategories, np.zeros(len(labels)))
    out = np.full(labels_.shape, "", dtype=object)
    out[labels_ == NEGATIVE] = "negative"
    for sub in (ATYPICAL, TYPICAL):
        out[(labels_ == POSITIVE) & (subs == sub)] = sub
    return out


def tier_table(
    reference: Sequence, predicted: Sequence, rows: Sequence[str] = MINED_ROWS
) -> pd.DataFrame:
    """The reading a clinician meets: counts of each predicted tier (columns :data:`TIERS`) per
    ``reference`` class (index ``rows``; a case of any other class is left out), with ``n`` and
    ``share_right`` (the share of the row given the tier in the same position: negative,
    atypical positive, typical positive), NaN for an empty row.

    >>> tier_table(["negative", "typical", "typical", ""],
    ...            ["negative", "typical positive", "atypical positive", "negative"])
    ...                                          # doctest: +NORMALIZE_WHITESPACE
              negative  atypical positive  typical positive  n  share_right
    negative         1                  0                 0  1          1.0
    atypical         0                  0                 0  0          NaN
    typical          0                  1                 1  2          0.5
    """
    rows = list(rows)
    if len(rows) != len(TIERS):
        raise FinegrainError(f"a tier table has {len(TIERS)} rows, got {rows}")
    ref = pd.Series(np.asarray(reference, dtype=object))
    pred = pd.Series(np.asarray(predicted, dtype=object))
    if len(ref) != len(pred):
        raise FinegrainError(f"{len(ref)} reference classes but {len(pred)} predicted tiers")
    unknown = set(pred[ref.isin(rows)].dropna()) - set(TIERS)
    if unknown:
        raise FinegrainError(f"unknown tier(s) {sorted(unknown)}; tiers are {TIERS}")
    keep = ref.isin(rows) & pred.notna()
    counts = pd.crosstab(
        pd.Categorical(ref[keep], categories=rows),
        pd.Categorical(pred[keep], categories=TIERS),
        dropna=False,
    )
    table = pd.DataFrame(counts.to_numpy(dtype=int), index=rows, columns=list(TIERS))
    table["n"] = table[list(TIERS)].sum(axis=1)
    right = np.diag(table[list(TIERS)].to_numpy())
    with np.errstate(invalid="ignore", divide="ignore"):
        table["share_right"] = np.where(table["n"] > 0, right / table["n"].to_numpy(), np.nan)
    return table
