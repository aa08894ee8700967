"""The report labeler: report text -> per-observation status, severity, change and subcategory.

Conventions (CheXpert): status ``1`` positive, ``0`` negative, ``-1`` uncertain, ``None`` not
mentioned. Mentions are aggregated positive > uncertain > negative. No Finding is ``1`` when no
mention of anything other than Support Devices (the 12 pathology observations and the "other
abnormalities" of ``mention/no_finding.txt``) is positive or uncertain, else blank; an empty
report is blank everywhere.

Engine, per sentence that contains a mention (see ``docs/division.md``):

- **status**: a negation or hedge inside a gapped mention decides ("heart is not enlarged",
  "heart is borderline enlarged"); an exam-quality phrase right after the mention ("evaluation for pleural fluid
  limited") marks it *unassessed*: it counts (as uncertain) only when nothing else in the report
  is said about the finding. Otherwise the nearest negation/uncertainty cue before the mention
  in its clause (clauses end at terminators such as "but", "which", "there is"); if none, the
  first post cue after it ("... is not seen", "... cannot be excluded") reached through a
  linking verb or a coordination ("X or Y cannot be excluded"), or a two-sided hedge ("versus") after the mention's head noun ("an infectious
  etiology versus ..."). Pseudo cues
  ("no change") do nothing; a change noun ("improvement in", "increase in") presupposes the
  finding, so cues before it do not reach the mention.
- **cues** (status 1 / -1 only): a severity or change cue *attached* to the mention: before it
  with only modifiers between ("small right pleural effusion", "progression of X and Y"), or
  after it through a linking verb ("edema has largely cleared"). A severity word right before a
  change word qualifies the change ("substantial improvement"), not the finding.
- across mentions of one observation, the cue of the last mention that carries the final status
  and a cue wins (findings come before the impression, so the impression has the last word).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from finegrain.division import check_precedence, divide
from finegrain.observations import (
    NEGATIVE,
    OBSERVATIONS,
    POSITIVE,
    UNCERTAIN,
    change_column,
    severity_column,
    subcategory_column,
)
from finegrain.reports.lexicon import OTHER_FINDING, Lexicon, default_lexicon
from finegrain.reports.sections import DEID_TOKEN, remove_deid, select_text

# literal first, so that the regex engine can skip quickly to candidate positions
_SENTENCE = re.compile(
    r"\.(?<![^a-z]vs\.)(?<![^a-z]dr\.)(?<!e\.g\.)(?<!i\.e\.)(?=\s|$)"
    r"|[?!;](?=\s|$)|\n[ \t]*\n|\.(?=[a-z]{2,})"
)
_TOKEN = re.compile(r"@|[a-z0-9]+|[,/&]")
_PATHOLOGY = frozenset(OBSERVATIONS) - {"No Finding", "Support Devices"}
_NOT_FINDING = "Support Devices"
_MAX_PRE_TOKENS = 8
_MAX_POST_TOKENS = 16
_MAX_SENTENCE = 1000
#: internal status of a mention that the exam could not assess ("evaluation for X is limited")
_UNASSESSED = -2


@dataclass(frozen=True)
class ObservationLabel:
    """Label of one observation in one report."""

    status: int | None  # 1 positive, 0 negative, -1 uncertain, None not mentioned
    severity: str | None  # normalised Table 1 term, e.g. "mild-to-moderate"
    change: str | None  # normalised Table 1 term, e.g. "improve"
    subcategory: str | None  # "atypical" | "typical" for status 1 and -1, else None


_BLANK = ObservationLabel(None, None, None, None)


class _Sentence:
    """Mentions and cues of one sentence, with the attachment rules."""

    __slots__ = ("text", "lex", "mentions", "cues", "terms")

    def __init__(self, text: str, lex: Lexicon, mentions: list) -> None:
        self.text = text
        self.lex = lex
        self.mentions = mentions
        cues = []
        terms = []
        for m in lex.cue_re.finditer(text):
            cue = lex.cue(m.group())
            if cue is None or cue.ignore:
                continue
            if cue.terminator:
                terms.append((m.start(), m.end()))
            cues.append((m.start(), m.end(), cue))
        self.cues = cues
        self.terms = terms

    # -- gaps ----------------------------------------------------------------------------
    def _tokens(self, start: int, end: int) -> list[str]:
        """Tokens of text[start:end], with mentions inside replaced by '@'."""
        parts = []
        pos = start
        for ms, me, _ in self.mentions:
            if ms >= start and me <= end:
                parts.append(self.text[pos:ms])
                parts.append(" @ ")
                pos = me
        parts.append(self.text[pos:end])
        return _TOKEN.findall("".join(parts))

    def _pre_gap_ok(self, start: int, end: int, change: bool) -> bool:
        lex = self.lex
        tokens = self._tokens(start, end)
        if len(tokens) > _MAX_PRE_TOKENS:
            return False
        for i, tok in enumerate(tokens):
            if tok == ",":
                # "mild, patchy opacity"; "cardiomegaly, edema": only after the cue or a mention
                if i and tokens[i - 1] != "@":
                    return False
            elif tok in lex.coordinator:
                continue  # "small right and left effusions", "mild X and Y"
            elif (
                tok in lex.barrier
                or tok in lex.linking
                or tok in lex.preposition
                and not (change and tok in lex.complement)
            ):
                return False
        return True

    def _post_gap_ok(self, start: int, end: int, change: bool, need_link: bool = False) -> bool:
        lex = self.lex
        tokens = self._tokens(start, end)
        if len(tokens) > _MAX_POST_TOKENS:
            return False
        chain = 0
        linked = False
        while chain < len(tokens) and tokens[-1 - chain] in lex.linking | lex.adverb:
            linked = linked or tokens[-1 - chain] in lex.linking
            chain += 1
        prefix = tokens[: len(tokens) - chain]
        if not linked:
            if need_link:
                return False
            # telegraphic style: "edema improved", "edema, improved" (change only)
            return not prefix or (change and prefix == [","])
        return not any(t in lex.linking or t in lex.barrier for t in prefix)

    def _coordinated(self, start: int, end: int) -> bool:
        """The mention is the first of a coordination that a post cue follows: "effusion or
        atelectasis cannot be excluded", "cardiomegaly or pericardial fluid could ..."."""
        lex = self.lex
        tokens = self._tokens(start, end)
        if (
            len(tokens) > _MAX_PRE_TOKENS
            or not tokens
            or tokens[0] not in lex.coordinator
            or tokens[-1] == ","
            or not any(t.isalpha() and t in lex.coordinator for t in tokens)
        ):
            return False  # a conjunction must join them: "effusion, pneumonia cannot be ..."
        return all(
            t in lex.coordinator
            or t in (",", "@")
            or t.isalpha()
            and not (t in lex.linking or t in lex.barrier or t in lex.preposition)
            for t in tokens
        )

    def _head_gap(self, start: int, end: int) -> bool:
        """Up to two plain words end the mention's noun phrase ("infectious *etiology*"), so a
        two-sided hedge after them ("versus") still coordinates with the mention."""
        lex = self.lex
        tokens = self._tokens(start, end)
        return len(tokens) <= 2 and not any(
            t in lex.linking
            or t in lex.barrier
            or t in lex.preposition
            or t in lex.coordinator
            or not t.isalpha()
            for t in tokens
        )

    def _predicative(self, start: int) -> bool:
        """A cue after a linking verb ("has decreased", "is small") describes what precedes it."""
        tokens = _TOKEN.findall(self.text[max(0, start - 40) : start])
        linked = False
        for tok in reversed(tokens):
            if tok in self.lex.linking:
                linked = True
            elif tok == "there":
                return False  # existential: "there is mild cardiomegaly"
            elif tok not in self.lex.adverb and tok != "to":
                return linked
        return linked

    def _absorbed(self, index: int) -> bool:
        """A severity cue right before a change cue qualifies the change."""
        _, end, _ = self.cues[index]
        for start2, _, cue2 in self.cues[index + 1 :]:
            if cue2.change is None:
                continue
            gap = _TOKEN.findall(self.text[end:start2])
            return all(t in self.lex.adverb for t in gap)
        return False

    def _nominal(self, end: int) -> bool:
        """A change cue used as a noun with its finding as complement ("increase in X")."""
        tokens = _TOKEN.findall(self.text[end : end + 8])
        return bool(tokens) and tokens[0] in self.lex.complement

    # -- one mention ---------------------------------------------------------------------
    def clause(self, s: int, e: int) -> tuple[int, int]:
        lo, hi = 0, len(self.text)
        for ts, te in self.terms:
            if te <= s and te > lo:
                lo = te
            elif ts >= e and ts < hi:
                hi = ts
        return lo, hi

    def status(self, s: int, e: int, lo: int, hi: int) -> int:
        cues = self.cues
        hedged = False
        for cs, _, cue in cues:
            if s <= cs < e and not cue.pseudo:
                if cue.negation:
                    return NEGATIVE  # "heart is not enlarged"
                hedged = hedged or bool(cue.uncertainty)  # "heart is possibly enlarged"
        if hedged:
            return UNCERTAIN
        for cs, ce, cue in cues:
            if cs < e or ce > hi or cue.pseudo:
                continue
            if cue.unassessed and self._post_gap_ok(e, cs, change=False):
                return _UNASSESSED  # "evaluation for pleural fluid (is) limited"
            if cue.unassessed or cue.negation or cue.uncertainty:
                break
        for i in range(len(cues) - 1, -1, -1):
            cs, ce, cue = cues[i]
            if ce > s or cs < lo:
                continue
            if cue.pseudo:
                continue
            if cue.change is not None and self._nominal(ce):
                break  # "no improvement in X", "possible increase in X": X is present
            if "pre" in cue.uncertainty:
                return UNCERTAIN
            if "pre" in cue.negation:
                return NEGATIVE
        for cs, ce, cue in cues:
            if cs < e or ce > hi:
                continue
            if cue.pseudo:
                continue
            post_unc = "post" in cue.uncertainty
            post_neg = "post" in cue.negation
            if post_unc or post_neg:
                if self._post_gap_ok(e, cs, change=False) or self._coordinated(e, cs):
                    return UNCERTAIN if post_unc else NEGATIVE
                if "pre" in cue.uncertainty and self._head_gap(e, cs):
                    return UNCERTAIN  # "an infectious etiology versus chronic disease"
                break
        return POSITIVE

    def attached(self, s: int, e: int, lo: int, hi: int, dimension: str) -> str | None:
        """The severity or change term attached to the mention at [s, e), if any."""
        change = dimension == "change"
        best: tuple[int, str] | None = None
        cues = self.cues
        for cs, _, cue in cues:
            term = cue.change if change else cue.severity
            if term is not None and s <= cs < e:
                return term  # inside a gapped mention: "heart is mildly enlarged"
        for i in range(len(cues) - 1, -1, -1):
            cs, ce, cue = cues[i]
            if ce > s or cs < lo:
                continue
            term = cue.change if change else cue.severity
            if term is None:
                continue
            if not change and self._absorbed(i):
                continue
            if not self._predicative(cs) and self._pre_gap_ok(ce, s, change):
                best = (s - ce, term)
            break
        for cs, ce, cue in cues:
            if cs < e or ce > hi:
                continue
            term = cue.change if change else cue.severity
            if term is None:
                continue
            if not change and self._absorbed(cues.index((cs, ce, cue))):
                break
            # a change noun after a bare comma belongs to what follows ("X, increase in Y")
            need_link = change and self._nominal(ce)
            if self._post_gap_ok(e, cs, change, need_link) and (best is None or cs - e < best[0]):
                best = (cs - e, term)
            break
        return best[1] if best else None


