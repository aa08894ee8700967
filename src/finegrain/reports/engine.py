"""The rule engine: the mentions of one report and, per mention, its status and the severity
and change cues attached to it (see ``docs/division.md``).

Per sentence that contains a mention:

- **status**: a negation or hedge inside a gapped mention decides ("heart is not enlarged",
  "heart is borderline enlarged"); an exam-quality phrase right after the mention ("evaluation
  for pleural fluid limited") marks it *unassessed*: it counts (as uncertain) only when nothing
  else in the report is said about the finding. Otherwise the nearest negation/uncertainty cue
  before the mention in its clause (clauses end at terminators such as "but", "which", "there
  is"; a negation's scope also ends at "with", "following", ...); if none, the first post cue
  after it ("... is not seen", "... cannot be excluded") reached through a linking verb or a
  coordination ("X or Y cannot be excluded"), or a two-sided hedge ("versus") after the
  mention's head noun ("an infectious etiology versus ..."). Pseudo cues ("no change") do
  nothing; a change noun ("improvement in", "increase in") presupposes the finding, so cues
  before it do not reach the mention.
- **cues** (status 1 / -1 only): a severity or change cue *attached* to the mention: before it
  with only modifiers between ("small right pleural effusion", "progression of X and Y"), or
  after it through a linking verb ("edema has largely cleared") or a predicate of change words,
  negated or not, and earlier degrees ("has grown and is now large", "has not increased and is
  still moderate"). A degree word next to a change word
  grades the change ("slightly worse", "increased slightly"), not the finding; a degree of an
  earlier state ("previously moderate", "from moderate to small") and a negated change word
  ("no interval worsening") are not attached; degrees coordinated by side ("moderate right and
  small left") all are.

The study-level aggregation of the mentions is in :mod:`finegrain.reports.aggregate`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from finegrain.observations import NEGATIVE, POSITIVE, UNCERTAIN
from finegrain.reports.lexicon import Cue, Lexicon, default_lexicon
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

    __slots__ = ("text", "lex", "mentions", "cues", "terms", "_marks")

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
        self._marks: tuple[set[int], set[int], dict[int, int]] | None = None

    def _tense(self) -> tuple[set[int], set[int], dict[int, int]]:
        """Cue indices of (past degrees, degrees marked current, negated change words -> the
        negation cue that negates each)."""
        if self._marks is not None:
            return self._marks
        lex, text, cues = self.lex, self.text, self.cues
        past: set[int] = set()
        current: set[int] = set()
        negated: dict[int, int] = {}
        for i, (cs, ce, cue) in enumerate(cues):
            if cue.severity is not None:
                before = _TOKEN.findall(text[max(0, cs - 40) : cs])
                j = len(before)
                while j and before[j - 1] in lex.adverb:
                    j -= 1
                word = before[j - 1] if j else ""
                if word in lex.past:
                    past.add(i)  # "previously moderate"
                    continue
                after = _TOKEN.findall(text[ce : ce + 30])
                if word in lex.transition and after and after[0] == lex.transition[word]:
                    past.add(i)  # "from moderate to small"
                    continue
                if any(tuple(after[: len(p)]) == p for p in lex.past_after):
                    past.add(i)  # "small on the prior study"
                    continue
                k = len(before)
                while k:
                    if any(tuple(before[k - len(c) : k]) == c for c in lex.current):
                        current.add(i)  # "now small", "is currently moderate"
                        break
                    if before[k - 1] not in lex.linking and before[k - 1] not in lex.adverb:
                        break
                    k -= 1
            elif cue.change is not None:
                # "no interval worsening", "without improvement", "has not improved"
                for j in range(i - 1, -1, -1):
                    _, je, other = cues[j]
                    if "pre" in other.negation and not other.pseudo:
                        gap = self._tokens(je, cs)
                        if len(gap) <= 3 and all(t.isalpha() for t in gap):
                            negated[i] = j
                        break
        self._marks = (past, current, negated)
        return self._marks

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

    def _predicate_gap_ok(self, start: int, end: int, change: bool = False) -> bool:
        """The gap before a current degree continues the finding's predicate over change words
        and earlier degrees: "has grown and is now large", ", previously moderate, now small",
        "has decreased in size from moderate to small", also negated ("has not increased and is
        still moderate"); before a change word, over degrees ("is now mild, improved from
        moderate")."""
        lex = self.lex
        past, _, negated = self._tense()
        negators = set(negated.values())
        spans = [(ms, me, "@") for ms, me, _ in self.mentions if ms >= start and me <= end]
        spans += [
            (cs, ce, "~")
            for i, (cs, ce, cue) in enumerate(self.cues)
            if cs >= start
            and ce <= end
            and (
                cue.change is not None
                or i in past
                or i in negators
                or (change and cue.severity is not None)
            )
        ]
        tokens: list[str] = []
        pos = start
        for ms, me, mark in sorted(spans):
            tokens += _TOKEN.findall(self.text[pos:ms])
            tokens.append(mark)
            pos = me
        tokens += _TOKEN.findall(self.text[pos:end])
        if not tokens or len(tokens) > _MAX_POST_TOKENS:
            return False
        return any(t == "~" or t in lex.linking for t in tokens) and all(
            t == "~" or t in lex.predicate for t in tokens
        )

    def _side_gap(self, start: int, end: int) -> bool:
        """Two degrees of one finding, coordinated by side: "moderate right and small left"."""
        lex = self.lex
        tokens = self._tokens(start, end)
        return (
            0 < len(tokens) <= 6
            and any(t in lex.coordinator for t in tokens)
            and all(t in lex.side or t in lex.coordinator for t in tokens)
        )

    def _appositive(self, e: int, cs: int, ce: int, hi: int) -> bool:
        """A degree after a bare comma describes the mention before it ("effusions, moderate on
        the right") unless it modifies a mention after it ("cardiomegaly, mild edema")."""
        if self._tokens(e, cs) != [","]:
            return False
        return not any(
            ce <= ms < hi and self._pre_gap_ok(ce, ms, False) for ms, _, _ in self.mentions
        )

    def _location_gap(self, start: int, end: int) -> bool:
        """Only a "where" phrase stands between the mention and a hedge or negation after it:
        "consolidation in the right lower lobe cannot be excluded" (attachment.txt [location])."""
        lex = self.lex
        tokens = self._tokens(start, end)
        words = lex.side | lex.preposition | lex.location
        return (
            0 < len(tokens) <= _MAX_POST_TOKENS
            and tokens[0] in lex.preposition
            and all(t in words for t in tokens)
        )

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
        """A severity cue right before a change cue qualifies the change ("slightly worse"),
        and so does an adverb right after one ("increased slightly")."""
        start, end, cue = self.cues[index]
        if index and cue.text in self.lex.adverb:
            _, end0, before = self.cues[index - 1]
            if before.change is not None and not _TOKEN.findall(self.text[end0:start]):
                return True
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
        """The mention's status: 1, 0, -1 or ``UNASSESSED``."""
        return self.decision(s, e, lo, hi)[0]

    def decision(self, s: int, e: int, lo: int, hi: int) -> tuple[int, Cue | None]:
        """The mention's status and the cue that decided it (None: positive, no cue)."""
        cues = self.cues
        hedged: Cue | None = None
        for cs, _, cue in cues:
            if s <= cs < e and not cue.pseudo:
                if cue.negation:
                    return NEGATIVE, cue  # "heart is not enlarged"
                if cue.uncertainty and hedged is None:
                    hedged = cue  # "heart is possibly enlarged"
        if hedged is not None:
            return UNCERTAIN, hedged
        for cs, ce, cue in cues:
            if cs < e or ce > hi or cue.pseudo:
                continue
            if cue.unassessed and self._post_gap_ok(e, cs, change=False):
                return UNASSESSED, cue  # "evaluation for pleural fluid (is) limited"
            if cue.unassessed or cue.negation or cue.uncertainty:
                break
        scope_ended = False
        for i in range(len(cues) - 1, -1, -1):
            cs, ce, cue = cues[i]
            if ce > s or cs < lo:
                continue
            if cue.scope_end:
                scope_ended = True  # "resolved with residual X": the negation stops at "with"
            if cue.pseudo:
                continue
            if cue.change is not None and self._nominal(ce):
                break  # "no improvement in X", "possible increase in X": X is present
            if "pre" in cue.uncertainty:
                return UNCERTAIN, cue
            if "pre" in cue.negation and not scope_ended:
                return NEGATIVE, cue
        for cs, ce, cue in cues:
            if cs < e or ce > hi:
                continue
            if cue.pseudo:
                continue
            post_unc = "post" in cue.uncertainty
            post_neg = "post" in cue.negation
            if post_unc or post_neg:
                if (
                    self._post_gap_ok(e, cs, change=False)
                    or self._coordinated(e, cs)
                    or self._location_gap(e, cs)
                ):
                    return (UNCERTAIN if post_unc else NEGATIVE), cue
                if "pre" in cue.uncertainty and self._head_gap(e, cs):
                    return UNCERTAIN, cue  # "an infectious etiology versus chronic disease"
                break
        return POSITIVE, None

    def severities(self, s: int, e: int, lo: int, hi: int) -> list[tuple[str, bool]]:
        """The degrees attached to the mention at [s, e), each with whether it is marked current;
        several when coordinated by side ("moderate right and small left effusions"). A degree
        of an earlier state ("previously moderate") is not attached."""
        cues = self.cues
        past, current, _ = self._tense()
        best: tuple[int, list[int]] | None = None
        for i, (cs, _, cue) in enumerate(cues):
            # "heart is mildly enlarged"; not "heart is slightly more enlarged" (change only)
            if cue.severity is not None and s <= cs < e and i not in past and not self._absorbed(i):
                return [(cue.severity, i in current)]
        for i in range(len(cues) - 1, -1, -1):
            cs, ce, cue = cues[i]
            if ce > s or cs < lo:
                continue
            if cue.severity is None or i in past or self._absorbed(i):
                continue
            if not self._predicative(cs) and self._pre_gap_ok(ce, s, False):
                chain = [i]
                for k in range(i - 1, -1, -1):
                    ks, ke, other = cues[k]
                    if ks < lo or other.severity is None or k in past:
                        break
                    if not self._side_gap(ke, cues[chain[-1]][0]):
                        break
                    chain.append(k)
                best = (s - ce, chain)
            break
        for i, (cs, ce, cue) in enumerate(cues):
            if cs < e or ce > hi:
                continue
            if cue.severity is None or i in past:
                continue
            if self._absorbed(i):
                break
            # nearest wins, but a degree marked current wins over an earlier one it corrects
            # ("the moderate effusion has become small")
            closer = (
                best is None or cs - e < best[0] or (i in current and best[1][0] not in current)
            )
            if closer and (
                self._post_gap_ok(e, cs, False)
                or self._predicate_gap_ok(e, cs)
                or self._appositive(e, cs, ce, hi)
            ):
                chain = [i]
                for k in range(i + 1, len(cues)):
                    ks, ke, other = cues[k]
                    if ke > hi or other.severity is None or k in past:
                        break
                    if not self._side_gap(cues[chain[-1]][1], ks):
                        break
                    chain.append(k)
                best = (cs - e, chain)
            break
        chosen = best[1] if best else []
        # "small left effusion and a moderate one on the right"
        for i, (cs, ce, cue) in enumerate(cues):
            if cue.severity is None or cs < e or ce > hi or i in chosen or i in past:
                continue
            if self._anaphoric(e, cs, ce):
                chosen.append(i)
        return [(cues[i][2].severity, i in current) for i in chosen]

    def _anaphoric(self, e: int, cs: int, ce: int) -> bool:
        """A degree of "one" ("and a moderate one") after the mention ending at ``e``."""
        lex = self.lex
        after = _TOKEN.findall(self.text[ce : ce + 8])
        if not after or after[0] not in lex.anaphor:
            return False
        gap = self._tokens(e, cs)
        return len(gap) <= 4 and not any(
            t == "@" or t in lex.linking or t in lex.barrier for t in gap
        )

    def change(self, s: int, e: int, lo: int, hi: int) -> str | None:
        """The change term attached to the mention at [s, e), if any; a negated change word
        ("no interval worsening", "without improvement") is no change."""
        best: tuple[int, str] | None = None
        cues = self.cues
        _, _, negated = self._tense()
        for i, (cs, _, cue) in enumerate(cues):
            if cue.change is not None and s <= cs < e and i not in negated:
                return cue.change  # inside a gapped mention: "heart has enlarged"
        for i in range(len(cues) - 1, -1, -1):
            cs, ce, cue = cues[i]
            if ce > s or cs < lo:
                continue
            if cue.change is None or i in negated:
                continue
            if not self._predicative(cs) and self._pre_gap_ok(ce, s, True):
                best = (s - ce, cue.change)
            break
        for i, (cs, ce, cue) in enumerate(cues):
            if cs < e or ce > hi:
                continue
            if cue.change is None or i in negated:
                continue
            # a change noun after a bare comma belongs to what follows ("X, increase in Y")
            need_link = self._nominal(ce)
            linked = self._post_gap_ok(e, cs, True, need_link) or (
                not need_link and self._predicate_gap_ok(e, cs, change=True)
            )
            if linked and (best is None or cs - e < best[0]):
                best = (cs - e, cue.change)
            break
        return best[1] if best else None


@dataclass
class Found:
    """What the mentions of one observation in one report said, in report order."""

    statuses: list[int] = field(default_factory=list)
    #: (status, term, marked current) per attached degree
    severities: list[tuple[int, str, bool]] = field(default_factory=list)
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
        severities: list[tuple[str, bool]] = []
        change = None
        if status in (POSITIVE, UNCERTAIN) and sentence.cues:
            severities = sentence.severities(s, e, lo, hi)
            change = sentence.change(s, e, lo, hi)
        for obs in observations:
            slot = found.get(obs)
            if slot is None:
                slot = found[obs] = Found()
            slot.statuses.append(status)
            for term, now in severities:
                slot.severities.append((status, term, now))
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


def deciding_cues(
    text: str, observation: str, *, lexicon: Lexicon | None = None
) -> list[tuple[int, str | None]]:
    """``(status, cue phrase)`` for every mention of ``observation`` in the labelled part of
    ``text``: the negation or hedge phrase that decided its status (None when positive)."""
    lex = lexicon if lexicon is not None else default_lexicon()
    body = remove_deid(select_text(text, lex.sections_use, lex.sections_skip).lower())
    out = []
    for sentence, s, e, observations in _mentions(body, lex):
        if observation in observations:
            lo, hi = sentence.clause(s, e)
            status, cue = sentence.decision(s, e, lo, hi)
            out.append((status, cue.text if cue is not None else None))
    return out


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
