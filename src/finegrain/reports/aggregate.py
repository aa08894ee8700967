"""Study-level aggregation: the mentions of one report -> one :class:`ObservationLabel` per
observation.

Conventions (CheXpert): status ``1`` positive, ``0`` negative, ``-1`` uncertain, ``None`` not
mentioned. Mentions are aggregated positive > uncertain > negative. No Finding is ``1`` when no
mention of anything other than Support Devices (the 12 pathology observations and the "other
abnormalities" of ``mention/no_finding.txt``) is positive or uncertain, else blank; an empty
report is blank everywhere.

Degrees across mentions (``degrees``, see ``docs/division.md``): among the degrees attached to
mentions with the final status, a degree explicitly marked current ("now small") wins over the
others; then ``"most-significant"`` (default) takes the most significant one (by
:data:`finegrain.division.SEVERITY_ORDER`), so that "moderate right and small left effusions" is
moderate whatever the order; ``"last"`` takes the last one. Change: the change of the last
mention that carries the final status and a change cue (findings come before the impression, so
the impression has the last word).
"""

from __future__ import annotations

from dataclasses import dataclass

from finegrain.division import SEVERITY_ORDER, divide
from finegrain.errors import FinegrainError
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


#: The accepted values of ``degrees``: how several degrees of one finding become one.
DEGREE_RULES: tuple[str, ...] = ("most-significant", "last")
_RANK = {term: rank for rank, term in enumerate(SEVERITY_ORDER)}


def check_degrees(degrees: str) -> str:
    """Return ``degrees`` if valid, else raise a ``ValueError`` listing the choices."""
    if degrees not in DEGREE_RULES:
        raise FinegrainError(
            f"unknown degrees rule {degrees!r}; expected one of: {', '.join(DEGREE_RULES)}"
        )
    return degrees


def _degree(items: list[tuple[int, str, bool]], status: int, degrees: str) -> str | None:
    mine = [(term, now) for item_status, term, now in items if item_status == status]
    if not mine:
        return None
    if any(now for _, now in mine):
        mine = [item for item in mine if item[1]]  # "now small" is the degree it has now
    if degrees == "last":
        return mine[-1][0]
    return max(mine, key=lambda item: _RANK[item[0]])[0]


def _last(items: list[tuple[int, str]], status: int) -> str | None:
    for item_status, term in reversed(items):
        if item_status == status:
            return term
    return None


def study_labels(
    found: dict[str, Found] | None,
    precedence: str = "severity",
    degrees: str = "most-significant",
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
        severity = _degree(slot.severities, status, degrees)
        change = _last(slot.changes, status)
        out[obs] = ObservationLabel(status, severity, change, divide(severity, change, precedence))
    labels = {obs: out.get(obs, _BLANK) for obs in OBSERVATIONS}
    labels["No Finding"] = _BLANK if finding else ObservationLabel(POSITIVE, None, None, None)
    return labels