@dataclass
class _Found:
    statuses: list[int] = field(default_factory=list)
    severities: list[tuple[int, str]] = field(default_factory=list)  # (status, term)
    changes: list[tuple[int, str]] = field(default_factory=list)


def _pieces(body: str):
    """Sentences; a run-on "sentence" longer than ``_MAX_SENTENCE`` characters (never seen in
    real reports) is cut at spaces, so the work per report stays linear in its length."""
    for piece in _SENTENCE.split(body):
        while len(piece) > _MAX_SENTENCE:
            cut = piece.rfind(" ", 0, _MAX_SENTENCE)
            cut = cut if cut > 0 else _MAX_SENTENCE
            yield piece[:cut]
            piece = piece[cut:]
        yield piece


def _analyse(text: str, lex: Lexicon) -> dict[str, _Found] | None:
    """Mentions per observation in the labelled part of ``text``; None when there is none."""
    body = remove_deid(select_text(text, lex.sections_use, lex.sections_skip).lower())
    if not body.replace(DEID_TOKEN, "").strip():
        return None  # blank, or only de-identification marks
    found: dict[str, _Found] = {}
    for sentence, s, e, observations in _mentions(body, lex):
        lo, hi = sentence.clause(s, e)
        status = sentence.status(s, e, lo, hi)
        severity = change = None
        if status in (POSITIVE, UNCERTAIN):
            severity = sentence.attached(s, e, lo, hi, "severity")
            change = sentence.attached(s, e, lo, hi, "change")
        for obs in observations:
            slot = found.get(obs)
            if slot is None:
                slot = found[obs] = _Found()
            slot.statuses.append(status)
            if severity is not None:
                slot.severities.append((status, severity))
            if change is not None:
                slot.changes.append((status, change))
    return found


