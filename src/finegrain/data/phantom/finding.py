"""What the phantom knows about one finding: its severity, its lesion, location, and the record.

Two designs draw severity (``design`` of :func:`~finegrain.data.phantom.make_phantom`):

- ``continuum`` (format 3, the default since 0.4): a drawn finding's true severity is a number
  in [:data:`SEVERITY_MIN`, 1]; its image truth is *slight* below :data:`SEVERITY_CUT` and
  *significant* from it on. Each lesion also has its own extent, density and position
  (:class:`Finding` ``extent``, ``density``, ``offset_x``, ``offset_y``), so neighbouring
  severities overlap on the image, and a reader with noisy cut-points words the report
  (:mod:`~finegrain.data.phantom.reader`).
- ``bands`` (format 2, finegrain 0.2-0.3, kept to reproduce their phantoms byte for byte): the
  severity lives in one of two bands that never meet, :data:`SLIGHT_BAND` and
  :data:`SIGNIFICANT_BAND`, and the report words it faithfully.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Findings drawn on the image with a continuous severity.
DRAWN: tuple[str, ...] = ("Consolidation", "Edema", "Pleural Effusion", "Cardiomegaly")
#: The designs (see the module docstring) and the phantom format each writes.
DESIGNS: dict[str, int] = {"continuum": 3, "bands": 2}
DEFAULT_DESIGN = "continuum"
#: ``continuum``: image truth is slight below the cut, significant from it on; the smallest
#: severity drawn.
SEVERITY_CUT = 0.5
SEVERITY_MIN = 0.05
#: ``bands``: the two severity bands (the cut lies between them, so it divides them too).
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
    # the lesion's own appearance (continuum design; 1 / 0 in the bands design): multipliers of
    # its extent and density, and its offset from its site (normalised image coordinates)
    extent: float = 1.0
    density: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0
    #: the severity the report's reader saw (continuum design; NaN where nobody graded it)
    reader_severity: float = float("nan")


def truth_of(severity: float) -> str:
    """The image truth of a drawn severity: ``absent``, ``slight`` or ``significant``."""
    if severity <= 0:
        return "absent"
    return "slight" if severity < SEVERITY_CUT else "significant"


def band(rng: np.random.Generator, slight: bool) -> float:
    lo, hi = SLIGHT_BAND if slight else SIGNIFICANT_BAND
    return float(rng.uniform(lo, hi))
