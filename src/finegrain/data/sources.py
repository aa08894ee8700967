"""What every source shares: reading its tables, the patient split, labeling reports, and the
common tail (labels-CSV merge, image-file check, index validation).

A source (``mimic``, ``chexpert``, ``openi``, ``chexpert_plus``, ``csvsource``) builds a frame of
image rows with relative ``path`` values, then hands it to :func:`finish_source`, which

1. replaces the coarse labels and subcategories by those of a ``finegrain label`` CSV when one is
   given (:func:`merge_labels`; rows without a label row are dropped: ``label row missing``),
2. keeps the rows whose image file exists (:func:`keep_existing_files`; a missing file is an
   error unless ``skip_missing``, then ``image file missing``),
3. runs the source's own last step, if any (e.g. labeling the kept reports), and
4. validates the result against the index contract (:func:`finish_index`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.data.index import (
    INDEX_COLUMNS,
    OPTIONAL_COLUMNS,
    IndexSummary,
    image_where,
    normalise_index,
)
from finegrain.errors import FinegrainError, option
from finegrain.io import printable, read_csv
from finegrain.labels import check_labels, check_subcategories, csv_line
from finegrain.observations import (
    OBSERVATIONS,
    change_column,
    cue_column,
    severity_column,
    subcategory_column,
)

#: Default patient-level split fractions for sources without an official split.
SPLIT_FRACTIONS: dict[str, float] = {"train": 0.7, "validate": 0.1, "test": 0.2}


def read_table(
    path: str | Path, *, what: str = "table", require_rows: bool = False
) -> pd.DataFrame:
    """Read a CSV (or TSV, optionally gzipped: :func:`finegrain.io.read_csv`) as strings; empty
    cells become ``<NA>``; ``require_rows``: a header-only file is an error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return read_csv(
        path, require_rows=require_rows, dtype=str, keep_default_na=False, na_values=[""]
    )


def check_columns(frame: pd.DataFrame, required: Iterable[str], source: str | Path) -> None:
    """Raise a ``ValueError`` naming ``source`` and every missing column."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise FinegrainError(f"{source}: missing column(s) {', '.join(map(repr, missing))}")


def parse_labels(frame: pd.DataFrame, source: str | Path, *, line_offset: int = 2) -> pd.DataFrame:
    """Convert the 14 label columns to ``Int8`` (1, 0, -1, <NA>) with
    :func:`finegrain.labels.check_labels` (errors name file, line and column)."""
    out = frame.copy()
    for col in OBSERVATIONS:
        out[col] = check_labels(
            out[col], source=str(source), column=col, where=csv_line(line_offset)
        )
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
    """The names of the files in ``directory`` (links followed: a dangling one is no file)."""
    try:
        with os.scandir(directory) as it:
            return directory, frozenset(e.name for e in it if _is_file(e))
    except (FileNotFoundError, NotADirectoryError):
        return directory, frozenset()


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()  # no stat for a plain file; a link's target is stat'ed
    except OSError:
        return False


def existing_files(paths: Sequence[str], *, workers: int = 8) -> np.ndarray:
    """Boolean mask: which ``paths`` are files that exist (a link to a missing file, or a
    folder, is not one).

    Where folders hold several of the files (4 or more on average) each folder is listed once
    with ``os.scandir`` (threaded); otherwise, as in MIMIC's one-or-two images per study folder,
    a plain ``os.path.exists`` loop is faster (measured in ``benchmarks/phantom.py``).
    """
    parents = [os.path.dirname(p) or "." for p in paths]
    unique = list(dict.fromkeys(parents))
    if len(paths) < 4 * len(unique):
        return np.fromiter((os.path.isfile(p) for p in paths), bool, len(paths))
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
    root: str | Path,
    summary: IndexSummary,
    *,
    skip_missing: bool,
    where: Callable[[pd.Series], str],
) -> pd.DataFrame:
    """Rows of ``frame`` whose image file (``path``, relative to ``root`` or absolute) exists.

    A missing file is an error naming it and ``where(row)`` (the place the row came from), unless
    ``skip_missing``: then the rows are dropped, counted and their files listed in ``summary``.
    """
    absolute = [p if os.path.isabs(p) else os.path.join(root, p) for p in frame["path"]]
    exists = existing_files(absolute)
    if exists.all():
        return frame
    if not skip_missing:
        pos = int(np.flatnonzero(~exists)[0])
        raise FileNotFoundError(
            f"image file not found: {printable(absolute[pos])} ({where(frame.iloc[pos])}); "
            f"use {option('skip_missing=True', '--skip-missing')} to continue without it"
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
    14 subcategory columns, then the 14 cue columns (:data:`~finegrain.data.index.CUE_COLUMNS`),
    one row per text in order."""
    from tqdm import tqdm

    from finegrain.reports import label_report

    status = {o: [] for o in OBSERVATIONS}
    subcat = {o: [] for o in OBSERVATIONS}
    cue = {o: [] for o in OBSERVATIONS}
    for text in tqdm(texts, desc=desc, unit="report", disable=not progress):
        labels = label_report(text)
        for obs in OBSERVATIONS:
            lab = labels[obs]
            status[obs].append(pd.NA if lab.status is None else lab.status)
            graded = lab.status in (1, -1)
            subcat[obs].append(lab.subcategory if graded else pd.NA)
            cue[obs].append(_cue(lab.severity, lab.change) if graded else pd.NA)
    data = {}
    for obs in OBSERVATIONS:
        data[obs] = pd.array(status[obs], dtype="Int8")
        data[subcategory_column(obs)] = pd.array(subcat[obs], dtype="string")
    for obs in OBSERVATIONS:
        data[cue_column(obs)] = pd.array(cue[obs], dtype="string")
    return pd.DataFrame(data)


