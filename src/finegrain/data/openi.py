"""OpenI (Indiana University chest X-ray collection) as an index table, in two layouts.

**As published** (Open-i, https://openi.nlm.nih.gov/faq; CC BY-NC-ND 4.0): a folder ``ROOT`` with

- the reports: ``NLMCXR_reports.tgz`` (read in memory, never extracted) or its extracted
  ``ecgen-radiology/`` folder (see :mod:`finegrain.data.openi_reports`);
- the images: ``NLMCXR_png/`` or ``NLMCXR_dcm/`` (any depth), or only their archive
  ``NLMCXR_png.tgz`` / ``NLMCXR_dcm.tgz``, which is then unpacked safely into that folder
  (regular ``.png`` / ``.dcm`` members only, flat, by base name; see :func:`extract_images`).
  Files are named after the XML's ``parentImage`` ids: ``CXR1_1_IM-0001-3001.png`` or, for
  DICOM, ``1_1_IM-0001-3001.dcm`` (the id without ``CXR``).

Views come from the DICOM headers (``ViewPosition``) when the images are DICOM, otherwise from
``views_table``: a CSV (``.csv`` / ``.csv.gz``) with the columns ``imageid`` and
``View Position``, the format of torchxrayvision's ``nlmcxr_dicom_metadata.csv.gz``. Frontal
images (``PA``, ``AP``) are kept by default.

OpenI has **no patient ids**: each report is one patient's study, so ``subject_id`` and
``study_id`` are the report id. It has **no official split** either: the split is
:func:`~finegrain.data.sources.patient_split` of the report id with ``seed`` (SHA-1 of
``"<seed>:<report id>"``, 70 / 10 / 20 % train / validate / test), the same on every machine and
run, and it is stored in the index's ``split`` column.

Coarse labels and subcategories come from the report labeler on the report text (or a
``finegrain label`` CSV keyed by report id). The manual MeSH annotation gives a second,
human, subcategory per observation: ``<Observation> subcategory mesh`` (see
:mod:`finegrain.data.mesh`), set wherever the annotation has a Table 1 severity modifier,
whatever the text-mined label.

Counted, never silent: reports that cannot be read (``report unreadable``, by file), reports
without images (``report without image``), image files no report names (a note), views not
kept, label rows missing and image files missing.

**CSV export** (older layout): a folder with ``reports.csv`` (``id, report``) and the images,
mapped to reports by either ``images.csv`` with ``id, path`` (path relative to the folder;
optional ``view``), one row per image, or an ``images/`` folder whose file names start with
the report id: ``<id>.png``, ``<id>_<anything>.png`` or Open-i's ``CXR<id>_<anything>.png``
(``.png``/``.jpg``/``.jpeg``). Same split and labels; no MeSH.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.data.index import IndexSummary
from finegrain.data.mesh import load_mesh_map, mesh_findings, mesh_subcategory_column
from finegrain.data.openi_reports import OpenIReport, find_reports, read_reports
from finegrain.data.sources import (
    check_columns,
    finish_source,
    keep_existing_files,
    keep_views,
    label_texts,
    patient_split,
    read_table,
)
from finegrain.errors import FinegrainError

log = logging.getLogger(__name__)

#: The images' folder and archive names, by kind.
IMAGE_FOLDERS: dict[str, str] = {"png": "NLMCXR_png", "dcm": "NLMCXR_dcm"}
#: The views kept by default (frontal).
FRONTAL_VIEWS: tuple[str, ...] = ("PA", "AP")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*\.(png|dcm)$", re.IGNORECASE)

IMAGE_NAME = re.compile(r"^(?:CXR)?(\d+)(?:_.*)?\.(?:png|jpe?g)$", re.IGNORECASE)


def _image_table(folder: Path) -> pd.DataFrame:
    mapping = folder / "images.csv"
    if mapping.is_file():
        table = read_table(mapping, what="OpenI image table")
        check_columns(table, ("id", "path"), mapping)
        table["_line"] = np.arange(len(table)) + 2
        return table
    images = folder / "images"
    if not images.is_dir():
        raise FileNotFoundError(f"OpenI images not found: neither {mapping} nor {images}/")
    rows = []
    for name in sorted(os.listdir(images)):
        m = IMAGE_NAME.match(name)
        if m:
            rows.append({"id": str(int(m.group(1))), "path": f"images/{name}", "_line": pd.NA})
    return pd.DataFrame(rows, columns=["id", "path", "_line"])


def _index_export(
    folder: Path, *, labels: str | Path | None, skip_missing: bool, seed: int, progress: bool
) -> tuple[pd.DataFrame, IndexSummary]:
    """The CSV-export layout (``reports.csv`` + ``images.csv`` or ``images/``)."""
    summary = IndexSummary()
    reports_path = folder / "reports.csv"
    reports = read_table(reports_path, what="OpenI reports")
    check_columns(reports, ("id", "report"), reports_path)
    reports["id"] = reports["id"].astype("string").str.strip()
    images = _image_table(folder)
    images["id"] = images["id"].astype("string").str.strip()
    summary.drop("report without image", int((~reports["id"].isin(images["id"])).sum()))
    frame = images.merge(reports[["id", "report"]], on="id", how="left")
    no_report = frame["report"].isna().to_numpy()
    summary.drop("report missing", int(no_report.sum()))
    frame = frame[~no_report].reset_index(drop=True)

    if labels is None:
        studies = frame.drop_duplicates("id")
        labeled = label_texts(studies["report"].astype(str).tolist(), progress=progress)
        labeled["id"] = studies["id"].to_numpy()
        frame = frame.merge(labeled, on="id", how="left")
    frame = frame.assign(
        image_id=frame["path"].map(lambda p: Path(p).stem),
        subject_id=frame["id"],
        study_id=frame["id"],
        split=patient_split(frame["id"], seed=seed),
        view=frame["view"] if "view" in frame.columns else pd.NA,
    )
    frame = finish_source(
        frame,
        summary,
        root=folder,
        source=str(folder),
        skip_missing=skip_missing,
        where=lambda row: (
            f"images.csv line {row['_line']}"
            if pd.notna(row["_line"])
            else f"report id {row['id']}"
        ),
        labels=labels,
        key="id",
    )
    return frame, summary


def index_openi(
    root: str | Path,
    *,
    views: Sequence[str] | None = FRONTAL_VIEWS,
    views_table: str | Path | None = None,
    labels: str | Path | None = None,
    skip_missing: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> tuple[pd.DataFrame, IndexSummary]:
    """Build the index table of an OpenI folder (paths relative to ``root``), as published or as
    a CSV export (``reports.csv`` present); see the module docstring.

    ``views``: view positions kept in the published layout (``None`` keeps all; a CSV export
    keeps every image, as before). ``views_table``: the view positions of PNG images
    (``imageid``, ``View Position``).
    """
    root = Path(root)
    if (root / "reports.csv").is_file():
        if views_table is not None:
            raise FinegrainError(f"{root}: a CSV export has no image ids to look up in views_table")
        return _index_export(
            root, labels=labels, skip_missing=skip_missing, seed=seed, progress=progress
        )
    return _index_published(
        root,
        views=views,
        views_table=views_table,
        labels=labels,
        skip_missing=skip_missing,
        seed=seed,
        progress=progress,
    )


def extract_images(archive: str | Path, dest: str | Path, *, progress: bool = True) -> int:
    """Unpack the ``.png`` / ``.dcm`` members of ``archive`` flat into ``dest``; return how many.

    Safe by construction: only regular members whose base name is a plain file name
    (letters, digits, ``_ . -``) are written, under that base name, never the member's path;
    links, devices and other names are skipped. Each file is written to a temporary name and
    renamed, and files already there with the right size are kept, so an interrupted run resumes.
    """
    from tqdm import tqdm

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written = 0
    with tarfile.open(archive, "r:*") as tar:
        for member in tqdm(tar, desc=f"unpacking {Path(archive).name}", disable=not progress):
            name = member.name.replace("\\", "/").rsplit("/", 1)[-1]
            if not member.isfile() or not _SAFE_NAME.match(name):
                continue
            target = dest / name
            if target.is_file() and target.stat().st_size == member.size:
                written += 1
                continue
            source = tar.extractfile(member)
            if source is None:
                continue
            partial = dest / f".{name}.partial"
            with open(partial, "wb") as handle:
                shutil.copyfileobj(source, handle, 1 << 20)
            os.replace(partial, target)
            written += 1
    return written


def find_images(root: Path, *, progress: bool = True) -> tuple[str, str]:
    """``(kind, folder)`` of the published images under ``root`` (``png`` or ``dcm``; the folder
    relative to ``root``), unpacking ``NLMCXR_png.tgz`` / ``NLMCXR_dcm.tgz`` when only the
    archive is there."""
    for kind, folder in IMAGE_FOLDERS.items():
        if (root / folder).is_dir():
            return kind, folder
    for kind, folder in IMAGE_FOLDERS.items():
        archive = root / f"{folder}.tgz"
        if archive.is_file():
            extract_images(archive, root / folder, progress=progress)
            return kind, folder
    names = ", ".join(f"{f}/ or {f}.tgz" for f in IMAGE_FOLDERS.values())
    raise FileNotFoundError(f"OpenI images not found under {root}: expected {names}")


def _image_id(stem: str) -> str:
    """``CXR1_1_IM-0001-3001`` from a PNG stem (the id itself) or a DICOM stem (without CXR)."""
    return stem if stem.upper().startswith("CXR") else f"CXR{stem}"


def _list_images(root: Path, folder: str, kind: str) -> dict[str, str]:
    """image id -> path relative to ``root`` for every ``.<kind>`` file under ``root/folder``."""
    found: dict[str, str] = {}
    suffix = f".{kind}"
    for directory, _dirs, files in os.walk(root / folder):
        for name in sorted(files):
            if name.lower().endswith(suffix) and not name.startswith("."):
                rel = os.path.relpath(os.path.join(directory, name), root).replace(os.sep, "/")
                found.setdefault(_image_id(name[: -len(suffix)]), rel)
    return found


def read_views_table(path: str | Path) -> dict[str, str]:
    """image id -> view position from a CSV with ``imageid`` and ``View Position`` (the format of
    torchxrayvision's ``nlmcxr_dicom_metadata.csv.gz``); blank positions are left out."""
    table = read_table(path, what="OpenI views table")
    check_columns(table, ("imageid", "View Position"), path)
    ids = table["imageid"].astype("string").str.strip()
    view = table["View Position"].astype("string").str.strip().str.upper()
    keep = ids.notna() & view.notna() & (view != "")
    return dict(zip(ids[keep], view[keep], strict=True))


def _dicom_views(paths: Sequence[str], *, progress: bool) -> tuple[list[str | None], int]:
    """``ViewPosition`` of each DICOM file (header only; ``None`` where absent or unreadable)
    and the number of unreadable headers."""
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError:
        raise ImportError(
            "reading OpenI's DICOM headers needs pydicom: pip install 'finegrain[dicom]'"
        ) from None
    from tqdm import tqdm

    out: list[str | None] = []
    unreadable = 0
    for path in tqdm(paths, desc="reading DICOM views", unit="image", disable=not progress):
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["ViewPosition"])
        except (OSError, InvalidDicomError):
            out.append(None)
            unreadable += 1
            continue
        value = str(header.get("ViewPosition", "") or "").strip().upper()
        out.append(value or None)
    return out, unreadable


