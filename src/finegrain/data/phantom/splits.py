"""Subjects and splits: how many studies each subject has, and which split it belongs to.

By default the phantom splits subjects about 70 / 15 / 15 % into train / validate / test. With
``eval_studies`` it writes ``studies`` training studies and ``eval_studies`` studies in each of
validate and test: evaluation is inference only, so large evaluation splits are cheap, and
:func:`required_eval_studies` says how large they must be for a given number of atypical and
typical positives per observation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


@dataclass(frozen=True)
class DatasetCounts:
    """A dataset's subject, study and image counts, and its images per split."""

    subjects: int
    studies: int
    images: int
    split_images: dict[str, int]


#: MIMIC-CXR-JPG v2.0.0 (PhysioNet): 65,379 patients, 227,835 studies, 377,110 JPEGs; official
#: split 368,960 / 2,991 / 5,159 images in train / validate / test.
MIMIC_CXR_JPG = DatasetCounts(
    subjects=65_379,
    studies=227_835,
    images=377_110,
    split_images={"train": 368_960, "validate": 2_991, "test": 5_159},
)


def scaled_counts(studies: int, full: DatasetCounts = MIMIC_CXR_JPG) -> DatasetCounts:
    """``full``'s counts scaled to ``studies`` studies (subjects, images and every split's
    images in ``full``'s ratios; at least one subject and one image per study and split).

    >>> scaled_counts(227_835) == MIMIC_CXR_JPG
    True
    >>> scaled_counts(10_000).images, scaled_counts(10_000).subjects
    (16552, 2870)
    """
    if studies < 3:
        raise FinegrainError(f"a dataset with MIMIC's split needs >= 3 studies, got {studies}")
    factor = studies / full.studies
    images = max(studies, round(full.images * factor))
    evaluation = {
        name: max(1, round(n * factor)) for name, n in full.split_images.items() if name != "train"
    }
    return DatasetCounts(
        subjects=max(3, min(studies, round(full.subjects * factor))),
        studies=studies,
        images=images,
        split_images={"train": images - sum(evaluation.values()), **evaluation},
    )


def counts_plan(rng: np.random.Generator, counts: DatasetCounts) -> list[tuple[str, list[int]]]:
    """``(split, images of each study)`` per subject with exactly ``counts``' subjects, studies,
    images and images per split (subjects never cross splits), in the order subjects are written.

    Every subject has at least one study and every study at least one image; the rest are spread
    with exponential weights (long tails, as real patients and studies have). Evaluation splits
    take whole subjects until their share of the studies is reached, then get exactly their
    images.
    """
    subjects, studies = counts.subjects, counts.studies
    if not 1 <= subjects <= studies <= counts.images:
        raise FinegrainError(f"inconsistent counts: {counts}")
    per_subject = 1 + rng.multinomial(studies - subjects, _weights(rng, subjects))
    split_of = np.full(subjects, "train", dtype=object)
    order = rng.permutation(subjects)
    start = 0
    for name in ("validate", "test"):
        want = max(1, round(studies * counts.split_images[name] / counts.images))
        taken = np.cumsum(per_subject[order[start:]])
        stop = start + int(np.searchsorted(taken, want)) + 1
        split_of[order[start:stop]] = name
        start = stop
    plan: list[tuple[str, list[int]]] = [("", [])] * subjects
    for name, n_images in counts.split_images.items():
        members = np.flatnonzero(split_of == name)
        n_studies = int(per_subject[members].sum())
        if n_studies > n_images:
            raise FinegrainError(f"{name}: {n_studies} studies but only {n_images} images")
        per_study = 1 + rng.multinomial(n_images - n_studies, _weights(rng, n_studies))
        bounds = np.concatenate([[0], np.cumsum(per_subject[members])])
        for k, subject in enumerate(members):
            plan[subject] = (name, per_study[bounds[k] : bounds[k + 1]].tolist())
    return plan


def _weights(rng: np.random.Generator, n: int) -> np.ndarray:
    weights = rng.exponential(size=n)
    return weights / weights.sum()
