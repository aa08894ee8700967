"""CheXpert Plus (Stanford AIMI, 2024): the CheXpert images with their reports, as an index table.

CheXpert Plus (Chambon et al., arXiv:2405.19538) ships one CSV, ``df_chexpert_plus_240401.csv``,
with one row per image. The columns read here (named as the release names them; see
``docs/data.md`` for where the names come from):

- ``path_to_image`` -- ``train/patient00001/study1/view1_frontal.jpg``, relative to the image
  folder. The PNG release stores ``.png`` files under the same names, so a missing ``.jpg`` is
  looked up as ``.png``;
- ``frontal_lateral`` (``Frontal`` / ``Lateral``) and ``ap_pa`` (``AP``, ``PA``, ...): the view;
- ``split`` (``train`` / ``valid``): CheXpert's official split (``valid`` -> ``validate``); as
  in :mod:`finegrain.data.chexpert`, ``test`` is carved out of ``train`` by patient with
  ``seed`` (the official CheXpert test images are not released), so an image gets the same split
  from both sources;
- ``section_findings`` and ``section_impression``: the report text given to the labeler as
  ``FINDINGS: ...`` / ``IMPRESSION: ...`` (the CheXpert labeler read the impression; findings
  and impression together lose no finding, see :mod:`finegrain.reports.sections`).

Patients and studies come from the path (``patient00001``, ``patient00001/study1``), as in the
CheXpert source, so both index the same image under the same ids. Rows are dropped, counted by
reason: view not kept, no report text (neither section), label row missing (with ``labels``),
image file missing (``skip_missing``; otherwise an error).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.data.chexpert import image_identity
from finegrain.data.index import IndexSummary
from finegrain.data.sources import (
    check_columns,
    existing_files,
    finish_source,
    keep_views,
    label_texts,
    patient_split,
    read_table,
)
from finegrain.errors import FinegrainError

#: The columns of ``df_chexpert_plus_240401.csv`` this source needs.
CHEXPERT_PLUS_COLUMNS: tuple[str, ...] = (
    "path_to_image",
    "frontal_lateral",
    "ap_pa",
    "split",
    "section_findings",
    "section_impression",
)
_SPLITS = {"train": "train", "valid": "validate", "validate": "validate"}


def report_text(findings: str | None, impression: str | None) -> str:
    """``FINDINGS: ...`` and ``IMPRESSION: ...`` lines, empty sections left out.

    >>> report_text("Small left effusion.", None)
    'FINDINGS: Small left effusion.'
    """
    parts = []
    for label, text in (("FINDINGS", findings), ("IMPRESSION", impression)):
        if isinstance(text, str) and text.strip():
            parts.append(f"{label}: {text.strip()}")
    return "\n".join(parts)


def index_chexpert_plus(
    table: str | Path,
    images: str | Path,
    *,
    views: Sequence[str] | None = ("AP", "PA"),
    labels: str | Path | None = None,
    skip_missing: bool = False,
    seed: int = 0,
    test_fraction: float = 0.1,
    progress: bool = True,
) -> tuple[pd.DataFrame, IndexSummary]:
    """Build the index table of CheXpert Plus (``table``: its CSV; ``images``: the folder that
    ``path_to_image`` is relative to; paths in the result are relative to ``images``)."""
    table, images = Path(table), Path(images)
    summary = IndexSummary()
    raw = read_table(table, what="CheXpert Plus table")
    check_columns(raw, CHEXPERT_PLUS_COLUMNS, table)
    path = raw["path_to_image"].astype("string").str.strip().str.replace("\\", "/")
    identity = image_identity(
        raw,
        path,
        source=table,
        path_column="path_to_image",
        frontal_column="frontal_lateral",
        view_column="ap_pa",
        example="train/patientNNNNN/studyN/viewN_frontal.jpg",
    )
    split = raw["split"].astype("string").str.strip().str.lower().map(_SPLITS)
    bad = split.isna()
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise FinegrainError(
            f"{table}: line {pos + 2}, column 'split': {raw['split'].iloc[pos]!r} is not "
            "'train' or 'valid'"
        )
    frame = identity.assign(
        split=split,
        _line=np.arange(len(raw)) + 2,
        _text=[
            report_text(f, i)
            for f, i in zip(raw["section_findings"], raw["section_impression"], strict=True)
        ],
    )
    train = (frame["split"] == "train").to_numpy()
    frame.loc[train, "split"] = patient_split(
        frame.loc[train, "subject_id"],
        seed=seed,
        fractions={"train": 1 - test_fraction, "test": test_fraction},
    )
    if views is not None:
        frame = keep_views(frame, views, summary)
    no_text = (frame["_text"] == "").to_numpy()
    summary.drop("no report text (neither findings nor impression)", int(no_text.sum()))
    frame = frame[~no_text].copy()
    frame["path"] = _png_where_no_jpg(frame["path"].tolist(), images)

    if labels is None:
        texts = list(dict.fromkeys(frame["_text"]))
        labeled = label_texts(texts, progress=progress)
        labeled["_text"] = texts
        frame = frame.merge(labeled, on="_text", how="left")
    frame = finish_source(
        frame,
        summary,
        root=images,
        source=str(table),
        skip_missing=skip_missing,
        where=lambda row: f"{table.name} line {row['_line']}",
        labels=labels,
    )
    return frame, summary


def _png_where_no_jpg(paths: list[str], root: Path) -> list[str]:
    """``.jpg`` paths that are absent but whose ``.png`` twin exists, renamed to ``.png``."""
    jpg = [p for p in paths if p.lower().endswith(".jpg")]
    if not jpg:
        return paths
    have = dict(zip(jpg, existing_files([os.path.join(root, p) for p in jpg]), strict=True))
    png = {p: p[:-4] + ".png" for p, ok in have.items() if not ok}
    png_ok = dict(
        zip(png, existing_files([os.path.join(root, p) for p in png.values()]), strict=True)
    )
    return [png[p] if png_ok.get(p) else p for p in paths]
