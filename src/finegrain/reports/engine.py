"""The rule engine: the mentions of one report and, per mention, its status and the severity
and change cues attached to it (see ``docs/division.md``).

Per sentence that contains a mention:

- **status**: a negation or hedge inside a gapped mention decides ("heart is not enlarged",
  "heart is borderline enlarged"); an exam-quality phrase right after the mention ("evaluation
  for pleural fluid limited") marks it *unassessed*: it counts (as uncertain) only when nothing
  else in the report is said about the finding. Otherwise the nearest negation/uncertainty cue before the mention
  in its clause (clauses end at terminators such as "but", "which", "there is"); if none, the
  first post cue after it ("... is not seen", "... cannot be excluded") reached through a
  linking verb or a coordination ("X or Y cannot be excluded"), or a two-sided hedge
  ("versus") after the mention's head noun ("an infectious etiology versus ..."). Pseudo cues
  ("no change") do nothing; a change noun ("improvement in", "increase in") presupposes the
  finding, so cues before it do not reach the mention.
- **cues** (status 1 / -1 only): a severity or change cue *attached* to the mention: before it
  with only modifiers between ("small right pleural effusion", "progression of X and Y"), or
  after it through a linking verb ("edema has largely cleared"). A severity word right before a
  change word qualifies the change ("substantial improvement"), not the finding.

The study-level aggregation of the mentions is in :mod:`finegrain.reports.aggregate`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from finegrain.observations import NEGATIVE, POSITIVE, UNCERTAIN
from finegrain.reports.lexicon import Lexicon, default_lexicon
from finegrain.reports.sections import DEID_TOKEN, remove_deid, select_text

# literal first, so that the regex engine can skip quickly to candidate positions
_SENTENCE = re.compile(
    r"\.(?<![^a-z]vs\.)(?<![^a-z]dr\.)(?<!e\.g\.)(?<!i\.e\.)(?=\s|$)"
    r"|[?!;](?=\s|$)|\n[ \t]*\n|\.(?=[a-z]{2,})"
)
_TOKEN = re.compile(r"@|[a-z0-9]+|[,/&]")
_MAX_PRE_TOKENS = 8
_MAX_POST_TOKENS = 16
_MAX_SENTENCE = 1000
#: internal status of a mention that the exam could not assess ("evaluation for X is limited")
UNASSESSED = -2


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
                return UNASSESSED  # "evaluation for pleural fluid (is) limited"
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
class Found:
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


def analyse(text: str, lex: Lexicon) -> dict[str, Found] | None:
    """Mentions per observation in the labelled part of ``text``; None when there is none."""
    body = remove_deid(select_text(text, lex.sections_use, lex.sections_skip).lower())
    if not body.replace(DEID_TOKEN, "").strip():
        return None  # blank, or only de-identification marks
    found: dict[str, Found] = {}
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
                slot = found[obs] = Found()
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