def _mentions(body: str, lex: Lexicon) -> Iterator[tuple[_Sentence, int, int, tuple[str, ...]]]:
    """Each mention in ``body``: (its sentence, start, end, the observations it names)."""
    for piece in _pieces(body):
        mentions = []
        for m in lex.mention_re.finditer(piece):
            observations = lex.mention_observations(m.group())
            if observations:
                mentions.append((m.start(), m.end(), observations))
        if not mentions:
            continue
        sentence = _Sentence(piece, lex, mentions)
        for s, e, observations in mentions:
            yield sentence, s, e, observations


def mention_evidence(
    text: str, observation: str, *, lexicon: Lexicon | None = None
) -> list[tuple[int | None, str, str]]:
    """Why the labeler said what it said: ``(status, mention, sentence)`` for every mention of
    ``observation`` in the labelled part of ``text`` (returns report text: do not log it)."""
    lex = lexicon if lexicon is not None else default_lexicon()
    body = remove_deid(select_text(text, lex.sections_use, lex.sections_skip).lower())
    out = []
    for sentence, s, e, observations in _mentions(body, lex):
        if observation in observations:
            lo, hi = sentence.clause(s, e)
            status = sentence.status(s, e, lo, hi)
            out.append((status, sentence.text[s:e], " ".join(sentence.text.split())))
    return out


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


