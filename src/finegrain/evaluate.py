"""Predictions + labels → AUC^FG and AUC, with counts of every case used or left out.

Which cases enter which metric (the paper measures AUC^FG over positive cases):

* **AUC** (ordinary): label ``1`` (positive) versus label ``0`` (negative).
* **AUC^FG**: the positive cases (label ``1``) that carry a subcategory, ``atypical`` (0)
  versus ``typical`` (1).
* Uncertain cases (label ``-1``) are left out of both unless ``include_uncertain=True``, which
  counts them as positives in both (the U-ones reading of "uncertain").
* Blank labels (not mentioned) are left out of both.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from finegrain.metrics import auc, auc_fg
from finegrain.observations import (
    NEGATIVE,
    POSITIVE,
    SUBCATEGORIES,
    TYPICAL,
    UNCERTAIN,
)

__all__ = ["score_predictions"]

#: Keys of the dict returned by :func:`score_predictions` (the metrics.jsonl contract).
SCORE_KEYS: tuple[str, ...] = (
    "auc_fg",
    "auc",
    "n_atypical",
    "n_typical",
    "n_positive",
    "n_negative",
)


def _labels_array(values: pd.Series, source: str, column: str) -> np.ndarray:
    """Coarse labels as float (1, 0, -1, NaN for blank); a ValueError names the bad row."""
    numeric = pd.to_numeric(values, errors="coerce").astype("Float64")
    text = values.astype("string").str.strip()
    bad = (numeric.isna() & values.notna() & (text != "")) | (
        numeric.notna() & ~numeric.isin([POSITIVE, NEGATIVE, UNCERTAIN])
    )
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy(dtype=bool))[0])
        raise ValueError(
            f"{source}: label {values.iloc[pos]!r} in column {column!r} at row {pos} "
            "is not one of 1, 0, -1 or empty"
        )
    return numeric.to_numpy(dtype=np.float64, na_value=np.nan)


def _subcategory_array(values: pd.Series, source: str, column: str) -> np.ndarray:
    """Subcategories as an object array of 'atypical' / 'typical' / None."""
    text = values.astype("string").str.strip().str.lower()
    text = text.mask(text == "", pd.NA)
    bad = text.notna() & ~text.isin(SUBCATEGORIES)
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy(dtype=bool))[0])
        raise ValueError(
            f"{source}: subcategory {values.iloc[pos]!r} in column {column!r} at row {pos} "
            "is not 'atypical', 'typical' or empty"
        )
    return text.to_numpy(dtype=object, na_value=None)


def _score_array(values: pd.Series, source: str, column: str) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() | ~np.isfinite(numeric.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy(dtype=bool))[0])
        raise ValueError(
            f"{source}: score {values.iloc[pos]!r} in column {column!r} at row {pos} is not a "
            f"finite number ({int(bad.sum())} such row(s))"
        )
    return numeric.to_numpy(dtype=np.float64)


def _require(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))}; "
            f"it has {', '.join(map(repr, map(str, frame.columns)))}"
        )


@dataclass
class _Selection:
    """The AUC and AUC^FG populations of one table, with what was left out and why."""

    y: np.ndarray  # AUC: 1 positive, 0 negative
    y_score: np.ndarray
    fg: np.ndarray  # AUC^FG: 1 typical, 0 atypical
    fg_score: np.ndarray
    left_out: Counter = field(default_factory=Counter)


def _select(
    label: np.ndarray, subcategory: np.ndarray, score: np.ndarray, include_uncertain: bool
) -> _Selection:
    positive = label == POSITIVE
    uncertain = label == UNCERTAIN
    if include_uncertain:
        positive = positive | uncertain
    negative = label == NEGATIVE
    used = positive | negative
    has_sub = np.array([s is not None for s in subcategory], dtype=bool)
    in_fg = positive & has_sub
    left_out: Counter = Counter()
    left_out["blank label"] = int(np.isnan(label).sum())
    if not include_uncertain:
        left_out["uncertain label"] = int(uncertain.sum())
    left_out["positive without subcategory (left out of AUC^FG only)"] = int(
        (positive & ~has_sub).sum()
    )
    left_out = Counter({k: v for k, v in left_out.items() if v})
    fg_sub = subcategory[in_fg]
    return _Selection(
        y=positive[used].astype(np.int8),
        y_score=score[used],
        fg=np.array([s == TYPICAL for s in fg_sub], dtype=np.int8),
        fg_score=score[in_fg],
        left_out=left_out,
    )


def score_predictions(frame: pd.DataFrame, *, include_uncertain: bool = False) -> dict[str, Any]:
    """AUC^FG, AUC and the class counts of one table of predictions (one split, one checkpoint).

    ``frame`` has the columns ``label`` (1 / 0 / -1 / blank), ``subcategory``
    (``atypical`` / ``typical`` / blank) and ``score`` (the positive probability). See the module
    docstring for which rows enter which metric. A metric whose classes are not both present is
    ``None`` (never an error), so the training loop can log it at any checkpoint.

    Returns ``{"auc_fg", "auc", "n_atypical", "n_typical", "n_positive", "n_negative"}``.

    >>> frame = pd.DataFrame({
    ...     "label": [1, 1, 1, 0, 0, -1],
    ...     "subcategory": ["atypical", "typical", "typical", None, None, "typical"],
    ...     "score": [0.6, 0.9, 0.5, 0.1, 0.7, 0.8]})
    >>> score_predictions(frame)
    {'auc_fg': 0.5, 'auc': 0.6666666666666666, 'n_atypical': 1, 'n_typical': 2, 'n_positive': 3, 'n_negative': 2}
    """
    _require(frame, ["label", "subcategory", "score"], "predictions")
    sel = _select(
        _labels_array(frame["label"], "predictions", "label"),
        _subcategory_array(frame["subcategory"], "predictions", "subcategory"),
        _score_array(frame["score"], "predictions", "score"),
        include_uncertain,
    )
    n_typical = int(sel.fg.sum())
    n_atypical = int(sel.fg.shape[0] - n_typical)
    n_positive = int(sel.y.sum())
    n_negative = int(sel.y.shape[0] - n_positive)
    return {
        "auc_fg": auc_fg(sel.fg, sel.fg_score) if n_atypical and n_typical else None,
        "auc": auc(sel.y, sel.y_score) if n_positive and n_negative else None,
        "n_atypical": n_atypical,
        "n_typical": n_typical,
        "n_positive": n_positive,
        "n_negative": n_negative,
    }
