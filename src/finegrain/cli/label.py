"""``finegrain label``: radiology reports -> labels CSV (status, severity, change, subcategory)."""

from __future__ import annotations

import argparse

from finegrain.cli.options import add_overwrite_argument, check_output
from finegrain.division import PRECEDENCES
from finegrain.reports.aggregate import DEGREE_RULES

HELP = "label reports: CheXpert status plus atypical/typical subcategory per observation"

DESCRIPTION = """\
Label radiology reports for the 14 CheXpert observations and divide positive and uncertain
findings into atypical / typical by the paper's Table 1 rule.

Input: a CSV with one report per row (columns --id-column and --text-column; a TSV or a
gzipped file is read as such; ids are trimmed, a blank one is an error). MIMIC-style
sections are recognised: FINDINGS and IMPRESSION are labelled when present, else the whole
report except INDICATION / HISTORY / COMPARISON / TECHNIQUE. De-identification marks (___ and
XXXX) are neutral; empty reports give blank rows. Encoding: --encoding when given, else the
byte-order mark's (UTF-8, UTF-16, UTF-32; UTF-16 without one is recognised too), else UTF-8; a
file with no UTF-8 character at all is read as Windows-1252 (Latin-1) and the summary says so;
in a UTF-8 file, bytes that are not UTF-8 are replaced and counted.

Output: a CSV with `id`, then per observation `<Obs>` (1 positive, 0 negative, -1 uncertain,
empty = not mentioned), `<Obs> severity`, `<Obs> change` (normalised Table 1 terms attached to
that finding) and `<Obs> subcategory` (atypical / typical, for 1 and -1). A summary of counts is
printed; report text is never printed. A repeated id keeps its first row; the rows left out
are listed with their lines and the exit status is 3. A quote that is never closed (which would
merge the rows after it into one report) or a row with the wrong number of fields stops with
an error naming the line.

--explain FILE also writes why each label came out so, one JSON line per report and
observation: the final label and, per mention, the sentence, the mention's words, its status,
the trigger that made it negative or uncertain, and the degree and change words attached to it
(docs/division.md, section 10). That file holds report text, and is written only when asked;
labelling without it is as fast as before.

The phrases live in plain text files (see finegrain/reports/lexicon/README.txt); copy that
folder, edit it and pass --lexicon DIR. See docs/division.md for the rules.

Example:
  finegrain label reports.csv -o labels.csv --id-column study_id --text-column text
  finegrain label reports.csv -o labels.csv --explain reasons.jsonl
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reports", help="CSV of reports")
    parser.add_argument("-o", "--output", required=True, help="labels CSV to write")
    add_overwrite_argument(parser, "the labels CSV")
    parser.add_argument("--id-column", default="id", help="column with the report id (id)")
    parser.add_argument("--text-column", default="report", help="column with the text (report)")
    parser.add_argument(
        "--encoding",
        help="text encoding of REPORTS, e.g. utf-16, latin-1, cp1252 (default: detected)",
    )
    parser.add_argument("--lexicon", default=None, help="lexicon folder (default: built-in)")
    parser.add_argument(
        "--precedence",
        default="severity",
        choices=PRECEDENCES,
        help="which cue decides when severity and change disagree (default: severity)",
    )
    parser.add_argument(
        "--degrees",
        default="most-significant",
        choices=DEGREE_RULES,
        help="how several degrees of one finding become one: the most significant current "
        "degree (default) or the last one written (see docs/division.md)",
    )
    parser.add_argument(
        "--explain",
        metavar="FILE",
        default=None,
        help="also write the reasons of each label as JSON lines (holds report text)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from finegrain.io import refuse_overwriting_input
    from finegrain.reports import label_reports

    refuse_overwriting_input(args.output, args.reports)  # --overwrite would not make it right
    for output in (args.output, args.explain):
        if output is not None:
            check_output(output, args.overwrite)

    summary = label_reports(
        args.reports,
        args.output,
        id_column=args.id_column,
        text_column=args.text_column,
        lexicon_dir=args.lexicon,
        precedence=args.precedence,
        degrees=args.degrees,
        progress=not args.no_progress,
        explain=args.explain,
        encoding=args.encoding,
    )
    print(summary.format())
    print(f"labels written to {args.output}")
    if args.explain:
        print(f"reasons written to {args.explain} (it holds report text)")
    from finegrain.cli import exit_status

    return exit_status(ok=summary.reports, failed=len(summary.duplicates))  # 3: duplicate ids
