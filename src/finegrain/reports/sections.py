"""Report sections (FINDINGS, IMPRESSION, ...) and de-identification marks.

A *header* is a name at the start of a line followed by ``:`` that is either listed in the
lexicon's ``sections.txt`` or written in capitals (``WET READ:``). The labelled text is:

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

_HEADER = re.compile(r"[ \t]*([A-Za-z][A-Za-z /&()\-]{0,40}?)[ \t]*:")  # at a line start
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


def split_sections(text: str, known: Collection[str] = ()) -> list[Section]:
    """Split ``text`` at section headers; ``known`` are lower-case names accepted in any case."""
    sections: list[Section] = []
    name, start = "", 0
    line_start = 0
    for line in text.split("\n"):
        match = _HEADER.match(line) if ":" in line else None
        if match is not None:
            raw = match.group(1).strip()
            norm = _norm(raw)
            if norm in known or (raw.isupper() and len(raw) >= 3):
                if line_start > start or name:
                    sections.append(Section(name, text[start:line_start]))
                name, start = norm, line_start + match.end()
        line_start += len(line) + 1
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
