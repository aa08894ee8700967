"""Labeler noise on the coarse labels, and its inverse (so that calibrated shares survive it).

The ``chexpert`` CSV carries each report's status with a little noise: ``FLIP`` of the positive
and uncertain cells swap, ``MISSED`` of the mentioned cells are left blank, and ``BLANK_ROW`` of the
rows are entirely blank. ``negbio`` then disagrees with ``chexpert`` in ``NEGBIO_DISAGREE`` of the
mentioned cells. ``MISSING_ROW`` of the studies have no row in either file (the index drops them,
which leaves the label shares unchanged).
"""

from __future__ import annotations

import numpy as np

from finegrain.errors import FinegrainError

FLIP = 0.015
MISSED = 0.01
BLANK_ROW = 0.01
NEGBIO_DISAGREE = 0.04
MISSING_ROW = 0.01


def add_labeler_noise(
    values: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``chexpert`` values (float, NaN = blank) with noise added; also the blank-row mask."""
    flip = rng.random(values.shape) < FLIP
    values = np.where(flip & (values == -1), 1.0, np.where(flip & (values == 1), -1.0, values))
    missed = (rng.random(values.shape) < MISSED) & ~np.isnan(values)
    values = np.where(missed, np.nan, values)
    blank_rows = rng.random(len(values)) < BLANK_ROW
    values[blank_rows] = np.nan
    return values, blank_rows


def negbio_from(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A second labeler's opinion: uncertain and positive swapped, negative left blank."""
    disagree = (rng.random(values.shape) < NEGBIO_DISAGREE) & ~np.isnan(values)
    swapped = np.select([values == -1, values == 1], [1.0, -1.0], default=np.nan)
    return np.where(disagree, swapped, values)


def before_noise(positive: float, uncertain: float, negative: float) -> tuple[float, ...]:
    """The reported shares whose noisy ``chexpert`` labels have the given shares.

    Returns ``(positive, uncertain, negative, blank)`` to draw; a ``ValueError`` when the target
    cannot be reached (a share would be negative).

    >>> [round(v, 4) for v in before_noise(0.068, 0.1276, 0.1026)]
    [0.0684, 0.1311, 0.1047, 0.6957]
    """
    keep = (1 - BLANK_ROW) * (1 - MISSED)
    t1, t2 = positive / keep, uncertain / keep
    det = (1 - FLIP) ** 2 - FLIP**2
    p1 = ((1 - FLIP) * t1 - FLIP * t2) / det
    p2 = ((1 - FLIP) * t2 - FLIP * t1) / det
    p0 = negative / keep
    blank = 1.0 - p1 - p2 - p0
    shares = (p1, p2, p0, blank)
    if min(shares) < 0:
        raise FinegrainError(
            f"label shares positive={positive}, uncertain={uncertain}, negative={negative} "
            "cannot be reached under the labeler noise"
        )
    return shares