def _cue(severity: object, change: object) -> str:
    """Where the subcategory comes from: ``severity`` (a severity cue, which the paper's rule
    reads first), ``change`` (a change cue only) or ``no`` (no cue)."""
    if isinstance(severity, str) and severity:
        return "severity"
    return "change" if isinstance(change, str) and change else "no"


def normalise_study_id(values: pd.Series) -> pd.Series:
    """``"s50414267"`` and ``"50414267"`` (and ``50414267.0``) -> ``"50414267"``."""
    text = values.astype("string").str.strip().str.removeprefix("s").str.removeprefix("S")
    return text.str.replace(r"\.0$", "", regex=True)


def load_labels_csv(path: str | Path) -> pd.DataFrame:
    """Read a ``finegrain label`` CSV: ``id`` (normalised, see :func:`normalise_study_id`), the 14
    coarse labels as ``Int8``, the 14 subcategory columns (validated) and, where the CSV has an
    observation's severity / change columns, its cue column (``yes`` / ``no``)."""
    frame = read_table(path, what="labels CSV", require_rows=True)
    check_columns(frame, ("id", *OBSERVATIONS), path)
    frame = parse_labels(frame, path)
    frame["id"] = normalise_study_id(frame["id"])
    dup = frame["id"].duplicated()
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        raise FinegrainError(f"{path}: line {pos + 2}: duplicate id {frame['id'].iloc[pos]!r}")
    for obs in OBSERVATIONS:
        col = subcategory_column(obs)
        values = (
            check_subcategories(frame[col], source=str(path), column=col, where=csv_line())
            if col in frame.columns
            else pd.Series(pd.NA, index=frame.index, dtype="string")
        )
        # a subcategory only for positive / uncertain labels
        frame[col] = values.where(frame[obs].isin([1, -1]).fillna(False), pd.NA)
    columns = ["id", *OBSERVATIONS, *(subcategory_column(o) for o in OBSERVATIONS)]
    for obs in OBSERVATIONS:  # a cue column where the CSV has the cue columns
        sev, chg = severity_column(obs), change_column(obs)
        if sev in frame.columns or chg in frame.columns:
            cues = [
                _cue(s, c)
                for s, c in zip(_or_blank(frame, sev), _or_blank(frame, chg), strict=True)
            ]
            graded = frame[obs].isin([1, -1]).fillna(False)
            frame[cue_column(obs)] = pd.Series(cues, dtype="string").where(graded, pd.NA)
            columns.append(cue_column(obs))
    return frame[columns]


def _or_blank(frame: pd.DataFrame, column: str) -> list[object]:
    if column not in frame.columns:
        return [None] * len(frame)
    return [None if pd.isna(v) else str(v).strip() for v in frame[column]]


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


def merge_labels(
    frame: pd.DataFrame, table: pd.DataFrame, key: str, summary: IndexSummary
) -> pd.DataFrame:
    """Replace the label columns of ``frame`` by those of ``table`` (its first column ``id``,
    matched to ``frame[key]`` after :func:`normalise_study_id`); rows without a label row are
    dropped and counted (``label row missing``)."""
    keys = normalise_study_id(frame[key]).to_numpy()
    merged = pd.DataFrame({"id": keys}).merge(table, on="id", how="left", indicator=True)
    missing = (merged["_merge"] == "left_only").to_numpy()
    summary.drop("label row missing", int(missing.sum()))
    columns = [c for c in table.columns if c != "id"]
    out = frame.drop(columns=[c for c in columns if c in frame.columns])
    for col in columns:
        out[col] = merged[col].to_numpy()
    return out[~missing]


def finish_index(frame: pd.DataFrame, summary: IndexSummary, source: str) -> pd.DataFrame:
    """Order/validate the columns of a source's result and record the kept count."""
    for col in INDEX_COLUMNS:
        if col not in frame.columns:
            frame[col] = pd.NA
    optional = [c for c in OPTIONAL_COLUMNS if c in frame.columns]
    frame = frame[list(INDEX_COLUMNS) + optional].reset_index(drop=True)
    frame = normalise_index(frame, source=source, where=image_where(frame))
    summary.kept = len(frame)
    return frame


def finish_source(
    frame: pd.DataFrame,
    summary: IndexSummary,
    *,
    root: str | Path,
    source: str,
    skip_missing: bool,
    where: Callable[[pd.Series], str],
    labels: str | Path | pd.DataFrame | None = None,
    key: str = "study_id",
    then: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """The tail every source shares (see the module docstring): labels merge (``labels``: a
    ``finegrain label`` CSV or an already-read table keyed by ``key``), existing image files
    (``path`` relative to ``root``; ``where(row)`` names a row in errors), ``then(frame)``, and
    validation against the index contract."""
    if labels is not None:
        table = labels if isinstance(labels, pd.DataFrame) else load_labels_csv(labels)
        frame = merge_labels(frame, table, key, summary)
    frame = keep_existing_files(frame, root, summary, skip_missing=skip_missing, where=where)
    if then is not None:
        frame = then(frame)
    return finish_index(frame.reset_index(drop=True), summary, source)
