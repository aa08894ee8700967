"""A plain CSV as a source, and the small helpers every source shares.

``index_csv(file)`` reads a CSV with an image path column and either a report text column
(labeled with the report labeler) or the 14 observation label columns. ``split`` is optional:
without it a deterministic patient-level split is drawn from ``seed``.

Shared helpers (used by the MIMIC, CheXpert and OpenI sources): :func:`read_table`,
:func:`check_columns`, :func:`parse_labels`, :func:`patient_split`, :func:`existing_files`,
:func:`label_texts`, :func:`load_labels_csv`, :func:`rebase_paths`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.data.index import INDEX_COLUMNS, SPLITS, IndexSummary, normalise_index
from finegrain.observations import OBSERVATIONS, SUBCATEGORIES, subcategory_column

#: Default patient-level split fractions for sources without an official split.
SPLIT_FRACTIONS: dict[str, float] = {"train": 0.7, "validate": 0.1, "test": 0.2}


def read_table(path: str | Path, *, what: str = "table") -> pd.DataFrame:
    """Read a CSV (optionally gzipped) as strings; empty cells become ``<NA>``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def check_columns(frame: pd.DataFrame, required: Iterable[str], source: str | Path) -> None:
    """Raise a ``ValueError`` naming ``source`` and every missing column."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(map(repr, missing))}")


def parse_labels(frame: pd.DataFrame, source: str | Path, *, line_offset: int = 2) -> pd.DataFrame:
    """Convert the 14 label columns to ``Int8`` (1, 0, -1, <NA>), naming file, line and column of
    the first unknown value. Accepts ``1``, ``1.0``, ``0``, ``-1``, ``-1.0`` and empty."""
    out = frame.copy()
    for col in OBSERVATIONS:
        raw = out[col]
        numeric = pd.to_numeric(raw, errors="coerce")
        bad = (numeric.isna() & raw.notna()) | (numeric.notna() & ~numeric.isin([1, 0, -1]))
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(
                f"{source}: line {pos + line_offset}, column {col!r}: unknown label value "
                f"{raw.iloc[pos]!r} (expected 1, 0, -1 or empty)"
            )
        out[col] = numeric.astype("Int8")
    return out


def patient_split(
    patients: Sequence[str] | pd.Series,
    *,
    seed: int = 0,
    fractions: dict[str, float] | None = None,
) -> np.ndarray:
    """Deterministic patient-level split: every image of a patient lands in the same split.

    Each patient id is hashed with ``seed`` (SHA-1, so the result does not depend on the order
    of rows or on the Python hash seed) to a number in [0, 1) compared with the cumulative
    ``fractions`` (default 70 / 10 / 20 % train / validate / test).
    """
    fractions = fractions or SPLIT_FRACTIONS
    names = list(fractions)
    edges = np.cumsum([fractions[n] for n in names])
    edges = edges / edges[-1]
    uniq, inverse = np.unique(np.asarray(patients, dtype=str), return_inverse=True)
    u = np.array(
        [
            int.from_bytes(hashlib.sha1(f"{seed}:{p}".encode()).digest()[:8], "big") / 2**64
            for p in uniq
        ]
    )
    which = np.searchsorted(edges, u, side="right").clip(0, len(names) - 1)
    return np.asarray(names, dtype=object)[which][inverse]


def _list_dir(directory: str) -> tuple[str, frozenset[str]]:
    try:
        with os.scandir(directory) as it:
            return directory, frozenset(e.name for e in it)
    except (FileNotFoundError, NotADirectoryError):
        return directory, frozenset()


def existing_files(paths: Sequence[str], *, workers: int = 8) -> np.ndarray:
    """Boolean mask: which ``paths`` exist.

    Where folders hold several of the files (4 or more on average) each folder is listed once
    with ``os.scandir`` (threaded); otherwise, as in MIMIC's one-or-two images per study folder,
    a plain ``os.path.exists`` loop is faster (measured in ``benchmarks/phantom.py``).
    """
    parents = [os.path.dirname(p) or "." for p in paths]
    unique = list(dict.fromkeys(parents))
    if len(paths) < 4 * len(unique):
        return np.fromiter((os.path.exists(p) for p in paths), bool, len(paths))
    names = [os.path.basename(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        listing = dict(pool.map(_list_dir, unique, chunksize=64))
    return np.fromiter(
        (n in listing[d] for d, n in zip(parents, names, strict=True)), bool, len(paths)
    )


def keep_views(frame: pd.DataFrame, views: Iterable[str], summary: IndexSummary) -> pd.DataFrame:
    """Rows whose ``view`` is one of ``views`` (case-insensitive); the others are counted in
    ``summary`` by their view ("missing" when blank)."""
    wanted = {v.strip().upper() for v in views}
    keep = frame["view"].str.upper().isin(wanted).fillna(False).to_numpy(bool)
    for view, n in frame.loc[~keep, "view"].fillna("missing").value_counts().items():
        summary.drop(f"view not kept ({view})", int(n))
    return frame[keep]


def keep_existing_files(
    frame: pd.DataFrame,
    absolute: Sequence[str],
    summary: IndexSummary,
    *,
    skip_missing: bool,
    where: Callable[[int], str],
) -> pd.DataFrame:
    """Rows of ``frame`` whose image file (``absolute[i]``) exists.

    A missing file is an error naming it and ``where(i)`` (the row it came from), unless
    ``skip_missing``: then the rows are dropped, counted and their files listed in ``summary``.
    """
    exists = existing_files(absolute)
    if exists.all():
        return frame
    if not skip_missing:
        pos = int(np.flatnonzero(~exists)[0])
        raise FileNotFoundError(
            f"image file not found: {absolute[pos]} ({where(pos)}); "
            "use skip_missing / --skip-missing to continue without it"
        )
    summary.skipped_files.extend(np.asarray(absolute)[~exists].tolist())
    summary.drop("image file missing", int((~exists).sum()))
    return frame[exists]


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (FileNotFoundError, IsADirectoryError):
        return None


def read_texts(paths: Sequence[str], *, workers: int = 8, chunk: int = 512) -> list[str | None]:
    """Read many small text files (``None`` where a file is missing), in chunks over threads
    (file reads release the GIL, which helps on network storage)."""
    chunks = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
    if len(chunks) <= 1:
        return [_read_text(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = pool.map(lambda part: [_read_text(p) for p in part], chunks)
        return [text for part in parts for text in part]


def label_texts(
    texts: Sequence[str], *, progress: bool = True, desc: str = "labeling"
) -> pd.DataFrame:
    """Run the report labeler on each text: a frame with the 14 coarse labels (``Int8``) and the
    14 subcategory columns, one row per text in order."""
    from tqdm import tqdm

    from finegrain.reports import label_report

    status = {o: [] for o in OBSERVATIONS}
    subcat = {o: [] for o in OBSERVATIONS}
    for text in tqdm(texts, desc=desc, unit="report", disable=not progress):
        labels = label_report(text)
        for obs in OBSERVATIONS:
            lab = labels[obs]
            status[obs].append(pd.NA if lab.status is None else lab.status)
            subcat[obs].append(lab.subcategory if lab.status in (1, -1) else pd.NA)
    data = {}
    for obs in OBSERVATIONS:
        data[obs] = pd.array(status[obs], dtype="Int8")
        data[subcategory_column(obs)] = pd.array(subcat[obs], dtype="string")
    return pd.DataFrame(data)


def normalise_study_id(values: pd.Series) -> pd.Series:
    """``"s50414267"`` and ``"50414267"`` (and ``50414267.0``) -> ``"50414267"``."""
    text = values.astype("string").str.strip().str.removeprefix("s").str.removeprefix("S")
    return text.str.replace(r"\.0$", "", regex=True)


def load_labels_csv(path: str | Path) -> pd.DataFrame:
    """Read a ``finegrain label`` CSV: ``id`` (normalised, see :func:`normalise_study_id`), the 14
    coarse labels as ``Int8`` and the 14 subcategory columns (validated)."""
    frame = read_table(path, what="labels CSV")
    check_columns(frame, ("id", *OBSERVATIONS), path)
    frame = parse_labels(frame, path)
    frame["id"] = normalise_study_id(frame["id"])
    dup = frame["id"].duplicated()
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(f"{path}: line {pos + 2}: duplicate id {frame['id'].iloc[pos]!r}")
    for obs in OBSERVATIONS:
        col = subcategory_column(obs)
        values = (
            frame[col].astype("string").str.strip().replace("", pd.NA)
            if col in frame.columns
            else pd.Series(pd.NA, index=frame.index, dtype="string")
        )
        bad = values.notna() & ~values.isin(SUBCATEGORIES)
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(
                f"{path}: line {pos + 2}, column {col!r}: unknown subcategory {values.iloc[pos]!r}"
            )
        # a subcategory only for positive / uncertain labels
        frame[col] = values.where(frame[obs].isin([1, -1]).fillna(False), pd.NA)
    return frame[["id", *OBSERVATIONS, *(subcategory_column(o) for o in OBSERVATIONS)]]


def rebase_paths(frame: pd.DataFrame, root: str | Path, index_path: str | Path) -> pd.DataFrame:
    """Make ``path`` (relative to ``root``) relative to the folder of ``index_path``, so the
    written index resolves its images wherever it is saved (absolute paths stay absolute)."""
    root = Path(root).resolve()
    base = Path(index_path).resolve().parent
    out = frame.copy()
    rel = os.path.relpath(root, base)
    out["path"] = [
        p if os.path.isabs(p) else (p if rel == "." else os.path.join(rel, p))
        for p in out["path"].astype(str)
    ]
    return out


def finish_index(frame: pd.DataFrame, summary: IndexSummary, source: str) -> pd.DataFrame:
    """Order/validate the columns of a source's result and record the kept count."""
    for col in INDEX_COLUMNS:
        if col not in frame.columns:
            frame[col] = pd.NA
    frame = normalise_index(frame[list(INDEX_COLUMNS)], source=source)
    summary.kept = len(frame)
    return frame


