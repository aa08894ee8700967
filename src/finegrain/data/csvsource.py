"""A plain CSV as a source.

``index_csv(file)`` reads a CSV with an image path column and either a report text column
(labeled with the report labeler) or the 14 observation label columns. ``split`` is optional:
without it a deterministic patient-level split is drawn from ``seed``. The helpers shared with
the other sources live in :mod:`finegrain.data.sources`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.data.index import SPLITS, IndexSummary
from finegrain.data.sources import (
    check_columns,
    finish_source,
    label_texts,
    parse_labels,
    patient_split,
    read_table,
)
from finegrain.errors import FinegrainError
from finegrain.io import printable, special_file_kind
from finegrain.observations import OBSERVATIONS


def _split_column(frame: pd.DataFrame, source: str | Path, patients: pd.Series, seed: int):
    """The ``split`` column validated (``valid``/``val`` -> ``validate``), or a patient split."""
    if "split" not in frame.columns:
        return pd.Series(patient_split(patients, seed=seed), index=frame.index)
    split = frame["split"].astype("string").str.strip().str.lower()
    split = split.replace({"valid": "validate", "val": "validate", "validation": "validate"})
    bad = split.notna() & ~split.isin(SPLITS)
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise FinegrainError(
            f"{source}: line {pos + 2}, column 'split': {frame['split'].iloc[pos]!r} is not "
            f"one of {', '.join(SPLITS)}"
        )
    return split


def _ids(frame: pd.DataFrame, column: str, source: Path) -> pd.Series:
    """An id column trimmed; a blank id is an error naming its line."""
    ids = frame[column].astype("string").str.strip()
    blank = ids.isna() | (ids == "")
    if blank.any():
        pos = int(np.flatnonzero(blank.to_numpy())[0])
        raise FinegrainError(f"{source}: line {pos + 2}: empty {column!r}")
    return ids


def _check_paths(paths: pd.Series, file: Path, root: str | Path | None) -> None:
    """Each path (relative to ``file``'s folder, or absolute) that exists is a regular file
    and, with ``root``, lies inside ``root``; else an error naming the line."""
    base = os.path.realpath(root) if root is not None else None
    for pos, path in enumerate(paths):
        full = os.path.join(file.parent, path)  # an absolute path stays itself
        where = f"{file}: line {pos + 2}: {printable(path)}"
        if base is not None and os.path.commonpath([base, os.path.realpath(full)]) != base:
            raise FinegrainError(f"{where} is outside --root {root}")
        kind = special_file_kind(full)
        if kind is not None:
            raise FinegrainError(f"{where} is {kind}, not an image file")


def index_csv(
    file: str | Path,
    *,
    path_column: str = "path",
    report_column: str = "report",
    patient_column: str | None = None,
    study_column: str | None = None,
    labels: str | Path | None = None,
    skip_missing: bool = False,
    seed: int = 0,
    progress: bool = True,
    root: str | Path | None = None,
) -> tuple[pd.DataFrame, IndexSummary]:
    """Index a plain CSV of images.

    Columns: ``path`` (relative to the CSV's folder or absolute), then either the 14 observation
    label columns or a ``report`` text column (labeled with the report labeler, which also gives
    subcategories), or neither when ``labels`` names a ``finegrain label`` CSV keyed by the study
    (``study_column``). Optional: ``image_id`` (default: the path), ``patient_id``/``subject_id``
    (default: the image id), ``study_id`` (default: the image id), ``view``, ``split`` (default:
    :func:`patient_split` by patient with ``seed``). Paths in the result are relative to the CSV's
    folder (absolute ones stay absolute). Each must be a regular file; with ``root`` (the CLI's
    ``--root``), inside that folder (links resolved).
    """
    file = Path(file)
    frame = read_table(file, what="CSV source", require_rows=True)
    summary = IndexSummary()
    check_columns(frame, (path_column,), file)
    out = pd.DataFrame(index=frame.index)
    out["path"] = frame[path_column].astype("string").str.strip()
    blank = out["path"].isna() | (out["path"] == "")
    if blank.any():
        pos = int(np.flatnonzero(blank.to_numpy())[0])
        raise FinegrainError(f"{file}: line {pos + 2}: empty {path_column!r}")
    _check_paths(out["path"], file, root)
    out["image_id"] = _ids(frame, "image_id", file) if "image_id" in frame.columns else out["path"]
    patient_col = patient_column or next(
        (c for c in ("patient_id", "subject_id", "patient") if c in frame.columns), None
    )
    out["subject_id"] = _ids(frame, patient_col, file) if patient_col else out["image_id"]
    study_col = study_column or ("study_id" if "study_id" in frame.columns else None)
    out["study_id"] = _ids(frame, study_col, file) if study_col else out["image_id"]
    dup = out["image_id"].duplicated()
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        raise FinegrainError(
            f"{file}: line {pos + 2}: duplicate image_id {out['image_id'].iloc[pos]!r}"
        )
    out["view"] = frame["view"] if "view" in frame.columns else pd.NA
    out["split"] = _split_column(frame, file, out["subject_id"], seed).to_numpy()
    no_split = out["split"].isna().to_numpy()
    summary.drop("no split", int(no_split.sum()))

    if labels is None and all(o in frame.columns for o in OBSERVATIONS):
        parsed = parse_labels(frame[list(OBSERVATIONS)], file)
        for obs in OBSERVATIONS:
            out[obs] = parsed[obs]
    elif labels is None and report_column in frame.columns:
        texts = frame[report_column].fillna("").astype(str).tolist()
        labeled = label_texts(texts, progress=progress)
        for col in labeled.columns:
            out[col] = labeled[col].to_numpy()
    elif labels is None:
        raise FinegrainError(
            f"{file}: needs either the 14 observation columns or a {report_column!r} column, "
            "or a `finegrain label` CSV of its studies (--labels LABELS.csv)"
        )
    out["_line"] = out.index + 2
    out = out[~no_split]
    frame = finish_source(
        out,
        summary,
        root=file.parent,
        source=str(file),
        skip_missing=skip_missing,
        where=lambda row: f"{file} line {row['_line']}",
        labels=labels,
    )
    return frame, summary
