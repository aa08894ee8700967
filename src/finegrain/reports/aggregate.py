"""Study-level aggregation: the mentions of one report -> one :class:`ObservationLabel` per
observation.

Conventions (CheXpert): status ``1`` positive, ``0`` negative, ``-1`` uncertain, ``None`` not
mentioned. Mentions are aggregated positive > uncertain > negative. No Finding is ``1`` when no
mention of anything other than Support Devices (the 12 pathology observations and the "other
abnormalities" of ``mention/no_finding.txt``) is positive or uncertain, else blank; an empty
report is blank everywhere.

Across mentions of one observation, the cue of the last mention that carries the final status
and a cue wins (findings come before the impression, so the impression has the last word).
"""

from __future__ import annotations

from dataclasses import dataclass

from finegrain.division import divide
from finegrain.observations import NEGATIVE, OBSERVATIONS, POSITIVE, UNCERTAIN
from finegrain.reports.engine import Found
from finegrain.reports.lexicon import OTHER_FINDING


@dataclass(frozen=True)
class ObservationLabel:
    """Label of one observation in one report."""

    status: int | None  # 1 positive, 0 negative, -1 uncertain, None not mentioned
    severity: str | None  # normalised Table 1 term, e.g. "mild-to-moderate"
    change: str | None  # normalised Table 1 term, e.g. "improve"
    subcategory: str | None  # "atypical" | "typical" for status 1 and -1, else None


_BLANK = ObservationLabel(None, None, None, None)
#: mentioned devices are not findings: they do not prevent No Finding
_NOT_FINDING = "Support Devices"


def _aggregate_status(statuses: list[int]) -> int:
    """Positive > uncertain > negative; a mention the exam could not assess counts (as
    uncertain) only when it is all the report says about the finding."""
    if POSITIVE in statuses:
        return POSITIVE
    if UNCERTAIN in statuses:
        return UNCERTAIN
    if NEGATIVE in statuses:
        return NEGATIVE
    return UNCERTAIN  # only unassessed mentions


def _last(items: list[tuple[int, str]], status: int) -> str | None:
    for item_status, term in reversed(items):
        if item_status == status:
            return term
    return None


def study_labels(
    found: dict[str, Found] | None, precedence: str = "severity"
) -> dict[str, ObservationLabel]:
    """One label per observation (all 14) from the mentions of one report (``None``: nothing
    to label, all blank)."""
    if found is None:
        return dict.fromkeys(OBSERVATIONS, _BLANK)
    out: dict[str, ObservationLabel] = {}
    finding = False
    for obs, slot in found.items():
        status = _aggregate_status(slot.statuses)
        if status != NEGATIVE and obs != _NOT_FINDING:
            finding = True
        if obs == OTHER_FINDING:
            continue
        if status == NEGATIVE:
            out[obs] = ObservationLabel(status, None, None, None)
            continue
        severity = _last(slot.severities, status)
        change = _last(slot.changes, status)
        out[obs] = ObservationLabel(status, severity, change, divide(severity, change, precedence))
    labels = {obs: out.get(obs, _BLANK) for obs in OBSERVATIONS}
    labels["No Finding"] = _BLANK if finding else ObservationLabel(POSITIVE, None, None, None)
    return labels