def _labels(found: dict[str, _Found] | None, precedence: str) -> dict[str, ObservationLabel]:
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


def label_report(
    text: str, *, lexicon: Lexicon | None = None, precedence: str = "severity"
) -> dict[str, ObservationLabel]:
    """Label one report: a dict with all 14 observations -> :class:`ObservationLabel`.

    >>> labels = label_report("FINDINGS: Small left pleural effusion. No pneumothorax.")
    >>> labels["Pleural Effusion"]
    ObservationLabel(status=1, severity='small', change=None, subcategory='atypical')
    >>> labels["Pneumothorax"].status
    0
    """
    check_precedence(precedence)
    lex = lexicon if lexicon is not None else default_lexicon()
    return _labels(_analyse(text if isinstance(text, str) else "", lex), precedence)


# ---------------------------------------------------------------------------------------------
# CSV in, CSV out
# ---------------------------------------------------------------------------------------------

STATUS_NAMES = {POSITIVE: "positive", NEGATIVE: "negative", UNCERTAIN: "uncertain", None: "blank"}


@dataclass
class LabelSummary:
    """What :func:`label_reports` read and produced."""

    reports: int = 0
    empty: int = 0  # nothing to label (blank, or only skipped sections): all columns blank
    decode_replaced: int = 0  # reports with undecodable bytes, replaced by U+FFFD
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {
            obs: dict.fromkeys(
                ("positive", "uncertain", "negative", "blank", "atypical", "typical"), 0
            )
            for obs in OBSERVATIONS
        }
    )

    def format(self) -> str:
        """A plain-text table (no report text)."""
        lines = [
            f"reports read: {self.reports}   empty: {self.empty}   "
            f"undecodable bytes replaced in: {self.decode_replaced}",
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


def _read_reports(
    path: Path, id_column: str, text_column: str
) -> tuple[list[tuple[str, str]], int]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
        replaced_file = False
    except UnicodeDecodeError:
        text = data.decode("utf-8-sig", errors="replace")
        replaced_file = True
    csv.field_size_limit(1 << 30)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise ValueError(
            f"{path}: empty file (expected a header with {id_column!r}, {text_column!r})"
        )
    for column in (id_column, text_column):
        if column not in header:
            raise ValueError(
                f"{path}: no column {column!r} (columns: {', '.join(header)}); "
                "use --id-column / --text-column"
            )
    i_id, i_text = header.index(id_column), header.index(text_column)
    rows = []
    replaced = 0
    for line_number, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) <= max(i_id, i_text):
            raise ValueError(
                f"{path}: row {line_number} has {len(row)} fields, expected {len(header)}"
            )
        report = row[i_text]
        if replaced_file and "\ufffd" in report:
            replaced += 1
        rows.append((row[i_id], report))
    return rows, replaced


def label_reports(
    reports_csv: str | Path,
    out_csv: str | Path,
    *,
    id_column: str = "id",
    text_column: str = "report",
    lexicon_dir: str | Path | None = None,
    precedence: str = "severity",
    progress: bool = False,
) -> LabelSummary:
    """Label every report of ``reports_csv`` and write the labels CSV ``out_csv`` atomically.

    Undecodable bytes are replaced (and counted), empty reports give blank rows (counted);
    nothing is dropped: the output has one row per input row, in order.
    """
    from tqdm import tqdm

    from finegrain.io import atomic_open

    check_precedence(precedence)
    lex = Lexicon.load(lexicon_dir)
    path = Path(reports_csv)
    rows, replaced = _read_reports(path, id_column, text_column)
    summary = LabelSummary(reports=len(rows), decode_replaced=replaced)
    counts = summary.counts
    with atomic_open(out_csv, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([id_column, *label_columns()])
        for report_id, report in tqdm(rows, disable=not progress, unit=" reports", desc="label"):
            found = _analyse(report, lex)
            if found is None:
                summary.empty += 1
            labels = _labels(found, precedence)
            out = [report_id]
            for obs in OBSERVATIONS:
                lab = labels[obs]
                c = counts[obs]
                c[STATUS_NAMES[lab.status]] += 1
                if lab.subcategory:
                    c[lab.subcategory] += 1
                out += [
                    "" if lab.status is None else lab.status,
                    lab.severity or "",
                    lab.change or "",
                    lab.subcategory or "",
                ]
            writer.writerow(out)
    return summary
