"""Load the plain-text lexicon (``finegrain/reports/lexicon/``) into compiled matchers.

The phrases live in data files a radiologist can read and extend (see ``lexicon/README.txt``);
this module only parses them and compiles each family (mentions; cues) into ONE regular
expression shaped as a character trie, so that a sentence is scanned once per family whatever
the number of phrases. It also expands what the files declare once and use many times: phrase
classes (``(name)`` in a phrase, ``classes.txt``), ranges of two degrees ("moderately to
markedly", :func:`range_term`) and abbreviations (``abbreviations.txt``, expanded in the text
before matching).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from finegrain.division import CHANGE_CUES, SEVERITY_CUES, SEVERITY_ORDER
from finegrain.errors import FinegrainError
from finegrain.observations import OBSERVATIONS

#: The lexicon shipped with finegrain.
DEFAULT_LEXICON_DIR = Path(__file__).with_name("lexicon")

#: Pseudo-observation for "other abnormalities" (``mention/no_finding.txt``): a positive or
#: uncertain mention prevents No Finding but fills no column of its own.
OTHER_FINDING = "No Finding"

_SEP_RE = re.compile(r"[\s\-/]+")
_SEP, _WILD, _GAP = "\x00", "\x01", "\x02"
#: "..." in a phrase: up to three words (none of attachment.txt [gap stop]), then a run of up
#: to six predicate words (severity forms, range joiners, attachment.txt [linking] and
#: [adverb]): "heart is moderately to markedly enlarged", "heart is again noted to be mildly
#: enlarged"
_GAP_RE = r"(?:[\s\-]+{stop}[a-z0-9']+){{0,3}}?(?:[\s\-/]+(?:{degree})){{0,6}}[\s\-]+"
_UNIT_RE = {
    _SEP: r"[\s\-/]+",
    _WILD: r"[a-z0-9]*",
    _GAP: _GAP_RE.format(stop="", degree="(?!x)x"),
}
_WORD_EDGE = "(?<![a-z0-9])(?:{})(?![a-z0-9])"
#: ``(name)`` in a phrase: one phrase of the class [name] of classes.txt
_CLASS_REF = re.compile(r"\(([a-z][a-z ]*[a-z])\)")


def phrase_key(text: str) -> str:
    """Normal form used to look matched text up: lower case, separators collapsed to one space."""
    return _SEP_RE.sub(" ", text.lower()).strip()


@dataclass(frozen=True)
class Cue:
    """What a cue phrase does; one phrase may play several roles (e.g. pre and post negation)."""

    text: str
    negation: frozenset[str] = frozenset()  # {"pre", "post"}
    uncertainty: frozenset[str] = frozenset()
    pseudo: bool = False
    unassessed: bool = False  # exam quality after a mention: "evaluation for X is limited"
    terminator: bool = False
    scope_end: bool = False  # ends the scope of a negation only ("with", "following")
    severity: str | None = None  # normalised Table 1 term
    change: str | None = None
    ignore: bool = False  # consumes text, does nothing ("minor fissure")


@dataclass
class _Entry:
    file: str
    line: int
    text: str


def _read(path: Path, sections: tuple[str, ...] | None) -> dict[str, list[_Entry]]:
    """Read a lexicon file into {section: entries}; ``None`` sections means a flat list."""
    if not path.is_file():
        raise FileNotFoundError(f"lexicon file not found: {path}")
    current = "" if sections is None else (sections[0] if sections else "")
    out: dict[str, list[_Entry]] = {current: []}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1].strip().lower()
            if sections is None or name not in sections:
                allowed = "none" if not sections else ", ".join(sections)
                raise FinegrainError(
                    f"{path}:{number}: unknown section [{name}] (allowed: {allowed})"
                )
            current = name
            out.setdefault(current, [])
            continue
        out.setdefault(current, []).append(_Entry(str(path), number, line))
    return out


_CLASS_UNIT = "\x03"


def _class_unit(name: str) -> str:
    return _CLASS_UNIT + name.replace(" ", "_")


def _units(
    phrase: str, *, where: str, classes: Mapping[str, list[list[str]]] | Collection[str] = ()
) -> list[list[str]]:
    """Trie units of a phrase: characters, separators, "*" endings, "..." gaps and classes.

    A class that starts the phrase is written out (one sequence per member, when ``classes``
    maps names to their members' units), so that the trie's first characters stay literal
    and the longest phrase still wins; a class elsewhere is one unit."""
    for name in _CLASS_REF.findall(phrase):
        if name not in classes:
            known = ", ".join(f"({c})" for c in sorted(classes)) or "none"
            raise FinegrainError(f"{where}: unknown class ({name}) (classes.txt defines: {known})")
    words = phrase_key(_CLASS_REF.sub(lambda m: _class_unit(m.group(1)), phrase)).split(" ")
    if not words or words == [""]:
        raise FinegrainError(f"{where}: empty phrase")
    units: list[str] = []
    for i, word in enumerate(words):
        if word == "...":
            if i == 0 or i == len(words) - 1:
                raise FinegrainError(f"{where}: '...' must stand between two words")
            units.append(_GAP)
            continue
        if i and units[-1] != _GAP:
            units.append(_SEP)
        if word.startswith(_CLASS_UNIT):
            units.append(word)
        elif word.endswith("*"):
            units.extend(word[:-1])
            units.append(_WILD)
        else:
            units.extend(word)
    first = units[0][1:].replace("_", " ") if units[0].startswith(_CLASS_UNIT) else None
    if first is not None and isinstance(classes, Mapping):
        return [[*member, *units[1:]] for member in classes[first]]
    return [units]


_ADVERB_SLOT = "(adverb)"


def _with_adverbs(entry: _Entry, adverbs: list[str]) -> list[_Entry]:
    """The phrases an entry stands for: "(adverb)" is one optional word of ``adverbs``."""
    if _ADVERB_SLOT not in entry.text:
        return [entry]
    before, _, after = entry.text.partition(_ADVERB_SLOT)
    if _ADVERB_SLOT in after or not before.strip() or not after.strip():
        raise FinegrainError(f"{entry.file}:{entry.line}: '(adverb)' must stand once between words")
    return [
        _Entry(entry.file, entry.line, " ".join(f"{before} {word} {after}".split()))
        for word in ["", *adverbs]
    ]


def _read_classes(path: Path) -> dict[str, list[_Entry]]:
    """classes.txt: [name] sections of phrases (a member may use other classes)."""
    if not path.is_file():
        return {}
    classes: dict[str, list[_Entry]] = {}
    current: str | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip().lower()
            if not _CLASS_REF.fullmatch(f"({current})"):
                raise FinegrainError(f"{path}:{number}: a class name is letters and spaces")
            classes.setdefault(current, [])
            continue
        if current is None:
            raise FinegrainError(f"{path}:{number}: entry before any [class]")
        classes[current].append(_Entry(str(path), number, line))
    return classes


def _class_units(
    classes: dict[str, list[_Entry]], unit_re: dict[str, str]
) -> tuple[dict[str, str], dict[str, list[list[str]]]]:
    """``unit_re`` plus one unit per class (the trie of its members), and the members' units
    of each class. Classes used by a class come first; a class that uses itself is an
    error."""
    out = dict(unit_re)
    members: dict[str, list[list[str]]] = {}

    def build(name: str, chain: tuple[str, ...]) -> None:
        if name in members:
            return
        if name in chain:
            raise FinegrainError(f"class ({name}) uses itself: {' -> '.join((*chain, name))}")
        sequences = []
        for entry in classes[name]:
            for ref in _CLASS_REF.findall(entry.text):
                if ref in classes:
                    build(ref, (*chain, name))
            sequences += _units(entry.text, where=f"{entry.file}:{entry.line}", classes=members)
        out[_class_unit(name)] = "(?:" + _trie_source(sequences, out) + ")"
        members[name] = sequences

    for name in classes:
        build(name, ())
    return out, members


#: Table 1's two range terms, as (lower end, upper end)
_RANGE_ENDS = {
    "mild-to-moderate": ("mild", "moderate"),
    "moderate-to-severe": ("moderate", "severe"),
}
#: degrees of the middle of the scale: a range up to one of them, from below, is mild-to-moderate
_MIDDLE = frozenset({"moderate", "substantial"})


def range_term(first: str, second: str) -> str | None:
    """The Table 1 term of a range of two degrees ("small to moderate", "moderately to
    markedly"), or None when one end is not a degree of size ("acute").

    The ends are ordered by :data:`finegrain.division.SEVERITY_ORDER` (Table 1's range terms
    stand for their two ends). Both ends atypical -> the upper end ("trace to small" ->
    small); both typical -> moderate-to-severe from a middle degree ("moderate to large"),
    else the upper end ("large to massive" -> massive); from atypical to a middle degree ->
    mild-to-moderate ("small to moderate"), beyond it -> moderate-to-severe ("mild to marked").

    >>> range_term("small", "moderate"), range_term("moderate", "severe"), range_term("trace", "small")
    ('mild-to-moderate', 'moderate-to-severe', 'small')
    """
    if "acute" in (first, second):
        return None
    rank = {term: i for i, term in enumerate(SEVERITY_ORDER)}
    ends = sorted(
        {*_RANGE_ENDS.get(first, (first,)), *_RANGE_ENDS.get(second, (second,))},
        key=rank.__getitem__,
    )
    low, high = ends[0], ends[-1]
    if low == high:
        return low
    if SEVERITY_CUES[low] == SEVERITY_CUES[high] == "atypical":
        return high
    if SEVERITY_CUES[low] == "typical":
        return "moderate-to-severe" if low in _MIDDLE else high
    return "mild-to-moderate" if high in _MIDDLE else "moderate-to-severe"


def _with_plurals(units: list[str]) -> list[list[str]]:
    if units[-1] in (_WILD, _GAP) or units[-1].startswith(_CLASS_UNIT):
        return [units]
    return [units, [*units, "s"], [*units, "e", "s"]]


def _trie_source(sequences: list[list[str]], unit_re: dict[str, str]) -> str:
    """One regular expression (source) for all ``sequences``, shaped as a character trie."""
    trie: dict = {}
    for units in sequences:
        node = trie
        for unit in units:
            node = node.setdefault(unit, {})
        node[""] = {}

    def emit(node: dict) -> str:
        end = "" in node
        branches = []
        # literal characters first (sre skips them fast), special units after
        for unit in sorted((u for u in node if u), key=lambda u: (u in unit_re, u)):
            piece = unit_re.get(unit) or re.escape(unit)
            branches.append(piece + emit(node[unit]))
        if not branches:
            return ""
        if len(branches) == 1 and not end:
            return branches[0]
        return "(?:" + "|".join(branches) + ")" + ("?" if end else "")

    return emit(trie) if trie else "(?!x)x"  # an empty table matches nothing


def _trie_regex(sequences: list[list[str]], unit_re: dict[str, str] = _UNIT_RE) -> re.Pattern:
    return re.compile(_WORD_EDGE.format(_trie_source(sequences, unit_re)))


def _phrase_pattern(units: list[str], unit_re: dict[str, str] = _UNIT_RE) -> re.Pattern:
    return re.compile("".join(unit_re.get(u) or re.escape(u) for u in units))


def _alternatives(words: Collection[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))


def _gap_units(degree_words: Collection[str], stop_words: Collection[str]) -> dict[str, str]:
    """Trie units with a "..." gap that does not run over ``stop_words`` and also spans a run
    of ``degree_words`` (predicate words: degrees, adverbs, linking verbs)."""
    stop = f"(?!(?:{_alternatives(stop_words)})(?![a-z0-9]))" if stop_words else ""
    degree = _alternatives(degree_words) or "(?!x)x"
    return {**_UNIT_RE, _GAP: _GAP_RE.format(stop=stop, degree=degree)}


def _key_of(units: list[str]) -> str | None:
    """Exact lookup key of a literal phrase (None if it has a wildcard, gap or class)."""
    if _WILD in units or _GAP in units or any(u.startswith(_CLASS_UNIT) for u in units):
        return None
    return "".join(" " if u == _SEP else u for u in units)


class _PhraseTable:
    """Phrases -> values, one combined regex, exact lookup plus a few pattern fallbacks."""

    def __init__(self, unit_re: dict[str, str] = _UNIT_RE) -> None:
        self.unit_re = unit_re
        self.sequences: list[list[str]] = []
        self.exact: dict[str, object] = {}
        self.patterns: list[tuple[re.Pattern, str]] = []
        self.values: dict[str, object] = {}

    def add(self, units: list[str], value_key: str) -> None:
        self.sequences.append(units)
        key = _key_of(units)
        if key is not None:
            self.exact[key] = value_key
        else:
            self.patterns.append((_phrase_pattern(units, self.unit_re), value_key))

    def compile(self) -> re.Pattern:
        return _trie_regex(self.sequences, self.unit_re)

    def lookup_key(self, matched: str) -> str | None:
        key = _SEP_RE.sub(" ", matched)
        found = self.exact.get(key)
        if found is not None:
            return found  # type: ignore[return-value]
        for pattern, value_key in self.patterns:
            if pattern.fullmatch(matched):
                return value_key
        return None


def observation_slug(observation: str) -> str:
    """File stem of an observation's phrase files: ``Pleural Effusion`` -> ``pleural_effusion``."""
    return observation.lower().replace(" ", "_")


@dataclass
class Lexicon:
    """A compiled lexicon. Build it with :meth:`Lexicon.load`."""

    directory: Path
    mention_re: re.Pattern
    cue_re: re.Pattern
    linking: frozenset[str]
    adverb: frozenset[str]
    barrier: frozenset[str]
    preposition: frozenset[str]
    complement: frozenset[str]
    coordinator: frozenset[str]
    side: frozenset[str]
    anaphor: frozenset[str]
    location: frozenset[str]
    measure: frozenset[str]  # "in size": a change word's complement that is not a finding
    relative: frozenset[str]  # "effusion, which has decreased": the clause describes the finding
    contrast: frozenset[str]  # "improved but persistent edema": joins two modifiers
    perfect: frozenset[str]  # "has increased" is a change, "is increased" may be a state
    aside: frozenset[str]  # with [side]: ", right greater than left," between finding and change
    past: frozenset[tuple[str, ...]]
    past_after: frozenset[tuple[str, ...]]
    transition: dict[str, str]
    current: frozenset[tuple[str, ...]]
    predicate: frozenset[str]  # [predicate] of tense.txt plus the words named there
    sections_use: frozenset[str]
    sections_skip: frozenset[str]
    #: abbreviation -> expansion (abbreviations.txt), expanded in the text before matching
    abbreviations: dict[str, str] = field(default_factory=dict)
    abbreviation_re: re.Pattern | None = None
    _mentions: _PhraseTable = field(repr=False, default_factory=_PhraseTable)
    _cues: _PhraseTable = field(repr=False, default_factory=_PhraseTable)
    _mention_cache: dict[str, frozenset[str]] = field(repr=False, default_factory=dict)
    _cue_cache: dict[str, Cue | None] = field(repr=False, default_factory=dict)

    @classmethod
    def load(cls, directory: str | Path | None = None) -> Lexicon:
        """Read and compile the lexicon in ``directory`` (default: the shipped one).

        Errors name the file and line (unknown section, severity term not in Table 1, ...).
        """
        if directory is None:
            return default_lexicon()
        return _load(Path(directory))

    def mention_observations(self, matched: str) -> frozenset[str]:
        """Observations named by a matched mention text (empty for an unmention)."""
        found = self._mention_cache.get(matched)
        if found is None:
            key = self._mentions.lookup_key(matched)
            found = self._mentions.values.get(key, frozenset()) if key else frozenset()
            if len(self._mention_cache) < 100_000:
                self._mention_cache[matched] = found  # type: ignore[assignment]
        return found  # type: ignore[return-value]

    def cue(self, matched: str) -> Cue | None:
        """The :class:`Cue` for a matched cue text."""
        if matched in self._cue_cache:
            return self._cue_cache[matched]
        key = self._cues.lookup_key(matched)
        found = self._cues.values.get(key) if key else None
        if len(self._cue_cache) < 100_000:
            self._cue_cache[matched] = found  # type: ignore[assignment]
        return found  # type: ignore[return-value]

    def expand(self, text: str) -> str:
        """``text`` (lower case) with its abbreviations written out ("no ptx" -> "no
        pneumothorax")."""
        if self.abbreviation_re is None:
            return text
        table = self.abbreviations
        return self.abbreviation_re.sub(lambda m: table[m.group()], text)

    def abbreviation_spans(self, text: str) -> list[tuple[int, int, str]]:
        """``(start, end, expansion)`` of each abbreviation in ``text``, in order."""
        if self.abbreviation_re is None:
            return []
        table = self.abbreviations
        return [(m.start(), m.end(), table[m.group()]) for m in self.abbreviation_re.finditer(text)]


def _words(path: Path, section: str) -> frozenset[str]:
    return frozenset(e.text.lower() for e in _read_sections(path).get(section, []))


def _phrases(path: Path, section: str) -> frozenset[tuple[str, ...]]:
    return frozenset(
        tuple(phrase_key(e.text).split(" ")) for e in _read_sections(path).get(section, [])
    )


@functools.lru_cache(maxsize=32)
def _read_sections(path: Path) -> dict[str, list[_Entry]]:
    sections = {
        "attachment.txt": (
            "linking",
            "adverb",
            "barrier",
            "preposition",
            "complement",
            "coordinator",
            "side",
            "anaphor",
            "location",
            "measure",
            "relative",
            "contrast",
            "gap stop",
            "perfect",
            "aside",
        ),
        "sections.txt": ("use", "skip"),
        "tense.txt": ("past", "past after", "transition", "current", "predicate"),
    }[path.name]
    return _read(path, sections)


def _read_abbreviations(path: Path) -> dict[str, tuple[str, _Entry]]:
    """abbreviations.txt: ``abbreviation = expansion`` -> {abbreviation: (expansion, entry)}."""
    if not path.is_file():
        return {}
    out: dict[str, tuple[str, _Entry]] = {}
    for entry in _read(path, None)[""]:
        short, sep, long = entry.text.partition("#")[0].partition("=")
        short, long = short.strip().lower(), " ".join(long.lower().split())
        if not sep or not short or not long or " " in short:
            raise FinegrainError(
                f"{entry.file}:{entry.line}: expected 'abbreviation = expansion' "
                "(the abbreviation one word, e.g. 'ptx = pneumothorax')"
            )
        if short in out:
            raise FinegrainError(
                f"{entry.file}:{entry.line}: {short!r} is already defined on line "
                f"{out[short][1].line}"
            )
        out[short] = (long, entry)
    return out


def _abbreviation_regex(abbreviations: dict[str, str]) -> re.Pattern | None:
    """One pattern for every abbreviation, as a whole word, shaped as a trie (the longest
    first: "w/o" before "w/"). An abbreviation ending in a letter or digit must end a word
    ("ptx", not "ptxs"); one ending in "/" may run into the next word ("w/effusion")."""
    if not abbreviations:
        return None
    end = "\x04"
    sequences = [[*a, end] if a[-1].isalnum() else list(a) for a in abbreviations]
    return re.compile(r"\b(?:" + _trie_source(sequences, {end: "(?![a-z0-9])"}) + ")")


def _check_no_abbreviation(entry: _Entry, abbreviated: dict[tuple[str, ...], str]) -> None:
    """A phrase that contains an abbreviation would never match (the text is expanded first)."""
    words = tuple(phrase_key(entry.text).split(" "))
    for short, name in abbreviated.items():
        n = len(short)
        if any(words[i : i + n] == short for i in range(len(words) - n + 1)):
            raise FinegrainError(
                f"{entry.file}:{entry.line}: {entry.text!r} contains the abbreviation {name!r}, "
                "which abbreviations.txt writes out before matching: write the phrase out too"
            )


def _load(directory: Path) -> Lexicon:
    if not directory.is_dir():
        raise FileNotFoundError(f"lexicon directory not found: {directory}")
    mention_dir = directory / "mention"
    if not mention_dir.is_dir():
        raise FileNotFoundError(f"lexicon has no mention/ folder: {mention_dir}")
    slugs = {observation_slug(o): o for o in OBSERVATIONS}
    _read_sections.cache_clear()
    attachment = directory / "attachment.txt"
    sections = directory / "sections.txt"
    tense = directory / "tense.txt"
    classes = _read_classes(directory / "classes.txt")
    abbreviation_entries = _read_abbreviations(directory / "abbreviations.txt")
    abbreviations = {
        short: long + ("" if short[-1].isalnum() else " ")
        for short, (long, _) in abbreviation_entries.items()
    }
    abbreviated = {tuple(phrase_key(short).split(" ")): short for short in abbreviations}

    def expanded(entry: _Entry) -> list[_Entry]:
        _check_no_abbreviation(entry, abbreviated)
        return [entry]

    for members in classes.values():
        for entry in members:
            _check_no_abbreviation(entry, abbreviated)

    # --- severity and change forms (read first: their words may stand in a "..." gap) ---
    forms: dict[str, dict[str, tuple[str, _Entry]]] = {}
    ignored: list[_Entry] = []
    ranges: list[str] = []
    for fname, name, table in (
        ("severity.txt", "severity", SEVERITY_CUES),
        ("change.txt", "change", CHANGE_CUES),
    ):
        sections_of = _read(
            directory / fname, ("", "ignore", "range") if name == "severity" else ("", "ignore")
        )
        ignored += [e for raw in sections_of.get("ignore", []) for e in expanded(raw)]
        ranges += [phrase_key(e.text) for e in sections_of.get("range", [])]
        forms[name] = {}
        for entry in sections_of.get("", []):
            form, sep, term = entry.text.partition("=")
            term = term.strip().lower()
            if not sep or not form.strip():
                raise FinegrainError(f"{entry.file}:{entry.line}: expected 'word form = term'")
            if term not in table:
                raise FinegrainError(
                    f"{entry.file}:{entry.line}: {term!r} is not a Table 1 {name} term; "
                    f"expected one of: {', '.join(table)}"
                )
            for one in expanded(_Entry(entry.file, entry.line, form.strip())):
                forms[name][phrase_key(one.text)] = (term, one)
    degree_words = {w for key in forms["severity"] for w in key.split(" ") if w.isalpha()}
    degree_words |= _words(attachment, "adverb") | _words(attachment, "linking") | set(ranges)
    unit_re, members = _class_units(
        classes, _gap_units(degree_words, _words(attachment, "gap stop"))
    )

    # --- mentions: phrase -> observations (unmentions remove an observation) ---
    mentions = _PhraseTable(unit_re)
    named: dict[str, set[str]] = {}
    units_of: dict[str, list[str]] = {}
    for kind in ("mention", "unmention"):
        folder = directory / kind
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.txt")):
            obs = slugs.get(path.stem)
            if obs is None:
                raise FinegrainError(
                    f"{path}: file name is not an observation; expected one of: "
                    + ", ".join(f"{s}.txt" for s in slugs)
                )
            for raw in _read(path, None)[""]:
                for entry in expanded(raw):
                    where = f"{entry.file}:{entry.line}"
                    for base in _units(entry.text, where=where, classes=members):
                        variants = _with_plurals(base) if kind == "mention" else [base]
                        for units in variants:
                            vkey = "".join(units)
                            units_of[vkey] = units
                            targets = named.setdefault(vkey, set())
                            if kind == "mention":
                                targets.add(obs)
                            else:
                                targets.discard(obs)
    # an unmention removes its observation whichever file comes first
    for path in (
        sorted((directory / "unmention").glob("*.txt"))
        if (directory / "unmention").is_dir()
        else []
    ):
        obs = slugs[path.stem]
        for raw in _read(path, None)[""]:
            for entry in expanded(raw):
                where = f"{entry.file}:{entry.line}"
                for units in _units(entry.text, where=where, classes=members):
                    named["".join(units)].discard(obs)
    for vkey, observations in named.items():
        mentions.add(units_of[vkey], vkey)
        mentions.values[vkey] = frozenset(observations)

    # --- cues: phrase -> Cue (roles merged) ---
    roles: dict[str, dict] = {}
    cue_units: dict[str, list[str]] = {}

    def role(entry: _Entry, **what) -> None:
        for units in _units(entry.text, where=f"{entry.file}:{entry.line}", classes=members):
            vkey = "".join(units)
            cue_units[vkey] = units
            slot = roles.setdefault(vkey, {"text": phrase_key(entry.text)})
            for name, value in what.items():
                if name in ("negation", "uncertainty"):
                    slot[name] = slot.get(name, frozenset()) | value
                elif name in ("severity", "change") and slot.get(name) not in (None, value):
                    raise FinegrainError(
                        f"{entry.file}:{entry.line}: {entry.text!r} already maps to {slot[name]!r}"
                    )
                else:
                    slot[name] = value

    neg = _read(directory / "negation.txt", ("pre", "post", "pseudo"))
    unc = _read(
        directory / "uncertainty.txt", ("pre", "post", "both", "pseudo", "unassessed", "adverbs")
    )
    adverbs = [e.text for e in unc.pop("adverbs", [])]
    for table, name in ((neg, "negation"), (unc, "uncertainty")):
        for section, entries in table.items():
            for entry in (
                one for raw in entries for e in _with_adverbs(raw, adverbs) for one in expanded(e)
            ):
                if section == "pseudo":
                    role(entry, pseudo=True)
                elif section == "unassessed":
                    role(entry, unassessed=True)
                elif section in ("pre", "post"):
                    role(entry, **{name: frozenset({section})})
                elif section == "both":
                    role(entry, **{name: frozenset({"pre", "post"})})
                else:
                    raise FinegrainError(f"{entry.file}:{entry.line}: entry before any [section]")
    terminators = _read(directory / "terminators.txt", ("", "negation"))
    for entry in (one for raw in terminators.get("", []) for one in expanded(raw)):
        role(entry, terminator=True)
    for entry in (one for raw in terminators.get("negation", []) for one in expanded(raw)):
        role(entry, scope_end=True)
    for entry in ignored:
        role(entry, ignore=True)
    for name in ("severity", "change"):
        for term, entry in forms[name].values():
            role(entry, **{name: term})
    transition = {}
    for entry in _read_sections(tense).get("transition", []):
        first, gap, last = phrase_key(entry.text).partition(" ... ")
        if not gap or " " in first or " " in last:
            raise FinegrainError(f"{entry.file}:{entry.line}: expected 'word ... word'")
        transition[first] = last
    for key, (term, entry) in _range_forms(forms["severity"], ranges, transition).items():
        if "".join(_units(key, where=entry.file)[0]) not in roles:  # written out in the file wins
            role(_Entry(entry.file, entry.line, key), severity=term)
    cues = _PhraseTable(unit_re)
    for vkey, slot in roles.items():
        cues.add(cue_units[vkey], vkey)
        cues.values[vkey] = Cue(**slot)

    past = _phrases(tense, "past")
    return Lexicon(
        directory=directory,
        mention_re=mentions.compile(),
        cue_re=cues.compile(),
        linking=_words(attachment, "linking"),
        adverb=_words(attachment, "adverb"),
        barrier=_words(attachment, "barrier"),
        preposition=_words(attachment, "preposition"),
        complement=_words(attachment, "complement"),
        coordinator=_words(attachment, "coordinator"),
        side=_words(attachment, "side"),
        anaphor=_words(attachment, "anaphor"),
        location=_words(attachment, "location"),
        measure=_words(attachment, "measure"),
        relative=_words(attachment, "relative"),
        contrast=_words(attachment, "contrast"),
        perfect=_words(attachment, "perfect"),
        aside=_words(attachment, "aside"),
        past=past,
        past_after=_phrases(tense, "past after"),
        transition=transition,
        current=_phrases(tense, "current"),
        predicate=_words(tense, "predicate")
        | _words(attachment, "linking")
        | _words(attachment, "adverb")
        | _words(attachment, "coordinator")
        | frozenset(w for p in past for w in p)
        | frozenset(w for p in _phrases(tense, "past after") for w in p)
        | frozenset(transition)
        | frozenset(transition.values())
        | frozenset(w for e in _read_sections(tense).get("current", []) for w in e.text.split()),
        sections_use=frozenset(phrase_key(e.text) for e in _read_sections(sections)["use"]),
        sections_skip=frozenset(
            phrase_key(e.text) for e in _read_sections(sections).get("skip", [])
        ),
        abbreviations=abbreviations,
        abbreviation_re=_abbreviation_regex(abbreviations),
        _mentions=mentions,
        _cues=cues,
    )


def _range_forms(
    severity: dict[str, tuple[str, _Entry]], joiners: list[str], transition: dict[str, str]
) -> dict[str, tuple[str, _Entry]]:
    """Phrases for two one-word degrees joined as a range ("moderately to markedly",
    "small-moderate": :func:`range_term`) and as a change of degree ("from moderate to small":
    the second, the degree now). A word of ``joiners`` joins any two forms; a hyphen or slash
    (or a space: they match alike) two adjectives or two adverbs, not an adverb ("-ly") and an
    adjective."""
    single = {
        key: (term, entry)
        for key, (term, entry) in severity.items()
        if " " not in key and term not in _RANGE_ENDS
    }
    out: dict[str, tuple[str, _Entry]] = {}
    for first, (term1, entry) in single.items():
        for second, (term2, _) in single.items():
            term = range_term(term1, term2)
            if term is None:
                continue
            # a bare join (hyphen, slash) only between two adjectives or two adverbs
            # ("mild-moderate", "mildly-moderately"): "slightly large" is an adverb grading
            # an adjective, not a range
            grading = first.endswith("ly") and not second.endswith("ly")
            for joiner in joiners if grading else ("", *joiners):
                out[" ".join(w for w in (first, joiner, second) if w)] = (term, entry)
            for start, end in transition.items():
                out[f"{start} {first} {end} {second}"] = (term2, entry)
    return out


@functools.lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The shipped lexicon, loaded once per process."""
    return _load(DEFAULT_LEXICON_DIR)
