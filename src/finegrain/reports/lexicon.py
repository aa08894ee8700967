"""Load the plain-text lexicon (``finegrain/reports/lexicon/``) into compiled matchers.

The phrases live in data files a radiologist can read and extend (see ``lexicon/README.txt``);
this module only parses them and compiles each family (mentions; cues) into ONE regular
expression shaped as a character trie, so that a sentence is scanned once per family whatever
the number of phrases.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from finegrain.division import CHANGE_CUES, SEVERITY_CUES
from finegrain.errors import FinegrainError
from finegrain.observations import OBSERVATIONS

#: The lexicon shipped with finegrain.
DEFAULT_LEXICON_DIR = Path(__file__).with_name("lexicon")

#: Pseudo-observation for "other abnormalities" (``mention/no_finding.txt``): a positive or
#: uncertain mention prevents No Finding but fills no column of its own.
OTHER_FINDING = "No Finding"

_SEP_RE = re.compile(r"[\s\-/]+")
_SEP, _WILD, _GAP = "\x00", "\x01", "\x02"
_UNIT_RE = {
    _SEP: r"[\s\-/]+",
    _WILD: r"[a-z0-9]*",
    _GAP: r"(?:[\s\-]+[a-z0-9']+){0,3}?[\s\-]+",
}
_WORD_EDGE = "(?<![a-z0-9])(?:{})(?![a-z0-9])"


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


def _units(phrase: str, *, where: str) -> list[list[str]]:
    """Trie units of a phrase and its plural variants (mentions only get plurals)."""
    words = phrase_key(phrase).split(" ")
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
        if word.endswith("*"):
            units.extend(word[:-1])
            units.append(_WILD)
        else:
            units.extend(word)
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


def _with_plurals(units: list[str]) -> list[list[str]]:
    if units[-1] in (_WILD, _GAP):
        return [units]
    return [units, [*units, "s"], [*units, "e", "s"]]


def _trie_regex(sequences: list[list[str]]) -> re.Pattern:
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
        for unit in sorted((u for u in node if u), key=lambda u: (u in _UNIT_RE, u)):
            piece = _UNIT_RE.get(unit) or re.escape(unit)
            branches.append(piece + emit(node[unit]))
        if not branches:
            return ""
        if len(branches) == 1 and not end:
            return branches[0]
        return "(?:" + "|".join(branches) + ")" + ("?" if end else "")

    if not trie:
        return re.compile(r"(?!x)x")  # matches nothing
    return re.compile(_WORD_EDGE.format(emit(trie)))


def _phrase_pattern(units: list[str]) -> re.Pattern:
    return re.compile("".join(_UNIT_RE.get(u) or re.escape(u) for u in units))


def _key_of(units: list[str]) -> str | None:
    """Exact lookup key of a literal phrase (None if it has a wildcard or gap)."""
    if _WILD in units or _GAP in units:
        return None
    return "".join(" " if u == _SEP else u for u in units)


class _PhraseTable:
    """Phrases -> values, one combined regex, exact lookup plus a few pattern fallbacks."""

    def __init__(self) -> None:
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
            self.patterns.append((_phrase_pattern(units), value_key))

    def compile(self) -> re.Pattern:
        return _trie_regex(self.sequences)

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
    past: frozenset[str]
    past_after: frozenset[tuple[str, ...]]
    transition: dict[str, str]
    current: frozenset[tuple[str, ...]]
    predicate: frozenset[str]  # [predicate] of tense.txt plus the words named there
    sections_use: frozenset[str]
    sections_skip: frozenset[str]
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


def _words(path: Path, section: str) -> frozenset[str]:
    return frozenset(e.text.lower() for e in _read_sections(path).get(section, []))


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
        ),
        "sections.txt": ("use", "skip"),
        "tense.txt": ("past", "past after", "transition", "current", "predicate"),
    }[path.name]
    return _read(path, sections)


def _load(directory: Path) -> Lexicon:
    if not directory.is_dir():
        raise FileNotFoundError(f"lexicon directory not found: {directory}")
    mention_dir = directory / "mention"
    if not mention_dir.is_dir():
        raise FileNotFoundError(f"lexicon has no mention/ folder: {mention_dir}")
    slugs = {observation_slug(o): o for o in OBSERVATIONS}

    # --- mentions: phrase -> observations (unmentions remove an observation) ---
    mentions = _PhraseTable()
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
            for entry in _read(path, None)[""]:
                where = f"{entry.file}:{entry.line}"
                for base in _units(entry.text, where=where):
                    variants = _with_plurals(base) if kind == "mention" else [base]
                    for units in variants:
                        vkey = "".join(units)
                        units_of[vkey] = units
                        targets = named.setdefault(vkey, set())
                        if kind == "mention":
                            targets.add(obs)
    for path in (
        sorted((directory / "unmention").glob("*.txt"))
        if (directory / "unmention").is_dir()
        else []
    ):
        obs = slugs[path.stem]
        for entry in _read(path, None)[""]:
            for units in _units(entry.text, where=f"{entry.file}:{entry.line}"):
                named["".join(units)].discard(obs)
    for vkey, observations in named.items():
        mentions.add(units_of[vkey], vkey)
        mentions.values[vkey] = frozenset(observations)

    # --- cues: phrase -> Cue (roles merged) ---
    roles: dict[str, dict] = {}
    cue_units: dict[str, list[str]] = {}

    def role(entry: _Entry, **what) -> None:
        for units in _units(entry.text, where=f"{entry.file}:{entry.line}"):
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
            for entry in (e for raw in entries for e in _with_adverbs(raw, adverbs)):
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
    for entry in terminators.get("", []):
        role(entry, terminator=True)
    for entry in terminators.get("negation", []):
        role(entry, scope_end=True)
    for fname, name, table in (
        ("severity.txt", "severity", SEVERITY_CUES),
        ("change.txt", "change", CHANGE_CUES),
    ):
        sections = _read(directory / fname, ("", "ignore"))
        for entry in sections.get("ignore", []):
            role(entry, ignore=True)
        for entry in sections.get("", []):
            form, sep, term = entry.text.partition("=")
            term = term.strip().lower()
            if not sep or not form.strip():
                raise FinegrainError(f"{entry.file}:{entry.line}: expected 'word form = term'")
            if term not in table:
                raise FinegrainError(
                    f"{entry.file}:{entry.line}: {term!r} is not a Table 1 {name} term; "
                    f"expected one of: {', '.join(table)}"
                )
            role(_Entry(entry.file, entry.line, form.strip()), **{name: term})
    cues = _PhraseTable()
    for vkey, slot in roles.items():
        cues.add(cue_units[vkey], vkey)
        cues.values[vkey] = Cue(**slot)

    attachment = directory / "attachment.txt"
    sections = directory / "sections.txt"
    tense = directory / "tense.txt"
    _read_sections.cache_clear()
    transition = {}
    for entry in _read_sections(tense).get("transition", []):
        first, gap, last = phrase_key(entry.text).partition(" ... ")
        if not gap or " " in first or " " in last:
            raise FinegrainError(f"{entry.file}:{entry.line}: expected 'word ... word'")
        transition[first] = last
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
        past=_words(tense, "past"),
        past_after=frozenset(
            tuple(phrase_key(e.text).split(" "))
            for e in _read_sections(tense).get("past after", [])
        ),
        transition=transition,
        current=frozenset(
            tuple(phrase_key(e.text).split(" ")) for e in _read_sections(tense).get("current", [])
        ),
        predicate=_words(tense, "predicate")
        | _words(attachment, "linking")
        | _words(attachment, "adverb")
        | _words(attachment, "coordinator")
        | _words(tense, "past")
        | frozenset(transition)
        | frozenset(transition.values())
        | frozenset(w for e in _read_sections(tense).get("current", []) for w in e.text.split()),
        sections_use=frozenset(phrase_key(e.text) for e in _read_sections(sections)["use"]),
        sections_skip=frozenset(
            phrase_key(e.text) for e in _read_sections(sections).get("skip", [])
        ),
        _mentions=mentions,
        _cues=cues,
    )


@functools.lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The shipped lexicon, loaded once per process."""
    return _load(DEFAULT_LEXICON_DIR)
