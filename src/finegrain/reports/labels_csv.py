"""The labels CSV: reading a reports CSV, the labels CSV columns, and the summary of a run."""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

from finegrain.errors import FinegrainError
from finegrain.io import decode_text, header_list, table_format
from finegrain.observations import (
    NEGATIVE,
    OBSERVATIONS,
    POSITIVE,
    UNCERTAIN,
    change_column,
    severity_column,
    subcategory_column,
)
from finegrain.reports.aggregate import ObservationLabel

STATUS_NAMES = {POSITIVE: "positive", NEGATIVE: "negative", UNCERTAIN: "uncertain", None: "blank"}


@dataclass
class LabelSummary:
    """What :func:`label_reports` read and produced."""

    reports: int = 0
    empty: int = 0  # nothing to label (blank, or only skipped sections): all columns blank
    decode_replaced: int = 0  # reports with undecodable bytes, replaced by U+FFFD
    #: how the reports file was decoded when not as UTF-8 (:func:`finegrain.io.decode_text`)
    decoded_as: str = ""
    #: rows left out because their id was seen before: (id, line, line of the kept row)
    duplicates: list[tuple[str, int, int]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {
            obs: dict.fromkeys(
                ("positive", "uncertain", "negative", "blank", "atypical", "typical"), 0
            )
            for obs in OBSERVATIONS
        }
    )

    def count(self, labels: dict[str, ObservationLabel]) -> None:
        """Add one report's labels to the counts."""
        for obs, c in self.counts.items():
            lab = labels[obs]
            c[STATUS_NAMES[lab.status]] += 1
            if lab.subcategory:
                c[lab.subcategory] += 1

    def format_duplicates(self, limit: int = 5) -> str:
        """One line: the duplicate ids left out, with their lines (the first ``limit``)."""
        shown = "; ".join(
            f"id {rid!r} on line {line} (kept line {kept})"
            for rid, line, kept in self.duplicates[:limit]
        )
        more = len(self.duplicates) - limit
        return (
            f"duplicate ids: {len(self.duplicates)} row(s) left out, the first row of each id "
            f"kept: {shown}" + (f"; and {more} more" if more > 0 else "")
        )

    def format(self) -> str:
        """A plain-text table (no report text)."""
        lines = [
            f"reports read: {self.reports}   empty: {self.empty}   "
            f"undecodable bytes replaced in: {self.decode_replaced}",
            *(
                [f"read as {self.decoded_as}; --encoding reads it otherwise"]
                if self.decoded_as
                else []
            ),
            *(
                [
                    "some bytes are not UTF-8 (replaced by U+FFFD): if the file is in another "
                    "encoding, give it with --encoding (e.g. latin-1, cp1252)"
                ]
                if self.decode_replaced
                else []
            ),
            *([self.format_duplicates()] if self.duplicates else []),
            f"{'observation':<28}{'1':>8}{'-1':>8}{'0':>8}{'blank':>8}{'atypical':>10}{'typical':>9}",
        ]
        for obs, c in self.counts.items():
            lines.append(
                f"{obs:<28}{c['positive']:>8}{c['uncertain']:>8}{c['negative']:>8}"
                f"{c['blank']:>8}{c['atypical']:>10}{c['typical']:>9}"
            )
        return "\n".join(lines)


def label_columns() -> list[str]:
    """Columns of a labels CSV after ``id``."""
    columns = []
    for obs in OBSERVATIONS:
        columns += [obs, severity_column(obs), change_column(obs), subcategory_column(obs)]
    return columns


def label_cells(labels: dict[str, ObservationLabel]) -> list[int | str]:
    """The cells of one labels CSV row after ``id`` (empty cells for None)."""
    out: list[int | str] = []
    for obs in OBSERVATIONS:
        lab = labels[obs]
        out += [
            "" if lab.status is None else lab.status,
            lab.severity or "",
            lab.change or "",
            lab.subcategory or "",
        ]
    return out


def read_reports(
    path: Path, id_column: str, text_column: str, *, encoding: str | None = None
) -> tuple[list[tuple[str, str, int]], int, str]:
    """``[(id, report, line)]`` of a reports CSV, in order (``line``: the file line where the
    row starts), how many reports had undecodable bytes (replaced by U+FFFD), and how the file
    was decoded (``""``: UTF-8; :func:`finegrain.io.decode_text`: ``encoding`` when given, else
    a byte-order mark's, UTF-8, or Windows-1252 for a file with no UTF-8 character).

    A TSV or a gzipped file is read as such (:func:`finegrain.io.table_format`); ids are
    trimmed. Errors name the file and line: a missing column, a header and no rows, a blank id,
    a row with the wrong number of fields, or an unterminated quote (which would otherwise
    merge the rows after it into one report).
    """
    compression, separator = table_format(path)
    data = path.read_bytes()
    if compression == "gzip":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise FinegrainError(f"{path}: a damaged gzip file ({exc})") from None
    text, decoded_as, replaced_file = decode_text(data, path, encoding)
    csv.field_size_limit(1 << 30)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=True)
    header = next(reader, None)
    if header is None:
        raise FinegrainError(
            f"{path}: empty file (expected a header with {id_column!r}, {text_column!r})"
        )
    for column in (id_column, text_column):
        if column not in header:
            raise FinegrainError(
                f"{path}: no column {column!r} (columns: {header_list(header)}); "
                "use --id-column / --text-column"
            )
    i_id, i_text = header.index(id_column), header.index(text_column)
    rows = []
    replaced = 0
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise FinegrainError(
                f"{path}: line {start}: a quoted field that starts on this row is not closed "
                f"properly (CSV error by line {reader.line_num}: {exc}); the rows after it would "
                'merge into one report. Close the quote, or double quotes inside a quoted field ("")'
            ) from None
        line, start = start, reader.line_num + 1
        if not row:
            continue
        if len(row) != len(header):
            raise FinegrainError(
                f"{path}: line {line}: {len(row)} fields, expected {len(header)} "
                f"({header_list(header)}); is a quote or a comma unbalanced?"
            )
        report, report_id = row[i_text], row[i_id].strip()
        if not report_id:
            raise FinegrainError(f"{path}: line {line}: empty {id_column!r}")
        if replaced_file and "\ufffd" in report:
            replaced += 1
        rows.append((report_id, report, line))
    if not rows:
        raise FinegrainError(f"{path}: only a header row ({header_list(header)}), no reports")
    return rows, replaced, decoded_as


def read_unique_reports(
    path: Path, id_column: str, text_column: str, *, encoding: str | None = None
) -> tuple[list[tuple[str, str]], list[tuple[str, int, int]], int, str]:
    """:func:`read_reports` with one row per id (a labels CSV is joined by id): ``[(id,
    report)]`` in order, the rows left out as ``[(id, line, line of the kept row)]`` (a
    repeated id keeps its first row), the count of reports with undecodable bytes and how the
    file was decoded."""
    rows, replaced, decoded_as = read_reports(path, id_column, text_column, encoding=encoding)
    first_line: dict[str, int] = {}
    unique = []
    duplicates = []
    for report_id, report, line in rows:
        if report_id in first_line:
            duplicates.append((report_id, line, first_line[report_id]))
            continue
        first_line[report_id] = line
        unique.append((report_id, report))
    return unique, duplicates, replaced, decoded_as
