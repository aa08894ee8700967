"""Report labeling: sections, the plain-text lexicon, and the labeler (see docs/division.md)."""

from __future__ import annotations

from finegrain.reports.labeler import LabelSummary, ObservationLabel, label_report, label_reports
from finegrain.reports.lexicon import Lexicon, default_lexicon

__all__ = [
    "LabelSummary",
    "Lexicon",
    "ObservationLabel",
    "default_lexicon",
    "label_report",
    "label_reports",
]
