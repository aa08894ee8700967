"""The report labeler: report text -> per-observation status, severity, change and subcategory.

The public API: :func:`label_report` (one text) and :func:`label_reports` (reports CSV -> labels
CSV). The work is done by :mod:`~finegrain.reports.engine` (mentions and their cues, per
sentence), :mod:`~finegrain.reports.aggregate` (one label per observation per study) and
:mod:`~finegrain.reports.labels_csv` (CSV input and output); see ``docs/division.md``.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from finegrain.division import check_precedence
from finegrain.reports.aggregate import DEGREE_RULES, ObservationLabel, check_degrees, study_labels
from finegrain.reports.engine import analyse, mention_evidence
from finegrain.reports.labels_csv import (
    LabelSummary,
    label_cells,
    label_columns,
    read_unique_reports,
)
from finegrain.reports.lexicon import Lexicon, default_lexicon

log = logging.getLogger(__name__)

__all__ = [
    "DEGREE_RULES",
    "LabelSummary",
    "ObservationLabel",
    "label_columns",
    "label_report",
    "label_reports",
    "mention_evidence",
]


def label_report(
    text: str,
    *,
    lexicon: Lexicon | None = None,
    precedence: str = "severity",
    degrees: str = "most-significant",
) -> dict[str, ObservationLabel]:
    """Label one report: a dict with all 14 observations -> :class:`ObservationLabel`.

    ``precedence`` decides between a severity and a change cue (:func:`finegrain.division.divide`);
    ``degrees`` between several degrees of one finding (one of :data:`DEGREE_RULES`).

    >>> labels = label_report("FINDINGS: Small left pleural effusion. No pneumothorax.")
    >>> labels["Pleural Effusion"]
    ObservationLabel(status=1, severity='small', change=None, subcategory='atypical')
    >>> labels["Pneumothorax"].status
    0
    """
    check_precedence(precedence)
    check_degrees(degrees)
    lex = lexicon if lexicon is not None else default_lexicon()
    return study_labels(analyse(text if isinstance(text, str) else "", lex), precedence, degrees)


def label_reports(
    reports_csv: str | Path,
    out_csv: str | Path,
    *,
    id_column: str = "id",
    text_column: str = "report",
    lexicon_dir: str | Path | None = None,
    precedence: str = "severity",
    degrees: str = "most-significant",
    progress: bool = False,
    encoding: str | None = None,
) -> LabelSummary:
    """Label every report of ``reports_csv`` and write the labels CSV ``out_csv`` atomically.

    ``encoding``: the file's text encoding (default: a byte-order mark's, else UTF-8, else
    Windows-1252 for a file without a UTF-8 character; :func:`finegrain.io.decode_text`).
    Undecodable bytes are replaced (and counted), empty reports give blank rows (counted). The
    output has one row per report id, in input order: a repeated id keeps its first row, and
    the rows left out are listed (id and line) in ``summary.duplicates`` and in a warning.
    """
    from tqdm import tqdm

    from finegrain.io import atomic_open, refuse_overwriting_input

    refuse_overwriting_input(out_csv, reports_csv)
    check_precedence(precedence)
    check_degrees(degrees)
    lex = Lexicon.load(lexicon_dir)
    path = Path(reports_csv)
    rows, duplicates, replaced, decoded_as = read_unique_reports(
        path, id_column, text_column, encoding=encoding
    )
    summary = LabelSummary(
        reports=len(rows), decode_replaced=replaced, duplicates=duplicates, decoded_as=decoded_as
    )
    if duplicates:
        log.warning("%s: %s", path, summary.format_duplicates())
    with atomic_open(out_csv, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([id_column, *label_columns()])
        for report_id, report in tqdm(rows, disable=not progress, unit=" reports", desc="label"):
            found = analyse(report, lex)
            if found is None:
                summary.empty += 1
            labels = study_labels(found, precedence, degrees)
            summary.count(labels)
            writer.writerow([report_id, *label_cells(labels)])
    return summary