def _index_published(
    root: Path,
    *,
    views: Sequence[str] | None,
    views_table: str | Path | None,
    labels: str | Path | None,
    skip_missing: bool,
    seed: int,
    progress: bool,
) -> tuple[pd.DataFrame, IndexSummary]:
    summary = IndexSummary()
    reports, failures = read_reports(root, progress=progress)
    summary.drop("report unreadable", len(failures))
    for failure in failures:
        log.warning("OpenI report skipped: %s", failure)
    if not reports:
        raise FinegrainError(f"{find_reports(root)}: no readable OpenI report")
    summary.drop("report without image", sum(not r.images for r in reports))
    kind, folder = find_images(root, progress=progress)
    if views is not None and kind == "png" and views_table is None:
        raise FinegrainError(
            f"{root / folder}: PNG images carry no view position; pass views_table (--views "
            "TABLE: torchxrayvision's nlmcxr_dicom_metadata.csv.gz or a CSV with imageid, "
            "View Position), or keep every view"
        )
    files = _list_images(root, folder, kind)
    rows = [
        {
            "image_id": image,
            "study_id": report.id,
            "path": files.get(image) or f"{folder}/{image if kind == 'png' else image[3:]}.{kind}",
        }
        for report in reports
        for image in report.images
    ]
    frame = pd.DataFrame(rows, columns=["image_id", "study_id", "path"])
    summary.note("image files that no report names", len(set(files) - set(frame["image_id"])))
    frame["subject_id"] = frame["study_id"]  # no patient ids: a report is one patient's study
    frame["split"] = patient_split(frame["study_id"], seed=seed)

    def where(row: pd.Series) -> str:
        return f"image {row['image_id']} of report {row['study_id']}"

    if views_table is not None:
        table = read_views_table(views_table)
        frame["view"] = frame["image_id"].map(table).astype("string")
    elif kind == "dcm":
        frame = keep_existing_files(frame, root, summary, skip_missing=skip_missing, where=where)
        paths = [os.path.join(root, p) for p in frame["path"]]
        found, unreadable = _dicom_views(paths, progress=progress)
        frame["view"] = pd.array(found, dtype="string")
        summary.note("DICOM headers unreadable: view unknown (counted as missing)", unreadable)
    else:
        frame["view"] = pd.NA
    if views is not None:
        frame = keep_views(frame, views, summary)

    by_id = {r.id: r for r in reports}
    kept = list(dict.fromkeys(frame["study_id"]))
    if labels is None:
        labeled = label_texts([by_id[i].text for i in kept], progress=progress)
        labeled["study_id"] = kept
        frame = frame.merge(labeled, on="study_id", how="left")
    mesh = _mesh_columns([by_id[i] for i in kept])
    frame = frame.merge(mesh, on="study_id", how="left")

    def count_mesh(kept: pd.DataFrame) -> pd.DataFrame:
        n_mesh = int(kept[list(mesh.columns[1:])].notna().any(axis=1).sum())
        summary.note("images with a MeSH subcategory (human fine label)", n_mesh)
        return kept

    frame = finish_source(
        frame,
        summary,
        root=root,
        source=str(root),
        skip_missing=skip_missing,
        where=where,
        labels=labels,
        then=count_mesh,
    )
    return frame, summary


def _mesh_columns(reports: Sequence[OpenIReport]) -> pd.DataFrame:
    """``study_id`` and ``<Observation> subcategory mesh`` for each mapped observation."""
    mesh_map = load_mesh_map()
    data: dict[str, list] = {"study_id": [r.id for r in reports]}
    for obs in mesh_map.observations:
        data[mesh_subcategory_column(obs)] = []
    for report in reports:
        findings = mesh_findings(report.mesh, mesh_map)
        for obs in mesh_map.observations:
            finding = findings.get(obs)
            value = finding.subcategory if finding is not None else None
            data[mesh_subcategory_column(obs)].append(value if value else pd.NA)
    return pd.DataFrame({k: pd.array(v, dtype="string") for k, v in data.items()})
