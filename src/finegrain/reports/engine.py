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
  small left") all are. A relative clause right after the mention (", which has decreased in
  size") describes it; "but" between two modifiers ("improved but persistent moderate edema")
  does not end the clause; a change word followed by a measure ("decreasing in size since the
  prior") is not a change noun; a one-word change cue that ends a mention after a copula names
  the finding ("heart size is mildly to moderately increased").

Abbreviations are written out before matching (``Lexicon.expand``). With an ``evidence`` list,
:func:`analyse` also records, per mention, the words that decided (:class:`Evidence`: the
reasons of ``finegrain label --explain``); without it no evidence is collected.

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
_SENTENCE_SPLIT = re.compile(f"({_SENTENCE.pattern})")
_TOKEN = re.compile(r"[@%]|[a-z0-9]+|[,/&]")
#: stands for a degree word that grades a change ("a little smaller"): an adverb in a gap
_GRADE = "%"
_MAX_PRE_TOKENS = 8
_MAX_POST_TOKENS = 16
_MAX_SENTENCE = 1000
#: internal status of a mention that the exam could not assess ("evaluation for X is limited")
UNASSESSED = -2


class _Sentence:
    """Mentions and cues of one sentence, with the attachment rules."""

    __slots__ = ("text", "lex", "mentions", "cues", "terms", "joins", "offset", "_marks")

    def __init__(self, text: str, lex: Lexicon, mentions: list, offset: int = 0) -> None:
        self.text = text
        self.offset = offset  # where the sentence starts in the report's labelled text
        self.lex = lex
        self.mentions = mentions
        cues = []
        terms: list[tuple[int, int]] = []
        joins: list[int] = []
        for m in lex.cue_re.finditer(text):
            cue = lex.cue(m.group())
            if cue is None or cue.ignore:
                continue
            if cue.terminator:
                if cue.text in lex.contrast and self._joins_modifiers(m.start(), terms, cues):
                    joins.append(m.end())
                terms.append((m.start(), m.end()))
            cues.append((m.start(), m.end(), cue))
        self.cues = cues
        self.terms = terms
        self.joins = joins
        self._marks: tuple[set[int], set[int], dict[int, int]] | None = None

    def _joins_modifiers(self, start: int, terms: list, cues: list) -> bool:
        """A contrast word ("but") right after a degree or change word, with no finding before
        it in its clause, joins two modifiers of the finding after it ("improved but persistent
        moderate edema"): for cue attachment it does not end the clause (for status it
        does)."""
        lo = terms[-1][1] if terms else 0
        if not cues or cues[-1][2].severity is None and cues[-1][2].change is None:
            return False
        if _TOKEN.findall(self.text[cues[-1][1] : start]):
            return False
        return not any(lo <= ms < start for ms, _, _ in self.mentions)

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
                if any(j >= len(p) and tuple(before[j - len(p) : j]) == p for p in lex.past):
                    past.add(i)  # "previously moderate", "which was moderate"
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
    def _tokens(self, start: int, end: int, grades: bool = False) -> list[str]:
        """Tokens of text[start:end], with mentions inside replaced by '@' (and, with
        ``grades``, each degree that grades a change by ``_GRADE``: "a little smaller")."""
        spans = [(ms, me, " @ ") for ms, me, _ in self.mentions if ms >= start and me <= end]
        if grades:
            spans += [
                (cs, ce, f" {_GRADE} ")
                for i, (cs, ce, cue) in enumerate(self.cues)
                if cs >= start and ce <= end and cue.severity is not None and self._absorbed(i)
            ]
            spans.sort()
        parts = []
        pos = start
        for ms, me, mark in spans:
            parts.append(self.text[pos:ms])
            parts.append(mark)
            pos = me
        parts.append(self.text[pos:end])
        return _TOKEN.findall("".join(parts))

    def _relative_opening(self, tokens: list[str]) -> list[str]:
        """``tokens`` without a relative pronoun that opens them (", which has decreased")."""
        k = 1 if tokens and tokens[0] == "," else 0
        if len(tokens) > k and tokens[k] in self.lex.relative:
            return tokens[k + 1 :]
        return tokens

    def attachment_start(self, lo: int) -> int:
        """Where cue attachment before a mention may reach back to: its clause start ``lo``, or
        before a contrast word that joins two modifiers ("improved but persistent edema")."""
        while lo in self.joins:
            lo = max((te for _, te in self.terms if te < lo), default=0)
        return lo

    def attachment_end(self, e: int, hi: int) -> int:
        """Where cue attachment after the mention ending at ``e`` stops: its clause end ``hi``,
        or, when a relative clause opens right after the mention ("effusion, which was
        moderate, is now small"), the next clause end after it."""
        if hi >= len(self.text) or self._word_at(hi) not in self.lex.relative:
            return hi
        if _TOKEN.findall(self.text[e:hi]) not in ([], [","]):
            return hi
        later = [ts for ts, _ in self.terms if ts > hi]
        return min(later) if later else len(self.text)

    def _word_at(self, pos: int) -> str:
        m = _TOKEN.match(self.text, pos)
        return m.group() if m else ""

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

    def _post_gap_ok(
        self, start: int, end: int, change: bool, need_link: bool = False, attach: bool = False
    ) -> bool:
        """The words between a mention and a cue after it let the cue describe the mention: a
        linking verb and adverbs ("is now", "has slightly"), or, for a change, nothing or a
        comma ("edema, improved"). With ``attach`` (severity and change cues), a relative
        pronoun may open the gap (", which has") and a degree that grades the change counts as
        an adverb ("is a little smaller")."""
        lex = self.lex
        tokens = self._tokens(start, end, grades=attach)
        if attach:
            tokens = self._relative_opening(tokens)
        if len(tokens) > _MAX_POST_TOKENS:
            return False
        chain = 0
        linked = False
        while chain < len(tokens) and (
            tokens[-1 - chain] in lex.linking
            or tokens[-1 - chain] in lex.adverb
            or tokens[-1 - chain] == _GRADE
        ):
            linked = linked or tokens[-1 - chain] in lex.linking
            chain += 1
        prefix = tokens[: len(tokens) - chain]
        if not linked:
            if need_link:
                return False
            # telegraphic style: "edema improved", "edema, improved" (change only), also over
            # a comparison of the sides: "effusions, right greater than left, increased"
            return not prefix or (change and (prefix == [","] or self._aside(prefix)))
        return not any(t in lex.linking or t in lex.barrier for t in prefix)

    def _aside(self, tokens: list[str]) -> bool:
        """``tokens`` are a comparison of the sides between commas: ", right greater than
        left,"."""
        lex = self.lex
        return (
            len(tokens) > 2
            and tokens[0] == tokens[-1] == ","
            and all(t in lex.side or t in lex.aside for t in tokens[1:-1])
        )

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
        tokens = self._relative_opening(tokens)
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
        for k in range(index + 1, len(self.cues)):
            start2, _, cue2 = self.cues[k]
            if cue2.change is None:
                continue
            gap = _TOKEN.findall(self.text[end:start2])
            return all(t in self.lex.adverb for t in gap) and not self._names_state(k)
        return False

    def _names_state(self, index: int) -> bool:
        """A one-word change cue that ends a mention phrase after a copula names the finding's
        state, not a change: "heart size is (mildly to moderately) increased" is an enlarged
        heart; after a perfect auxiliary ("has increased", attachment.txt [perfect]) it is a
        change, and so is a change phrase ("is more enlarged")."""
        cs, ce, cue = self.cues[index]
        if " " in cue.text or not any(ms < cs and me == ce for ms, me, _ in self.mentions):
            return False  # a phrase ("more enlarged", "has enlarged") is always a change
        lex = self.lex
        for word in reversed(_TOKEN.findall(self.text[max(0, cs - 60) : cs])):
            if word in lex.linking:
                return word not in lex.perfect
        return False

    def _nominal(self, end: int, attach: bool = False) -> bool:
        """A change cue used as a noun with its finding as complement ("increase in X"). With
        ``attach``, not when the complement is a measure without "of" after it: "decreasing in
        size since the prior" describes what precedes; "increase in size of X" names X."""
        lex = self.lex
        tokens = _TOKEN.findall(self.text[end : end + (40 if attach else 8)])
        if not tokens or tokens[0] not in lex.complement:
            return False
        if attach:
            for k in (1, 2):  # "in size", "in the size"
                if k < len(tokens) and tokens[k] in lex.measure:
                    return k + 1 < len(tokens) and tokens[k + 1] in lex.complement
        return True

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

    def decision(self, s: int, e: int, lo: int, hi: int) -> tuple[int, int | None]:
        """The mention's status and the cue (index into ``cues``) that decided it (None:
        positive, no cue)."""
        cues = self.cues
        hedged: int | None = None
        for i, (cs, _, cue) in enumerate(cues):
            if s <= cs < e and not cue.pseudo:
                if cue.negation:
                    return NEGATIVE, i  # "heart is not enlarged"
                if cue.uncertainty and hedged is None:
                    hedged = i  # "heart is possibly enlarged"
        if hedged is not None:
            return UNCERTAIN, hedged
        for i, (cs, ce, cue) in enumerate(cues):
            if cs < e or ce > hi or cue.pseudo:
                continue
            if cue.unassessed and self._post_gap_ok(e, cs, change=False):
                return UNASSESSED, i  # "evaluation for pleural fluid (is) limited"
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
                return UNCERTAIN, i
            if "pre" in cue.negation and not scope_ended:
                return NEGATIVE, i
        for i, (cs, ce, cue) in enumerate(cues):
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
                    return (UNCERTAIN if post_unc else NEGATIVE), i
                if "pre" in cue.uncertainty and self._head_gap(e, cs):
                    return UNCERTAIN, i  # "an infectious etiology versus chronic disease"
                break
        return POSITIVE, None

    def severities(self, s: int, e: int, lo: int, hi: int) -> list[tuple[int, bool]]:
        """The degree cues (indices into ``cues``) attached to the mention at [s, e), each with
        whether it is marked current; several when coordinated by side ("moderate right and
        small left effusions"). A degree of an earlier state ("previously moderate") is not
        attached."""
        cues = self.cues
        past, current, _ = self._tense()
        best: tuple[int, list[int]] | None = None
        for i, (cs, _, cue) in enumerate(cues):
            # "heart is mildly enlarged"; not "heart is slightly more enlarged" (change only)
            if cue.severity is not None and s <= cs < e and i not in past and not self._absorbed(i):
                return [(i, i in current)]
        lo = self.attachment_start(lo) if self.joins else lo
        hi = self.attachment_end(e, hi)
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
                self._post_gap_ok(e, cs, False, attach=True)
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
        return [(i, i in current) for i in chosen]

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

    def change(self, s: int, e: int, lo: int, hi: int) -> int | None:
        """The change cue (index into ``cues``) attached to the mention at [s, e), if any; a
        negated change word ("no interval worsening", "without improvement") is no change."""
        best: tuple[int, int] | None = None
        cues = self.cues
        _, _, negated = self._tense()
        for i, (cs, _, cue) in enumerate(cues):
            if cue.change is not None and s <= cs < e and i not in negated:
                if self._names_state(i):
                    continue  # "heart size is increased": the finding itself
                return i  # inside a gapped mention: "heart has enlarged"
        lo = self.attachment_start(lo) if self.joins else lo
        for i in range(len(cues) - 1, -1, -1):
            cs, ce, cue = cues[i]
            if ce > s or cs < lo:
                continue
            if cue.change is None or i in negated:
                continue
            if not self._predicative(cs) and self._pre_gap_ok(ce, s, True):
                best = (s - ce, i)
            break
        hi = self.attachment_end(e, hi)
        for i, (cs, ce, cue) in enumerate(cues):
            if cs < e or ce > hi:
                continue
            if cue.change is None or i in negated:
                continue
            # a change noun after a bare comma belongs to what follows ("X, increase in Y")
            need_link = self._nominal(ce, attach=True)
            linked = self._post_gap_ok(e, cs, True, need_link, attach=True) or (
                not need_link and self._predicate_gap_ok(e, cs, change=True)
            )
            if linked and (best is None or cs - e < best[0]):
                best = (cs - e, i)
            break
        return best[1] if best else None


@dataclass
class Found:
    """What the mentions of one observation in one report said, in report order."""

    statuses: list[int] = field(default_factory=list)
    #: (status, term, marked current) per attached degree
    severities: list[tuple[int, str, bool]] = field(default_factory=list)
    changes: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Evidence:
    """Why one mention got its status and cues: the words that decided, as the labeler read
    them (lower case, de-identification marks as ``deid``). Holds report text: never log it."""

    observations: frozenset[str]
    sentence: str
    mention: str
    status: int  # 1, 0, -1 or UNASSESSED
    #: the words of the negation, hedge or exam-quality phrase that decided (None: positive)
    trigger: str | None
    #: (words, Table 1 term, marked current) per attached degree
    degrees: tuple[tuple[str, str, bool], ...]
    change: tuple[str, str] | None  # (words, Table 1 term)


def _pieces(body: str) -> Iterator[str]:
    """Sentences; a run-on "sentence" longer than ``_MAX_SENTENCE`` characters (never seen in
    real reports) is cut at spaces, so the work per report stays linear in its length."""
    for piece in _SENTENCE.split(body):
        while len(piece) > _MAX_SENTENCE:
            cut = piece.rfind(" ", 0, _MAX_SENTENCE)
            cut = cut if cut > 0 else _MAX_SENTENCE
            yield piece[:cut]
            piece = piece[cut:]
        yield piece


def _piece_offsets(body: str) -> list[int]:
    """Where each sentence of :func:`_pieces` starts in ``body`` (for evidence only: the
    default path does not pay for it)."""
    parts = _SENTENCE_SPLIT.split(body)  # sentences and the marks between them, alternating
    offsets = []
    pos = 0
    for k, piece in enumerate(parts):
        if k % 2 == 0:
            while len(piece) > _MAX_SENTENCE:
                cut = piece.rfind(" ", 0, _MAX_SENTENCE)
                cut = cut if cut > 0 else _MAX_SENTENCE
                offsets.append(pos)
                pos += cut
                piece = piece[cut:]
            offsets.append(pos)
        pos += len(piece)
    return offsets


def _source(text: str, lex: Lexicon) -> str:
    """The labelled part of a report, lower case, de-identification marks neutral."""
    return remove_deid(select_text(text, lex.sections_use, lex.sections_skip).lower())


def analyse(
    text: str, lex: Lexicon, evidence: list[Evidence] | None = None
) -> dict[str, Found] | None:
    """Mentions per observation in the labelled part of ``text``; None when there is none.
    With ``evidence`` (a list), also append one :class:`Evidence` per mention to it."""
    source = _source(text, lex)
    if not source.replace(DEID_TOKEN, "").strip():
        return None  # blank, or only de-identification marks
    body = lex.expand(source)
    where = _SourceMap(source, lex) if evidence is not None else None
    found: dict[str, Found] = {}
    for sentence, s, e, observations in _mentions(body, lex, offsets=where is not None):
        lo, hi = sentence.clause(s, e)
        status, trigger = sentence.decision(s, e, lo, hi)
        degrees: list[tuple[int, bool]] = []
        change = None
        if status in (POSITIVE, UNCERTAIN) and sentence.cues:
            degrees = sentence.severities(s, e, lo, hi)
            change = sentence.change(s, e, lo, hi)
        cues = sentence.cues
        for obs in observations:
            slot = found.get(obs)
            if slot is None:
                slot = found[obs] = Found()
            slot.statuses.append(status)
            for i, now in degrees:
                slot.severities.append((status, cues[i][2].severity, now))  # type: ignore[arg-type]
            if change is not None:
                slot.changes.append((status, cues[change][2].change))  # type: ignore[arg-type]
        if where is not None and evidence is not None:
            evidence.append(
                where.evidence(sentence, s, e, observations, status, trigger, degrees, change)
            )
    return found


class _SourceMap:
    """Maps positions in the expanded text back to the labelled text (abbreviations as
    written), for :class:`Evidence`."""

    def __init__(self, source: str, lex: Lexicon) -> None:
        self.source = source
        self.pieces: list[tuple[int, int, int, int]] = []
        shift = 0
        for start, end, expansion in lex.abbreviation_spans(source):
            self.pieces.append((start + shift, start + shift + len(expansion), start, end))
            shift += len(expansion) - (end - start)

    def position(self, pos: int, end: bool = False) -> int:
        shift = 0
        for es, ee, start, stop in self.pieces:
            if (pos <= es) if end else (pos < es):
                break
            if pos < ee or (end and pos == ee):
                return stop if end else start
            shift = stop - ee
        return pos + shift

    def words(self, sentence: _Sentence, start: int, end: int) -> str:
        a = self.position(sentence.offset + start)
        b = self.position(sentence.offset + end, end=True)
        return " ".join(self.source[a:b].split())

    def evidence(
        self,
        sentence: _Sentence,
        s: int,
        e: int,
        observations: frozenset[str],
        status: int,
        trigger: int | None,
        degrees: list[tuple[int, bool]],
        change: int | None,
    ) -> Evidence:
        cues = sentence.cues
        return Evidence(
            observations=observations,
            sentence=self.words(sentence, 0, len(sentence.text)),
            mention=self.words(sentence, s, e),
            status=status,
            trigger=None if trigger is None else self.words(sentence, *cues[trigger][:2]),
            degrees=tuple(
                (self.words(sentence, *cues[i][:2]), cues[i][2].severity or "", now)
                for i, now in degrees
            ),
            change=None
            if change is None
            else (self.words(sentence, *cues[change][:2]), cues[change][2].change or ""),
        )


def _mentions(
    body: str, lex: Lexicon, offsets: bool = False
) -> Iterator[tuple[_Sentence, int, int, frozenset[str]]]:
    """Each mention in ``body``: (its sentence, start, end, the observations it names). With
    ``offsets``, each sentence knows where it starts in ``body``."""
    starts = _piece_offsets(body) if offsets else None
    for k, piece in enumerate(_pieces(body)):
        mentions = []
        for m in lex.mention_re.finditer(piece):
            observations = lex.mention_observations(m.group())
            if observations:
                mentions.append((m.start(), m.end(), observations))
        if not mentions:
            continue
        sentence = _Sentence(piece, lex, mentions, starts[k] if starts is not None else 0)
        for s, e, observations in mentions:
            yield sentence, s, e, observations


def deciding_cues(
    text: str, observation: str, *, lexicon: Lexicon | None = None
) -> list[tuple[int, str | None]]:
    """``(status, cue phrase)`` for every mention of ``observation`` in the labelled part of
    ``text``: the negation or hedge phrase that decided its status (None when positive)."""
    lex = lexicon if lexicon is not None else default_lexicon()
    out = []
    for sentence, s, e, observations in _mentions(lex.expand(_source(text, lex)), lex):
        if observation in observations:
            lo, hi = sentence.clause(s, e)
            status, cue = sentence.decision(s, e, lo, hi)
            out.append((status, sentence.cues[cue][2].text if cue is not None else None))
    return out


def mention_evidence(
    text: str, observation: str, *, lexicon: Lexicon | None = None
) -> list[tuple[int | None, str, str]]:
    """Why the labeler said what it said: ``(status, mention, sentence)`` for every mention of
    ``observation`` in the labelled part of ``text`` (returns report text: do not log it)."""
    lex = lexicon if lexicon is not None else default_lexicon()
    evidence: list[Evidence] = []
    analyse(text, lex, evidence)
    return [
        (ev.status, ev.mention, ev.sentence) for ev in evidence if observation in ev.observations
    ]
