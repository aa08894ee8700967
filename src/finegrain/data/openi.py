"""OpenI (Indiana University chest X-ray collection) as an index table.

A folder with ``reports.csv`` (``id, report``) and the images, mapped to reports by either

- ``images.csv`` with ``id, path`` (path relative to the folder; optional ``view``), one row per
  image, or
- an ``images/`` folder whose file names start with the report id: ``<id>.png``,
  ``<id>_<anything>.png`` or Open-i's ``CXR<id>_<anything>.png`` (``.png``/``.jpg``/``.jpeg``).

Coarse labels and subcategories come from the report labeler on the report text (or a
``finegrain label`` CSV keyed by report id). Each report is treated as one patient; the split is
:func:`~finegrain.data.sources.patient_split` by report id with ``seed`` (70/10/20).
Images whose report is absent are dropped (``report missing``); reports without an image are
counted (``report without image``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.data.index import IndexSummary
from finegrain.data.sources import (
    check_columns,
    finish_source,
    label_texts,
    patient_split,
    read_table,
)

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


def index_openi(
    folder: str | Path,
    *,
    labels: str | Path | None = None,
    skip_missing: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> tuple[pd.DataFrame, IndexSummary]:
    """Build the index table of an OpenI folder (paths relative to ``folder``)."""
    folder = Path(folder)
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
