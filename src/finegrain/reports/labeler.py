"""The report labeler: report text -> per-observation status, severity, change and subcategory.

The public API: :func:`label_report` (one text), :func:`explain_report` (why each label came out
so) and :func:`label_reports` (reports CSV -> labels CSV, and with ``explain`` the same reasons
as JSON lines). The work is done by :mod:`~finegrain.reports.engine` (mentions and their cues, per
sentence), :mod:`~finegrain.reports.aggregate` (one label per observation per study) and
:mod:`~finegrain.reports.labels_csv` (CSV input and output); see ``docs/division.md``.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

from finegrain.division import check_precedence
from finegrain.errors import FinegrainError
from finegrain.reports.aggregate import DEGREE_RULES, ObservationLabel, check_degrees, study_labels
from finegrain.reports.engine import UNASSESSED, Evidence, analyse, mention_evidence
from finegrain.reports.labels_csv import (
    LabelSummary,
    label_cells,
    label_columns,
    read_unique_reports,
)
from finegrain.reports.lexicon import OTHER_FINDING, Lexicon, default_lexicon

log = logging.getLogger(__name__)

__all__ = [
    "DEGREE_RULES",
    "LabelSummary",
    "ObservationLabel",
    "explain_report",
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


def _mention_record(ev: Evidence) -> dict:
    unassessed = ev.status == UNASSESSED
    return {
        "sentence": ev.sentence,
        "mention": ev.mention,
        "status": -1 if unassessed else ev.status,
        "unassessed": unassessed,
        "trigger": ev.trigger,
        "degrees": [{"words": w, "term": t, "current": now} for w, t, now in ev.degrees],
        "change": None if ev.change is None else {"words": ev.change[0], "term": ev.change[1]},
    }


def _explanations(labels: dict[str, ObservationLabel], evidence: list[Evidence]) -> list[dict]:
    """One record per observation that the report mentions (and one for No Finding when it is
    set or other abnormalities are mentioned), in :data:`OBSERVATIONS` order."""
    by_observation: dict[str, list[dict]] = {}
    for ev in evidence:
        record = _mention_record(ev)
        for obs in ev.observations:
            by_observation.setdefault(obs, []).append(record)
    out = []
    for obs, label in labels.items():
        mentions = by_observation.get(obs, [])
        if obs == OTHER_FINDING and label.status is None and not mentions:
            continue
        if obs != OTHER_FINDING and not mentions:
            continue
        out.append(
            {
                "observation": obs,
                "status": label.status,
                "severity": label.severity,
                "change": label.change,
                "subcategory": label.subcategory,
                "mentions": mentions,
            }
        )
    return out


def explain_report(
    text: str,
    *,
    lexicon: Lexicon | None = None,
    precedence: str = "severity",
    degrees: str = "most-significant",
) -> list[dict]:
    """Why each label of one report came out so: one record per observation mentioned, with
    the final label and, per mention, the sentence, the mention's words, its status, the
    ``trigger`` (the negation, hedge or exam-quality words that made it 0 or -1), and the
    degree and change words attached to it, as the labeler read them (lower case,
    de-identification marks as "deid"). No Finding has a record when it is set, or when other
    abnormalities are mentioned (its ``mentions``). Returns report text: never log it.

    >>> no_finding, ptx = explain_report("No PTX.")
    >>> no_finding["observation"], no_finding["status"], no_finding["mentions"]
    ('No Finding', 1, [])
    >>> ptx["observation"], ptx["status"], ptx["mentions"][0]["mention"], ptx["mentions"][0]["trigger"]
    ('Pneumothorax', 0, 'ptx', 'no')
    """
    check_precedence(precedence)
    check_degrees(degrees)
    lex = lexicon if lexicon is not None else default_lexicon()
    evidence: list[Evidence] = []
    found = analyse(text if isinstance(text, str) else "", lex, evidence)
    return _explanations(study_labels(found, precedence, degrees), evidence)


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
    explain: str | Path | None = None,
    encoding: str | None = None,
) -> LabelSummary:
    """Label every report of ``reports_csv`` and write the labels CSV ``out_csv`` atomically.

    ``encoding``: the file's text encoding (default: a byte-order mark's, else UTF-8, else
    Windows-1252 for a file without a UTF-8 character; :func:`finegrain.io.decode_text`).
    Undecodable bytes are replaced (and counted), empty reports give blank rows (counted). The
    output has one row per report id, in input order: a repeated id keeps its first row, and
    the rows left out are listed (id and line) in ``summary.duplicates`` and in a warning.
    With ``explain``, also write there (atomically) one JSON line per report and observation
    with the reasons of :func:`explain_report` and the report's ``id`` first; that file holds
    report text. Without it the labeler keeps its fast path (no evidence is collected).
    """
    from contextlib import nullcontext

    from tqdm import tqdm

    from finegrain.io import atomic_open, refuse_overwriting_input

    refuse_overwriting_input(out_csv, reports_csv)
    if explain is not None:
        refuse_overwriting_input(explain, reports_csv)
        if Path(explain).resolve() == Path(out_csv).resolve():
            raise FinegrainError(f"--explain {explain}: the same file as the labels CSV")
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
    reasons = atomic_open(explain, "w") if explain is not None else nullcontext()
    with atomic_open(out_csv, "w") as handle, reasons as lines:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([id_column, *label_columns()])
        for report_id, report in tqdm(rows, disable=not progress, unit=" reports", desc="label"):
            evidence: list[Evidence] | None = [] if lines is not None else None
            found = analyse(report, lex, evidence)
            if found is None:
                summary.empty += 1
            labels = study_labels(found, precedence, degrees)
            summary.count(labels)
            writer.writerow([report_id, *label_cells(labels)])
            if lines is not None and evidence is not None:
                for record in _explanations(labels, evidence):
                    lines.write(json.dumps({"id": report_id, **record}, ensure_ascii=False))
                    lines.write("\n")
    return summary
