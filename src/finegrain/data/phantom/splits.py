"""Subjects and splits: how many studies each subject has, and which split it belongs to.

By default the phantom splits subjects about 70 / 15 / 15 % into train / validate / test. With
``eval_studies`` it writes ``studies`` training studies and ``eval_studies`` studies in each of
validate and test: evaluation is inference only, so large evaluation splits are cheap, and
:func:`required_eval_studies` says how large they must be for a given number of atypical and
typical positives per observation.
"""

from __future__ import annotations

import math

import numpy as np

from finegrain.data.phantom.calibration import CALIBRATED, DEFAULT_PROFILE, load_calibration
from finegrain.data.phantom.knobs import PhantomKnobs
from finegrain.errors import FinegrainError

SPLIT_SHARES = {"train": 0.7, "validate": 0.15, "test": 0.15}


def _counts(
    rng: np.random.Generator, sizes: np.ndarray, shares: np.ndarray, total: int
) -> list[int]:
    counts: list[int] = []
    while sum(counts) < total:
        counts.append(
            int(
                sizes[min(int(np.searchsorted(shares, rng.random(), side="right")), len(sizes) - 1)]
            )
        )
    counts[-1] -= sum(counts) - total
    return counts


def subject_plan(
    rng: np.random.Generator,
    studies_per_subject: tuple[tuple[int, float], ...],
    studies: int,
    eval_studies: int | None,
) -> list[tuple[str, int]]:
    """``(split, number of studies)`` per subject, in the order subjects are written."""
    sizes = np.array([k for k, _ in studies_per_subject])
    shares = np.cumsum([v for _, v in studies_per_subject])
    if eval_studies is None:
        counts = _counts(rng, sizes, shares, studies)
        names = list(SPLIT_SHARES)
        splits = rng.choice(names, len(counts), p=list(SPLIT_SHARES.values()))
        return [(str(s), c) for s, c in zip(splits, counts, strict=True)]
    plan = []
    for split, total in (("train", studies), ("validate", eval_studies), ("test", eval_studies)):
        plan += [(split, c) for c in _counts(rng, sizes, shares, total)]
    order = rng.permutation(len(plan))  # subject ids do not reveal the split
    return [plan[i] for i in order]


def required_eval_studies(
    min_positives: int = 300,
    *,
    profile: str = DEFAULT_PROFILE,
    prevalence: float | dict[str, float] = 1.0,
    observations: tuple[str, ...] = CALIBRATED[:4],
    margin: float = 1.3,
) -> int:
    """Studies per evaluation split for ``min_positives`` atypical and typical positives each.

    Expected frontal images per study x positive share x atypical (or typical) share, from the
    calibration table, for the rarest of ``observations``; ``margin`` covers sampling variation
    (subjects are clustered). Check the counts in the index afterwards.

    >>> required_eval_studies(300) > 20000   # Consolidation: 6.8% positive, 19% of them atypical
    True
    """
    calibration = load_calibration(profile)
    knobs = PhantomKnobs(prevalence=prevalence)
    ap = calibration.ap_share
    frontal = (
        1 + ap * calibration.second_frontal["AP"] + (1 - ap) * calibration.second_frontal["PA"]
    )
    rarest = math.inf
    for obs in observations:
        positive = calibration.shares[obs].positive * knobs.prevalence_of(obs)
        atypical = calibration.atypical[obs]
        rarest = min(rarest, frontal * positive * min(atypical, 1 - atypical))
    if rarest <= 0:
        raise FinegrainError(f"some of {observations} has no atypical or no typical positives")
    return int(math.ceil(margin * min_positives / rarest))
