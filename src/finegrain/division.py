"""The paper's division rule: (severity cue, change cue) -> atypical / typical.

Table 1 of Peng et al. lists the cue words. A positive (or uncertain) observation whose cues are
slight or improving is *atypical*; one whose cues are significant or worsening is *typical*; one
with no cue at all is *typical* (the paper's "no fine label" rule).

When the two dimensions disagree ("moderate effusion, improved"), ``precedence`` decides:

- ``"severity"`` (default): the current severity decides when present, else the change.
- ``"change"``: the change decides when present, else the severity.
- ``"typical-wins"``: typical if either dimension is typical.
- ``"atypical-wins"``: atypical if either dimension is atypical.

>>> divide("mild", None)
'atypical'
>>> divide("moderate", "improve")
'typical'
>>> divide("moderate", "improve", precedence="change")
'atypical'
>>> divide(None, None)
'typical'
"""

from __future__ import annotations

from finegrain.errors import FinegrainError
from finegrain.observations import ATYPICAL, TYPICAL

#: Table 1, severity dimension: normalised term -> side.
SEVERITY_CUES: dict[str, str] = {
    "trace": ATYPICAL,
    "small": ATYPICAL,
    "tiny": ATYPICAL,
    "minor": ATYPICAL,
    "minimal": ATYPICAL,
    "mild": ATYPICAL,
    "mild-to-moderate": ATYPICAL,
    "large": TYPICAL,
    "massive": TYPICAL,
    "substantial": TYPICAL,
    "moderate": TYPICAL,
    "moderate-to-severe": TYPICAL,
    "acute": TYPICAL,
    "severe": TYPICAL,
}

#: Table 1, change dimension: normalised term -> side.
CHANGE_CUES: dict[str, str] = {
    "clear": ATYPICAL,
    "resolution": ATYPICAL,
    "improve": ATYPICAL,
    "decrease": ATYPICAL,
    "progress": TYPICAL,
    "worsen": TYPICAL,
    "increase": TYPICAL,
}

#: Severity terms from least to most significant: decides between several degrees of one
#: finding in one study (``finegrain.reports.aggregate``). Each side of Table 1 keeps its
#: place (every atypical term ranks below every typical one).
SEVERITY_ORDER: tuple[str, ...] = (
    "trace",
    "minimal",
    "tiny",
    "minor",
    "small",
    "mild",
    "mild-to-moderate",
    "acute",
    "moderate",
    "substantial",
    "moderate-to-severe",
    "large",
    "severe",
    "massive",
)

#: The accepted values of ``precedence``.
PRECEDENCES: tuple[str, ...] = ("severity", "change", "typical-wins", "atypical-wins")


def _side(term: str | None, table: dict[str, str], dimension: str) -> str | None:
    if term is None or term == "":
        return None
    try:
        return table[term]
    except KeyError:
        raise FinegrainError(
            f"unknown {dimension} cue {term!r}; expected one of: {', '.join(table)}"
        ) from None


def check_precedence(precedence: str) -> str:
    """Return ``precedence`` if valid, else raise a ``ValueError`` listing the choices."""
    if precedence not in PRECEDENCES:
        raise FinegrainError(
            f"unknown precedence {precedence!r}; expected one of: {', '.join(PRECEDENCES)}"
        )
    return precedence


def divide(severity: str | None, change: str | None, precedence: str = "severity") -> str:
    """Divide a positive observation into ``"atypical"`` or ``"typical"`` from its cues.

    ``severity`` and ``change`` are normalised Table 1 terms (keys of :data:`SEVERITY_CUES` and
    :data:`CHANGE_CUES`) or ``None``. No cue at all gives ``"typical"``.
    """
    check_precedence(precedence)
    sev = _side(severity, SEVERITY_CUES, "severity")
    chg = _side(change, CHANGE_CUES, "change")
    if sev is None and chg is None:
        return TYPICAL
    if precedence == "severity":
        return sev or chg  # type: ignore[return-value]
    if precedence == "change":
        return chg or sev  # type: ignore[return-value]
    if precedence == "typical-wins":
        return TYPICAL if TYPICAL in (sev, chg) else ATYPICAL
    return ATYPICAL if ATYPICAL in (sev, chg) else TYPICAL
