"""CheXpert-v1.0 (or -small) as an index table.

Reads ``train.csv`` and ``valid.csv`` (``Path, Sex, Age, Frontal/Lateral, AP/PA`` and the 14
observations). Splits: ``valid.csv`` is ``validate``; ``test`` is carved out of ``train.csv`` by
patient, deterministically (:func:`~finegrain.data.sources.patient_split` with ``seed``,
``test_fraction`` of the training patients; the official CheXpert test images are not part of the
public release). CheXpert has no reports, so there are no subcategories unless ``labels`` names a
``finegrain label`` CSV whose ``id`` is the study (``patient00001/study1``); its coarse labels and
subcategories then replace the CSV's labels.

``Path`` values start with the dataset folder (``CheXpert-v1.0-small/train/...``); that first
component is dropped and the rest is taken relative to ``root``. Views: the ``AP/PA`` value for
frontal images (``AP``, ``PA``, ``LL``, ``RL`` or empty) and ``LATERAL`` for lateral ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.data.index import IndexSummary
from finegrain.data.sources import (
    check_columns,
    finish_source,
    keep_views,
    parse_labels,
    patient_split,
    read_table,
)
from finegrain.errors import FinegrainError
from finegrain.observations import OBSERVATIONS

CHEXPERT_FILES = {"train": "train.csv", "validate": "valid.csv"}


def _relative(path: str) -> str:
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[1:]) if parts[0].lower().startswith("chexpert") else "/".join(parts)


def image_identity(
    table: pd.DataFrame,
    rel: pd.Series,
    *,
    source: Path,
    path_column: str,
    frontal_column: str,
    view_column: str,
    example: str,
) -> pd.DataFrame:
    """``path, subject_id, study_id, image_id, view`` of CheXpert images from their relative
    paths (``.../patientNNNNN/studyN/viewN_frontal.jpg``) and the frontal/lateral and AP/PA
    columns of ``table`` (laterals get view ``LATERAL``). A path of another shape stops with
    the file, line and column (the rows of ``table`` start at line 2)."""
    pieces = rel.str.extract(r"(patient\d+)/(study\d+)/([^/]+?)\.\w+$")
    bad = pieces[0].isna()
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise FinegrainError(
            f"{source}: line {pos + 2}, column {path_column!r}: "
            f"{table[path_column].iloc[pos]!r} is not like {example}"
        )
    frontal = table[frontal_column].astype("string").str.strip().str.lower() == "frontal"
    view = table[view_column].astype("string").str.strip().str.upper().replace("", pd.NA)
    return pd.DataFrame(
        {
            "path": rel,
            "subject_id": pieces[0],
            "study_id": pieces[0] + "/" + pieces[1],
            "image_id": pieces[0] + "/" + pieces[1] + "/" + pieces[2],
            "view": view.where(frontal.fillna(False), "LATERAL"),
        }
    )


def index_chexpert(
    root: str | Path,
    *,
    views: Sequence[str] | None = ("AP", "PA"),
    labels: str | Path | None = None,
    skip_missing: bool = False,
    seed: int = 0,
    test_fraction: float = 0.1,
) -> tuple[pd.DataFrame, IndexSummary]:
    """Build the index table of a CheXpert-v1.0 folder (paths relative to ``root``)."""
    root = Path(root)
    summary = IndexSummary()
    parts = []
    for split, name in CHEXPERT_FILES.items():
        path = root / name
        table = read_table(path, what="CheXpert table")
        check_columns(table, ("Path", "Frontal/Lateral", "AP/PA", *OBSERVATIONS), path)
        table = parse_labels(table, path)
        part = image_identity(
            table,
            table["Path"].astype(str).map(_relative),
            source=path,
            path_column="Path",
            frontal_column="Frontal/Lateral",
            view_column="AP/PA",
            example=".../patientNNNNN/studyN/viewN_frontal.jpg",
        ).assign(
            split=split,
            _line=np.arange(len(table)) + 2,
            _file=name,
            **{obs: table[obs] for obs in OBSERVATIONS},
        )
        if split == "train":
            carved = patient_split(
                part["subject_id"],
                seed=seed,
                fractions={"train": 1 - test_fraction, "test": test_fraction},
            )
            part["split"] = carved
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)

    if views is not None:
        frame = keep_views(frame, views, summary)

    frame = finish_source(
        frame,
        summary,
        root=root,
        source=str(root),
        skip_missing=skip_missing,
        where=lambda row: f"{row['_file']} line {row['_line']}",
        labels=labels,
    )
    return frame, summary
