"""The calibration table: real label statistics the default phantom reproduces.

A *profile* is a pair of files under ``calibration/`` (package data), written by
``benchmarks/calibrate_phantom.py``: ``<profile>.csv`` (per observation: the shares of positive /
uncertain / negative / blank labels among frontal images, and, among positives in real reports,
the shares that are atypical and that carry no cue) and ``<profile>.json`` (views, images per
study, studies per subject, sources). See ``docs/phantom.md``.

>>> calibration = load_calibration()
>>> round(calibration.shares["Consolidation"].positive, 3)
0.068
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from finegrain.errors import FinegrainError
from finegrain.observations import OBSERVATIONS

CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"
DEFAULT_PROFILE = "chexpert-frontal"
#: Profiles shipped with the package. MIMIC-CXR-JPG's own label counts were not found in a
#: citable public source, so there is no ``mimic`` profile (docs/phantom.md).
PROFILES: dict[str, str] = {
    "chexpert-frontal": "CheXpert training labels, frontal (AP/PA) images; cues from OpenI reports",
}
#: Observations whose labels and image truth the phantom draws from the calibration table.
CALIBRATED: tuple[str, ...] = (
    "Consolidation",
    "Edema",
    "Pleural Effusion",
    "Cardiomegaly",
    "Atelectasis",
)
STATES: tuple[str, ...] = ("positive", "uncertain", "negative", "blank")
_COLUMNS = ("observation", *STATES, "images", "atypical", "no_cue", "reports_positive")


@dataclass(frozen=True)
class LabelShares:
    """Shares of the four coarse labels among frontal images (they sum to 1)."""

    positive: float
    uncertain: float
    negative: float
    blank: float

    def as_tuple(self) -> tuple[float, float, float, float]:
        """``(positive, uncertain, negative, blank)``, in :data:`STATES` order."""
        return (self.positive, self.uncertain, self.negative, self.blank)


@dataclass(frozen=True)
class Calibration:
    """One calibration profile (see :func:`load_calibration`)."""

    profile: str
    shares: dict[str, LabelShares]  # per observation, all 14
    atypical: dict[str, float]  # share of atypical among positives (real reports)
    no_cue: dict[str, float]  # share of positives with neither severity nor change cue
    ap_share: float  # share of studies whose frontal view is AP
    second_frontal: dict[str, float]  # share of studies with a second frontal image, by view
    lateral: dict[str, float]  # share of studies with a lateral image, by view
    studies_per_subject: tuple[tuple[int, float], ...]  # (count, share), shares sum to 1
    metadata: dict


def _share(value: object, where: str) -> float:
    share = float(value)  # type: ignore[arg-type]
    if not 0.0 <= share <= 1.0:
        raise FinegrainError(f"{where}: share {share} outside [0, 1]")
    return share


def load_calibration(profile: str = DEFAULT_PROFILE) -> Calibration:
    """Read calibration profile ``profile`` (one of :data:`PROFILES`) from the package data."""
    if profile not in PROFILES:
        raise FinegrainError(f"unknown calibration profile {profile!r}; known: {sorted(PROFILES)}")
    table_path = CALIBRATION_DIR / f"{profile}.csv"
    meta_path = CALIBRATION_DIR / f"{profile}.json"
    table = pd.read_csv(table_path, keep_default_na=False)
    missing = [c for c in _COLUMNS if c not in table.columns]
    if missing:
        raise FinegrainError(f"{table_path}: columns {missing} missing")
    if sorted(table["observation"]) != sorted(OBSERVATIONS):
        raise FinegrainError(f"{table_path}: needs one row per observation {list(OBSERVATIONS)}")
    shares, atypical, no_cue = {}, {}, {}
    for line, row in enumerate(table.itertuples(index=False), start=2):
        where = f"{table_path}: line {line} ({row.observation})"
        values = tuple(_share(getattr(row, s), f"{where} {s}") for s in STATES)
        if abs(sum(values) - 1.0) > 2e-3:
            raise FinegrainError(f"{where}: label shares sum to {sum(values):.4f}, not 1")
        shares[row.observation] = LabelShares(*values)
        atypical[row.observation] = _share(row.atypical, f"{where} atypical")
        no_cue[row.observation] = _share(row.no_cue, f"{where} no_cue")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    per_subject = tuple(sorted((int(k), float(v)) for k, v in meta["studies_per_subject"].items()))
    total = sum(v for _, v in per_subject)
    per_subject = tuple((k, v / total) for k, v in per_subject)
    return Calibration(
        profile=profile,
        shares=shares,
        atypical=atypical,
        no_cue=no_cue,
        ap_share=_share(meta["ap_share_of_studies"], f"{meta_path}: ap_share_of_studies"),
        second_frontal={k: float(v) for k, v in meta["second_frontal"].items()},
        lateral={k: float(v) for k, v in meta["lateral"].items()},
        studies_per_subject=per_subject,
        metadata=meta,
    )
