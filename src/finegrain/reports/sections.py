"""Report sections (FINDINGS, IMPRESSION, ...) and de-identification marks.

A *header* is a name followed by ``:`` that is either listed in the lexicon's ``sections.txt``
(in any case) or written in capitals (``WET READ:``), wherever it stands: at the start of a
line or inside one, as in one-line exports (``HISTORY: cough FINDINGS: ...``). Of the words
before a colon, the longest listed name wins, else the longest run of capitals. Line ends
``\r\n`` and ``\r`` count as ``\n``, so the sections do not depend on how lines are broken.
The labelled text is:

1. every ``[use]`` section (FINDINGS, IMPRESSION, CONCLUSION, ...) in report order, if any;
2. otherwise the whole report except ``[skip]`` sections (INDICATION, HISTORY, COMPARISON,
   TECHNIQUE, ...), including text before the first header.

Rationale: CheXpert labels the impression only and MIMIC-CXR's released labels use the
impression, else the findings, else the last paragraph. Findings and impression together lose
no finding stated in only one of them (OpenI's gold standard is annotated on both), and
positive-beats-negative aggregation over mentions keeps a finding that the impression omits.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

# the run of header characters that ends at a colon (searched in a window before the colon)
_NAME_RUN = re.compile(r"[A-Za-z][A-Za-z /&()\-]*?[ \t]*$")
_WORD = re.compile(r"[^ \t]+")
_MAX_NAME = 41
_LINE_END = re.compile(r"\r\n?")
_SPACE = re.compile(r"[\s/&()\-]+")

#: De-identification marks: MIMIC-CXR's ``___`` and OpenI's ``XXXX``.
DEID_RE = re.compile(r"__+|XXX+|xxx+")
# one literal-prefixed pattern per mark is several times faster than one alternation
_DEID_PASSES = (re.compile("__+"), re.compile("XXX+"), re.compile("xxx+"))
#: Neutral token that replaces a de-identification mark (keeps cue scopes intact).
DEID_TOKEN = " deid "


@dataclass(frozen=True)
class Section:
    """One section: normalised ``name`` (``""`` before the first header) and its ``text``."""

    name: str
    text: str


def _norm(name: str) -> str:
    return _SPACE.sub(" ", name.lower()).strip()


def _header(before: str, known: Collection[str]) -> tuple[str, int] | None:
    """(normalised name, offset of its first letter in ``before``) of the header whose colon
    follows ``before``, or None."""
    run = _NAME_RUN.search(before)
    if run is None:
        return None
    starts = [run.start() + w.start() for w in _WORD.finditer(run.group())]
    suffixes = [(k, before[k:].rstrip()) for k in starts if len(before) - k <= _MAX_NAME + 8]
    for k, raw in suffixes:
        if len(raw) <= _MAX_NAME and _norm(raw) in known:
            return _norm(raw), k
    for k, raw in suffixes:
        if len(raw) <= _MAX_NAME and raw.isupper() and len(raw) >= 3:
            return _norm(raw), k
    return None


def split_sections(text: str, known: Collection[str] = ()) -> list[Section]:
    """Split ``text`` at section headers; ``known`` are lower-case names accepted in any case."""
    if "\r" in text:
        text = _LINE_END.sub("\n", text)
    sections: list[Section] = []
    name, start = "", 0
    colon = text.find(":")
    while colon >= 0:
        lo = max(0, colon - _MAX_NAME - 8, text.rfind("\n", 0, colon) + 1)
        found = _header(text[lo:colon], known)
        if found is not None:
            norm, k = found
            head = lo + k
            if text[start:head].strip() or name:
                sections.append(Section(name, text[start:head]))
            name, start = norm, colon + 1
        colon = text.find(":", colon + 1)
    sections.append(Section(name, text[start:]))
    return [s for s in sections if s.name or s.text.strip()]


def select_text(text: str, use: Collection[str], skip: Collection[str]) -> str:
    """The part of a report that is labelled (see the module docstring).

    >>> select_text("INDICATION: cough\\nFINDINGS: small effusion.", {"findings"}, {"indication"})
    ' small effusion.'
    """
    sections = split_sections(text, set(use) | set(skip))
    chosen = [s.text for s in sections if s.name in use]
    if not chosen:
        chosen = [s.text for s in sections if s.name not in skip]
    return "\n\n".join(chosen)


def remove_deid(text: str) -> str:
    """Replace de-identification marks (``___``, ``XXXX``) by a neutral word."""
    for pattern in _DEID_PASSES:
        if pattern.pattern[0] in text:
            text = pattern.sub(DEID_TOKEN, text)
    return text
