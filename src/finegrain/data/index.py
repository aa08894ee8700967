"""The index table: one row per image, the contract between data sources and everything after.

Columns, in order: ``image_id, path, subject_id, study_id, split, view``, then for each of the
14 observations ``<Observation>`` (1 positive, 0 negative, -1 uncertain, empty = not mentioned)
and ``<Observation> subcategory`` (``atypical``, ``typical`` or empty).

>>> import pandas as pd
>>> frame = empty_index()
>>> list(frame.columns[:6])
['image_id', 'path', 'subject_id', 'study_id', 'split', 'view']
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from finegrain.errors import FinegrainError
from finegrain.io import atomic_open
from finegrain.labels import Where, check_cues, check_labels, check_subcategories, csv_line
from finegrain.observations import OBSERVATIONS, cue_column, subcategory_column

META_COLUMNS: tuple[str, ...] = ("image_id", "path", "subject_id", "study_id", "split", "view")
SPLITS: tuple[str, ...] = ("train", "validate", "test")
LABEL_COLUMNS: tuple[str, ...] = OBSERVATIONS
SUBCATEGORY_COLUMNS: tuple[str, ...] = tuple(subcategory_column(o) for o in OBSERVATIONS)
INDEX_COLUMNS: tuple[str, ...] = META_COLUMNS + tuple(
    c for obs in OBSERVATIONS for c in (obs, subcategory_column(obs))
)
#: Where a subcategory comes from: ``text`` (the report labeler, ``<Obs> subcategory``) or
#: ``mesh`` (OpenI's manual MeSH annotation, optional ``<Obs> subcategory mesh`` columns).
FINE_LABEL_SOURCES: tuple[str, ...] = ("text", "mesh")


def fine_label_column(observation: str, source: str = "text") -> str:
    """The subcategory column of ``observation`` from fine-label ``source``.

    >>> fine_label_column("Edema"), fine_label_column("Edema", "mesh")
    ('Edema subcategory', 'Edema subcategory mesh')
    """
    if source not in FINE_LABEL_SOURCES:
        raise FinegrainError(
            f"unknown fine-label source {source!r}; expected one of {', '.join(FINE_LABEL_SOURCES)}"
        )
    column = subcategory_column(observation)
    return column if source == "text" else f"{column} {source}"


#: Optional subcategory columns from other fine-label sources (e.g. OpenI's human MeSH labels).
HUMAN_FINE_COLUMNS: tuple[str, ...] = tuple(
    fine_label_column(obs, source) for source in FINE_LABEL_SOURCES[1:] for obs in OBSERVATIONS
)
#: Optional ``<Obs> cue`` columns: where the positive / uncertain label's subcategory comes from
#: (``severity``: a severity cue; ``change``: a change cue only; ``no``: typical by the paper's
#: rule, without a cue; ``yes``: a cue of either kind, as finegrain 0.3 wrote; empty).
CUE_COLUMNS: tuple[str, ...] = tuple(cue_column(obs) for obs in OBSERVATIONS)
#: Optional columns an index may carry after the contract's (validated when present).
OPTIONAL_COLUMNS: tuple[str, ...] = HUMAN_FINE_COLUMNS + CUE_COLUMNS


@dataclass
class IndexSummary:
    """What a source kept and what it dropped, by reason (nothing is dropped silently)."""

    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    skipped_files: list[str] = field(default_factory=list)

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` rows left out of the index for ``reason``."""
        if n:
            self.dropped[reason] += n

    def note(self, what: str, n: int = 1) -> None:
        """Count ``n`` rows kept, but with something worth knowing (e.g. no report)."""
        if n:
            self.notes[what] += n

    def format(self) -> str:
        """Human-readable lines: kept count, then each drop reason with its count."""
        lines = [f"kept {self.kept} images"]
        for reason, n in sorted(self.dropped.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"dropped {n} ({reason})")
        lines += [f"note: {n} {what}" for what, n in sorted(self.notes.items())]
        return "\n".join(lines)


def empty_index() -> pd.DataFrame:
    """An index table with no rows and the right columns and dtypes."""
    return normalise_index(pd.DataFrame({c: [] for c in INDEX_COLUMNS}))


def normalise_index(
    frame: pd.DataFrame, *, source: str = "index", where: Where | None = None
) -> pd.DataFrame:
    """Validate ``frame`` against the index contract and return it with canonical dtypes.

    Missing subcategory columns are added empty; missing metadata or label columns are an error.
    Errors name ``source``, the offending column and the first bad row: ``where(position)``,
    by default its CSV line number (right for a table read from a CSV as it is; a table built
    from a source, with rows dropped, names its rows otherwise: :func:`image_where`).
    """
    where = where or csv_line()
    missing = [c for c in META_COLUMNS + LABEL_COLUMNS if c not in frame.columns]
    if missing:
        raise FinegrainError(f"{source}: missing column(s) {', '.join(map(repr, missing))}")
    frame = frame.copy()
    for col in SUBCATEGORY_COLUMNS:
        if col not in frame.columns:
            frame[col] = pd.NA
    for col in META_COLUMNS:
        frame[col] = frame[col].astype("string")
        blank = frame[col].isna() | (frame[col].str.strip() == "")
        if col != "view" and blank.any():
            raise FinegrainError(f"{source}: empty {col!r} at {where(_first(blank))}")
    bad_split = ~frame["split"].isin(SPLITS)
    if bad_split.any():
        value = frame.loc[bad_split, "split"].iloc[0]
        raise FinegrainError(
            f"{source}: split {value!r} at {where(_first(bad_split))} is not one of {SPLITS}"
        )
    dup = frame["image_id"].duplicated()
    if dup.any():
        value = frame.loc[dup, "image_id"].iloc[0]
        raise FinegrainError(f"{source}: duplicate image_id {value!r} at {where(_first(dup))}")
    for col in LABEL_COLUMNS:
        frame[col] = check_labels(frame[col], source=source, column=col, where=where)
    for col in SUBCATEGORY_COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if c in frame.columns):
        check = check_cues if col in CUE_COLUMNS else check_subcategories
        frame[col] = check(frame[col], source=source, column=col, where=where)
    ordered = list(INDEX_COLUMNS) + [c for c in frame.columns if c not in INDEX_COLUMNS]
    return frame[ordered].reset_index(drop=True)


