"""What the phantom knows about one finding: bands of severity, location, and the record of it.

A drawn finding's severity lives in one of two bands, *slight* and *significant*; the paper's
division rule gives atypical exactly for the slight band when the report words it faithfully.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Findings drawn on the image with a continuous severity.
DRAWN: tuple[str, ...] = ("Consolidation", "Edema", "Pleural Effusion", "Cardiomegaly")
SLIGHT_BAND = (0.06, 0.38)
SIGNIFICANT_BAND = (0.60, 1.00)

LOBES = {  # name -> (x, y) centre in normalised image coordinates (image left = patient right)
    "right lower lobe": (-0.40, 0.32),
    "right upper lobe": (-0.36, -0.32),
    "right middle lobe": (-0.28, 0.12),
    "left lower lobe": (0.42, 0.34),
    "left upper lobe": (0.36, -0.30),
    "lingula": (0.30, 0.14),
}


@dataclass
class Finding:
    """One observation in one study: true severity and course, and what the report says."""

    severity: float = 0.0
    prior: float = 0.0
    change: str = ""  # new / improved / worsened / stable / resolved / ""
    status: int | None = None
    severity_term: str = ""
    change_term: str = ""  # normalised Table 1 change cue written in the report
    change_phrase: str = ""
    subcategory: str = ""
    where: str = ""  # lobe or side
    state: str = ""  # coarse label drawn: positive / uncertain / negative / blank (calibrated)
    image_truth: str = ""  # what the image shows: absent / slight / significant / other


def band(rng: np.random.Generator, slight: bool) -> float:
    lo, hi = SLIGHT_BAND if slight else SIGNIFICANT_BAND
    return float(rng.uniform(lo, hi))