def _split_column(frame: pd.DataFrame, source: str | Path, patients: pd.Series, seed: int):
    """The ``split`` column validated (``valid``/``val`` -> ``validate``), or a patient split."""
    if "split" not in frame.columns:
        return pd.Series(patient_split(patients, seed=seed), index=frame.index)
    split = frame["split"].astype("string").str.strip().str.lower()
    split = split.replace({"valid": "validate", "val": "validate", "validation": "validate"})
    bad = split.notna() & ~split.isin(SPLITS)
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{source}: line {pos + 2}, column 'split': {frame['split'].iloc[pos]!r} is not "
            f"one of {', '.join(SPLITS)}"
        )
    return split


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
) -> tuple[pd.DataFrame, IndexSummary]:
    """Index a plain CSV of images.

    Columns: ``path`` (relative to the CSV's folder or absolute), then either the 14 observation
    label columns or a ``report`` text column (labeled with the report labeler, which also gives
    subcategories), or neither when ``labels`` names a ``finegrain label`` CSV keyed by the study
    (``study_column``). Optional: ``image_id`` (default: the path), ``patient_id``/``subject_id``
    (default: the image id), ``study_id`` (default: the image id), ``view``, ``split`` (default:
    :func:`patient_split` by patient with ``seed``). Paths in the result are relative to the CSV's
    folder.
    """
    file = Path(file)
    frame = read_table(file, what="CSV source")
    summary = IndexSummary()
    check_columns(frame, (path_column,), file)
    out = pd.DataFrame(index=frame.index)
    out["path"] = frame[path_column].astype("string").str.strip()
    blank = out["path"].isna() | (out["path"] == "")
    if blank.any():
        pos = int(np.flatnonzero(blank.to_numpy())[0])
        raise ValueError(f"{file}: line {pos + 2}: empty {path_column!r}")
    out["image_id"] = frame["image_id"] if "image_id" in frame.columns else out["path"]
    patient_col = patient_column or next(
        (c for c in ("patient_id", "subject_id", "patient") if c in frame.columns), None
    )
    out["subject_id"] = frame[patient_col] if patient_col else out["image_id"]
    study_col = study_column or ("study_id" if "study_id" in frame.columns else None)
    out["study_id"] = frame[study_col] if study_col else out["image_id"]
    out["view"] = frame["view"] if "view" in frame.columns else pd.NA
    out["split"] = _split_column(frame, file, out["subject_id"], seed).to_numpy()
    no_split = out["split"].isna()
    summary.drop("no split", int(no_split.sum()))

    if labels is not None:
        table = load_labels_csv(labels)
        key = normalise_study_id(out["study_id"])
        merged = pd.DataFrame({"id": key}).merge(table, on="id", how="left", indicator=True)
        missing = (merged["_merge"] == "left_only").to_numpy()
        summary.drop("label row missing", int((missing & ~no_split.to_numpy()).sum()))
        no_split = no_split | missing
        for col in table.columns[1:]:
            out[col] = merged[col].to_numpy()
    elif all(o in frame.columns for o in OBSERVATIONS):
        parsed = parse_labels(frame[list(OBSERVATIONS)], file)
        for obs in OBSERVATIONS:
            out[obs] = parsed[obs]
    elif report_column in frame.columns:
        texts = frame[report_column].fillna("").astype(str).tolist()
        labeled = label_texts(texts, progress=progress)
        for col in labeled.columns:
            out[col] = labeled[col].to_numpy()
    else:
        raise ValueError(
            f"{file}: needs either the 14 observation columns or a {report_column!r} column "
            "(or pass labels=...)"
        )
    out = out[~no_split.to_numpy()]
    absolute = [p if os.path.isabs(p) else str(file.parent / p) for p in out["path"]]
    out = keep_existing_files(
        out,
        absolute,
        summary,
        skip_missing=skip_missing,
        where=lambda pos: f"{file} line {int(out.index[pos]) + 2}",
    )
    return finish_index(out.reset_index(drop=True), summary, str(file)), summary