def read_index(path: str | Path) -> pd.DataFrame:
    """Read and validate an index table (CSV, CSV.gz or Parquet by extension).

    Relative ``path`` values are resolved against the index file's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"index table not found: {path}")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else _read_columns(path, None)
    frame = normalise_index(frame, source=str(path))
    frame["path"] = pd.array(resolve_paths(frame["path"].astype(str), path.parent), "string")
    return frame


def _read_columns(path: Path, columns: list[str] | None) -> pd.DataFrame:
    """``columns`` of an index table as text (all columns when None; none: the header)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path, columns=columns).astype("string")
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], usecols=columns)


def index_columns(path: str | Path) -> list[str]:
    """The column names of an index table, without reading its rows."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return list(pd.read_csv(path, nrows=0).columns)


def index_values(path: str | Path, column: str) -> pd.Series:
    """One column of the index table at ``path`` as text, indexed by ``image_id``, reading only
    those two columns (empty when the table has no such column)."""
    path = Path(path)
    if column not in index_columns(path):
        return pd.Series(dtype="string")
    frame = _read_columns(path, ["image_id", column]).drop_duplicates("image_id")
    return frame.set_index("image_id")[column]


def index_paths(path: str | Path, image_ids: Iterable[str]) -> dict[str, str]:
    """The resolved image path of each of ``image_ids`` in the index table at ``path``, reading
    only its ``image_id`` and ``path`` columns (a report needs a few paths, not a validated
    index of 377 k rows); an id not in the table raises a KeyError naming it."""
    path = Path(path)
    wanted = list(dict.fromkeys(str(i) for i in image_ids))
    frame = _read_columns(path, ["image_id", "path"])
    rows = frame[frame["image_id"].isin(wanted)].drop_duplicates("image_id")
    resolved = resolve_paths(rows["path"].astype(str), path.parent)
    found = dict(zip(rows["image_id"], resolved, strict=True))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise KeyError(f"{path}: image_id {missing[0]!r} not in the index table")
    return {i: found[i] for i in wanted}


def resolve_paths(paths: Iterable[str], folder: Path) -> list[str]:
    """Each path as ``p if Path(p).is_absolute() else str(folder / p)`` gives it, fast.

    Building a ``Path`` per row cost about 40 µs: 10 s for MIMIC-CXR-JPG's 243 k frontal rows.
    On POSIX a plain relative path (no empty or ``.`` segment, no trailing ``/``) is joined as
    text, which gives the same string; anything else goes through pathlib.

    >>> resolve_paths(["a/b.jpg", "/x/c.jpg", "./d//e.jpg"], Path("idx"))
    ['idx/a/b.jpg', '/x/c.jpg', 'idx/d/e.jpg']
    """
    if os.name != "posix":
        return [p if Path(p).is_absolute() else str(folder / p) for p in paths]
    base = str(folder)
    prefix = "" if base == "." else base.rstrip("/") + "/"

    def plain(p: str) -> bool:
        return not (
            p in ("", ".")
            or "//" in p
            or "/./" in p
            or p.startswith("./")
            or p.endswith(("/", "/."))
        )

    return [p if p.startswith("/") else prefix + p if plain(p) else str(folder / p) for p in paths]


def write_index(frame: pd.DataFrame, path: str | Path) -> None:
    """Validate and write an index table atomically (CSV, CSV.gz or Parquet by extension)."""
    path = Path(path)
    frame = normalise_index(frame, source=str(path))
    if path.suffix == ".parquet":
        with atomic_open(path, "wb") as handle:
            frame.to_parquet(handle, index=False)
    elif path.suffix == ".gz":
        with atomic_open(path, "wb") as handle:
            frame.to_csv(handle, index=False, compression="gzip")
    else:
        with atomic_open(path, "w") as handle:
            frame.to_csv(handle, index=False)


def _first(mask: pd.Series) -> int:
    """Position of the first row where ``mask`` is true."""
    return int(mask.to_numpy().nonzero()[0][0])


def image_where(frame: pd.DataFrame) -> Where:
    """``where`` for an index built from a source (rows dropped, so no CSV line): a row is
    named by its image id, else its path, else its position."""
    ids = frame["image_id"].astype("string").fillna("").str.strip().tolist()
    paths = frame["path"].astype("string").fillna("").tolist()

    def where(pos: int) -> str:
        if ids[pos]:
            return f"image {ids[pos]!r}"
        return f"the row of {paths[pos]!r}" if paths[pos] else f"row {pos}"

    return where
