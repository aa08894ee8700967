"""OpenI's XML reports as published (``NLMCXR_reports.tgz`` or its ``ecgen-radiology/`` folder).

One XML file per report (Demner-Fushman et al., JAMIA 2016). What is read from each:

- ``IUXRId/@id``: the report id (the file is ``<id>.xml``); OpenI has no patient ids, so a report
  is one patient's study.
- ``AbstractText[@Label]``: the sections INDICATION, COMPARISON, FINDINGS and IMPRESSION.
- ``parentImage/@id``: the ids of the report's images (``CXR<id>_IM-....``); the PNG / DICOM
  files are named after them.
- ``MeSH/major`` and ``MeSH/minor``: the manual MeSH annotation, ``Heading/modifier/...``
  (e.g. ``Pleural Effusion/left/small``). ``MeSH/automatic`` (machine-made) is not read.

The archive is read in memory, member by member: nothing is extracted, member names are never
used as paths, only regular ``*.xml`` members up to :data:`MAX_REPORT_BYTES` are parsed, and a
document that declares a DTD or entities is refused by the parser (``defusedxml``, whatever the
document's encoding: no entity expansion).

>>> xml = b'''<eCitation><IUXRId id="7"/><Abstract>
... <AbstractText Label="FINDINGS">Small left effusion.</AbstractText>
... <AbstractText Label="IMPRESSION">Effusion.</AbstractText></Abstract>
... <MeSH><major>Pleural Effusion/left/small</major></MeSH>
... <parentImage id="CXR7_IM-0001-1001"/></eCitation>'''
>>> report = parse_report(xml, "7.xml")
>>> report.id, report.images, report.mesh
('7', ('CXR7_IM-0001-1001',), ('Pleural Effusion/left/small',))
>>> print(report.text)
FINDINGS: Small left effusion.
IMPRESSION: Effusion.
"""

from __future__ import annotations

import os
import re
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import defusedxml.ElementTree as defused
from defusedxml import DefusedXmlException

from finegrain.errors import FinegrainError

#: Section order of the report text (as in the CSV export of the collection).
SECTION_ORDER: tuple[str, ...] = ("INDICATION", "COMPARISON", "FINDINGS", "IMPRESSION")
#: The archive and folder names of the published reports.
REPORTS_ARCHIVE = "NLMCXR_reports.tgz"
REPORTS_FOLDER = "ecgen-radiology"
#: Larger members are refused (the real reports are under 20 kB each).
MAX_REPORT_BYTES = 1 << 20

_REPORT_ID = re.compile(r"^\d+$")


@dataclass(frozen=True)
class OpenIReport:
    """One report: ``id``, its ``sections`` (label -> text), image ids and MeSH terms."""

    id: str
    sections: dict[str, str]
    images: tuple[str, ...]
    mesh: tuple[str, ...]

    @property
    def text(self) -> str:
        """``LABEL: text`` lines in :data:`SECTION_ORDER`, empty sections left out (the layout of
        the collection's CSV export, so both give the labeler the same text)."""
        return "\n".join(
            f"{label}: {self.sections[label]}"
            for label in SECTION_ORDER
            if self.sections.get(label)
        )


class ReportError(FinegrainError):
    """A report file that cannot be read; the message names the file and the reason."""


def parse_report(data: bytes, name: str) -> OpenIReport:
    """Parse one report XML (``name`` is only used in error messages)."""
    try:
        root = defused.fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise ReportError(f"{name}: declares a DTD or entities (refused)") from None
    except (ET.ParseError, ValueError) as exc:  # ValueError: an encoding expat cannot read
        raise ReportError(f"{name}: not well-formed XML ({exc})") from None
    node = root.find("IUXRId")
    report_id = (node.get("id") or "").strip() if node is not None else ""
    if not _REPORT_ID.match(report_id):
        raise ReportError(f"{name}: no numeric <IUXRId id=...> (found {report_id!r})")
    sections: dict[str, str] = {}
    for abstract in root.iter("AbstractText"):
        label = (abstract.get("Label") or "").strip().upper()
        text = "".join(abstract.itertext()).strip()
        if label and text:
            sections[label] = text
    images = tuple(
        image_id
        for image in root.iter("parentImage")
        if (image_id := (image.get("id") or "").strip())
    )
    mesh = tuple(
        term
        for tag in ("major", "minor")
        for node in root.findall(f"MeSH/{tag}")
        if (term := (node.text or "").strip())
    )
    return OpenIReport(id=report_id, sections=sections, images=images, mesh=mesh)


def find_reports(root: str | Path) -> Path:
    """The reports under ``root``: ``NLMCXR_reports.tgz`` or ``ecgen-radiology/`` (or ``root``
    itself when it is one of them); a ``FileNotFoundError`` naming both otherwise."""
    root = Path(root)
    if root.is_file() or root.name == REPORTS_FOLDER:
        return root
    for candidate in (root / REPORTS_FOLDER, root / REPORTS_ARCHIVE):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"OpenI reports not found: neither {root / REPORTS_ARCHIVE} nor {root / REPORTS_FOLDER}/"
    )


def _archive_members(path: Path) -> Iterator[tuple[str, bytes | None, str | None]]:
    with tarfile.open(path, "r:*") as archive:
        for member in archive:  # streamed: one member at a time
            name = member.name
            if not name.lower().endswith(".xml"):
                continue
            if not member.isfile():
                yield name, None, "not a regular file"
            elif member.size > MAX_REPORT_BYTES:
                yield name, None, f"larger than {MAX_REPORT_BYTES} bytes"
            else:
                handle = archive.extractfile(member)
                yield name, handle.read() if handle is not None else None, None


def _folder_members(path: Path) -> Iterator[tuple[str, bytes | None, str | None]]:
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if not entry.name.lower().endswith(".xml"):
            continue
        if not entry.is_file(follow_symlinks=False):
            yield entry.name, None, "not a regular file"
        elif entry.stat().st_size > MAX_REPORT_BYTES:
            yield entry.name, None, f"larger than {MAX_REPORT_BYTES} bytes"
        else:
            yield entry.name, Path(entry.path).read_bytes(), None


def read_reports(
    source: str | Path, *, progress: bool = False
) -> tuple[list[OpenIReport], list[str]]:
    """Every report of ``source`` (an archive or folder, see :func:`find_reports`), sorted by
    numeric id, and the failures (one message per unreadable file, naming it and why).

    Two files with the same report id are a failure of the second.
    """
    from tqdm import tqdm

    source = find_reports(source)
    members = _folder_members(source) if source.is_dir() else _archive_members(source)
    reports: dict[str, OpenIReport] = {}
    failures: list[str] = []
    for name, data, problem in tqdm(
        members, desc="reading OpenI reports", unit="report", disable=not progress
    ):
        if problem is not None or data is None:
            failures.append(f"{source}:{name}: {problem or 'unreadable'}")
            continue
        try:
            report = parse_report(data, f"{source}:{name}")
        except ReportError as exc:
            failures.append(str(exc))
            continue
        if report.id in reports:
            failures.append(f"{source}:{name}: duplicate report id {report.id}")
            continue
        reports[report.id] = report
    return sorted(reports.values(), key=lambda r: int(r.id)), failures
