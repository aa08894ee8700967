"""The 14 CheXpert observations: the one source of truth for names and column names."""

from __future__ import annotations

from finegrain.errors import FinegrainError

OBSERVATIONS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Lesion",
    "Lung Opacity",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)

#: Coarse label values in the CheXpert convention (blank = not mentioned is ``None``/empty).
POSITIVE, NEGATIVE, UNCERTAIN = 1, 0, -1
COARSE_VALUES: frozenset[int] = frozenset({POSITIVE, NEGATIVE, UNCERTAIN})

#: Fine-grained subcategories of positive (and uncertain-positive) cases.
ATYPICAL, TYPICAL = "atypical", "typical"
SUBCATEGORIES: tuple[str, str] = (ATYPICAL, TYPICAL)


def check_observation(name: str) -> str:
    """Return ``name`` if it is one of the 14 observations, else raise a ``ValueError`` listing them.

    Matching is exact but forgiving about case and surrounding space:

    >>> check_observation("pleural effusion")
    'Pleural Effusion'
    """
    wanted = name.strip().casefold()
    for obs in OBSERVATIONS:
        if obs.casefold() == wanted:
            return obs
    raise FinegrainError(
        f"unknown observation {name!r}; expected one of: {', '.join(OBSERVATIONS)}"
    )


def subcategory_column(observation: str) -> str:
    """Column holding the atypical/typical subcategory of ``observation``."""
    return f"{observation} subcategory"


def cue_column(observation: str) -> str:
    """Optional index column: whether the labeler found a severity or change cue for a
    positive / uncertain ``observation`` (``yes`` / ``no``; empty otherwise)."""
    return f"{observation} cue"


def severity_column(observation: str) -> str:
    """Column holding the normalised severity cue of ``observation``."""
    return f"{observation} severity"


def change_column(observation: str) -> str:
    """Column holding the normalised change cue of ``observation``."""
    return f"{observation} change"
