"""MIMIC-CXR-JPG (and the phantom, which has the same layout) as an index table.

Reads the four official CSVs (``.csv`` or ``.csv.gz``) under ``root``: ``metadata`` (view),
``split`` (the official train / validate / test split), and coarse labels from ``chexpert``
(default), ``negbio`` or a ``finegrain label`` CSV. Subcategories come from the report labeler run
on ``files/pXX/pSUBJECT/sSTUDY.txt`` and are set only where the coarse label is 1 or -1.

Rows are dropped, and counted by reason, in this order: view not kept, no split, label row
missing, image file missing (only with ``skip_missing``; otherwise an error).

>>> # frame, summary = index_mimic("/data/mimic-cxr-jpg/2.0.0"); print(summary.format())
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.data.index import SPLITS, IndexSummary
from finegrain.data.sources import (
    check_columns,
    finish_source,
    keep_views,
    label_texts,
    parse_labels,
    read_table,
    read_texts,
)
from finegrain.errors import FinegrainError
from finegrain.observations import OBSERVATIONS, cue_column, subcategory_column

CSV_PREFIX = "mimic-cxr-2.0.0"
CSV_NAMES = ("chexpert", "negbio", "metadata", "split")


def mimic_csv(root: str | Path, name: str) -> Path:
    """Path of the official CSV ``name`` (``chexpert``, ``negbio``, ``metadata``, ``split``)
    under ``root``, ``.csv.gz`` or ``.csv``; a ``FileNotFoundError`` naming both if absent."""
    root = Path(root)
    for suffix in (".csv.gz", ".csv"):
        path = root / f"{CSV_PREFIX}-{name}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"MIMIC-CXR-JPG {name} table not found: {root / f'{CSV_PREFIX}-{name}.csv.gz'} (or .csv)"
    )


def study_folder(subject_id: str, study_id: str) -> str:
    """``files/pXX/pSUBJECT/sSTUDY`` (relative, ``/``-separated)."""
    return f"files/p{subject_id[:2]}/p{subject_id}/s{study_id}"


def _ids(frame: pd.DataFrame, columns: Sequence[str], source: Path) -> pd.DataFrame:
    for col in columns:
        values = frame[col].astype("string").str.strip().str.replace(r"\.0$", "", regex=True)
        blank = values.isna() | (values == "")
        if blank.any():
            pos = int(np.flatnonzero(blank.to_numpy())[0])
            raise FinegrainError(f"{source}: line {pos + 2}: empty {col!r}")
        frame[col] = values
    return frame


def index_mimic(
    root: str | Path,
    *,
    reports_root: str | Path | None = None,
    views: Sequence[str] | None = ("AP", "PA"),
    labels: str | Path = "chexpert",
    skip_missing: bool = False,
    progress: bool = True,
) -> tuple[pd.DataFrame, IndexSummary]:
    """Build the index table of a MIMIC-CXR-JPG tree (paths relative to ``root``).

    ``views``: ViewPosition values kept (``None`` keeps all). ``labels``: ``"chexpert"``,
    ``"negbio"`` or the path of a ``finegrain label`` CSV whose ``id`` is the study id
    (``s50414267`` or ``50414267``); with a labels CSV its subcategories are used and no report is
    read. Returns ``(frame, summary)``; ``summary.dropped`` counts every row left out by reason and
    ``summary.skipped_files`` lists missing images (``skip_missing=True``).
    """
    root = Path(root)
    reports_root = Path(reports_root) if reports_root is not None else root
    summary = IndexSummary()

    meta_path = mimic_csv(root, "metadata")
    meta = read_table(meta_path, what="metadata table")
    check_columns(meta, ("dicom_id", "subject_id", "study_id", "ViewPosition"), meta_path)
    meta = _ids(meta, ("dicom_id", "subject_id", "study_id"), meta_path)
    meta["_line"] = np.arange(len(meta)) + 2
    frame = meta[["dicom_id", "subject_id", "study_id", "ViewPosition", "_line"]].rename(
        columns={"ViewPosition": "view"}
    )
    frame["view"] = frame["view"].astype("string").str.strip().replace("", pd.NA)

    if views is not None:
        frame = keep_views(frame, views, summary)

    split_path = mimic_csv(root, "split")
    split = read_table(split_path, what="split table")
    check_columns(split, ("dicom_id", "split"), split_path)
    split = _ids(split, ("dicom_id",), split_path)
    split["split"] = split["split"].astype("string").str.strip()
    bad = ~split["split"].isin(SPLITS)
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise FinegrainError(
            f"{split_path}: line {pos + 2}, column 'split': {split['split'].iloc[pos]!r} is not "
            f"one of {', '.join(SPLITS)}"
        )
    dup = split["dicom_id"].duplicated()
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        raise FinegrainError(f"{split_path}: line {pos + 2}: duplicate dicom_id")
    frame = frame.merge(split[["dicom_id", "split"]], on="dicom_id", how="left")
    no_split = frame["split"].isna().to_numpy()
    summary.drop("no split", int(no_split.sum()))
    frame = frame[~no_split]

    from_csv = str(labels) not in ("chexpert", "negbio")
    if from_csv:
        table = labels
    else:
        label_path = mimic_csv(root, str(labels))
        table = read_table(label_path, what=f"{labels} table")
        check_columns(table, ("study_id", *OBSERVATIONS), label_path)
        table = _ids(table, ("study_id",), label_path)
        table = parse_labels(table, label_path)[["study_id", *OBSERVATIONS]]
        dup = table["study_id"].duplicated()
        if dup.any():
            pos = int(np.flatnonzero(dup.to_numpy())[0])
            raise FinegrainError(f"{label_path}: line {pos + 2}: duplicate study_id")
        table = table.rename(columns={"study_id": "id"})

    frame["path"] = [
        f"{study_folder(s, t)}/{i}.jpg"
        for s, t, i in zip(frame["subject_id"], frame["study_id"], frame["dicom_id"], strict=True)
    ]
    frame = frame.rename(columns={"dicom_id": "image_id"})
    frame = finish_source(
        frame,
        summary,
        root=root,
        source=str(root),
        skip_missing=skip_missing,
        where=lambda row: f"dicom_id {row['image_id']}, {meta_path.name} line {row['_line']}",
        labels=table,
        then=None
        if from_csv
        else lambda kept: _add_subcategories(kept, reports_root, summary, progress),
    )
    return frame, summary


def _add_subcategories(
    frame: pd.DataFrame, reports_root: Path, summary: IndexSummary, progress: bool
) -> pd.DataFrame:
    """Label each kept study's report once; copy its subcategory and cue where the coarse label
    is 1/-1."""
    frame = frame.copy()
    studies = frame.drop_duplicates("study_id")[["subject_id", "study_id"]]
    paths = [
        os.path.join(reports_root, study_folder(s, t) + ".txt")
        for s, t in zip(studies["subject_id"], studies["study_id"], strict=False)
    ]
    texts = read_texts(paths)
    found = np.array([t is not None for t in texts])
    n_missing = int(frame["study_id"].isin(studies["study_id"][~found]).sum())
    summary.note("rows whose report is missing: subcategories left empty", n_missing)
    labeled = label_texts([t for t in texts if t is not None], progress=progress)
    labeled["study_id"] = studies["study_id"][found].to_numpy()
    merged = frame[["study_id"]].merge(labeled, on="study_id", how="left")
    no_subcat = 0
    for obs in OBSERVATIONS:
        col = subcategory_column(obs)
        positive = frame[obs].isin([1, -1]).fillna(False).to_numpy(bool)
        values = merged[col].where(positive, pd.NA).to_numpy()
        frame[col] = values
        frame[cue_column(obs)] = merged[cue_column(obs)].where(positive, pd.NA).to_numpy()
        if obs != "No Finding":  # "No Finding" never has a fine label
            no_subcat += int((positive & pd.isna(values)).sum())
    summary.note("positive labels without a labeler subcategory", no_subcat)
    return frame
