"""Report labeling: sections, the plain-text lexicon, and the labeler (see docs/division.md)."""

from __future__ import annotations

from finegrain.reports.labeler import (
    LabelSummary,
    ObservationLabel,
    explain_report,
    label_report,
    label_reports,
)
from finegrain.reports.lexicon import Lexicon, default_lexicon

__all__ = [
    "LabelSummary",
    "Lexicon",
    "ObservationLabel",
    "default_lexicon",
    "explain_report",
    "label_report",
    "label_reports",
]
