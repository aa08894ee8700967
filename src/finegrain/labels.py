"""Validation of coarse labels and subcategories: one rule and one error message for every reader.

A coarse label is ``1`` (positive), ``0`` (negative), ``-1`` (uncertain) or empty (not
mentioned); ``1.0`` / ``-1.0`` and surrounding space are accepted. A subcategory is
``atypical``, ``typical`` or empty (case and surrounding space are ignored). Anything else is a
``ValueError`` that names the source, the column, where the first bad value is and the value.

>>> check_labels(pd.Series(["1", "0.0", "", None, "-1"]), source="labels.csv", column="Edema")
0       1
1       0
2    <NA>
3    <NA>
4      -1
dtype: Int8
>>> check_labels(pd.Series(["1", "2"]), source="labels.csv", column="Edema", where=csv_line())
Traceback (most recent call last):
...
finegrain.errors.FinegrainError: labels.csv: label '2' in column 'Edema' at line 3 is not one of 1, 0, -1 or empty
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from finegrain.errors import FinegrainError
from finegrain.observations import COARSE_VALUES, SUBCATEGORIES

__all__ = ["check_cues", "check_labels", "check_subcategories", "csv_line", "row_position"]

#: ``where(position)`` -> a phrase naming the place of the ``position``-th value, e.g. "line 7".
Where = Callable[[int], str]


def csv_line(offset: int = 2) -> Where:
    """``where`` for a table read from a CSV: the header is line 1, the first row line 2."""
    return lambda pos: f"line {pos + offset}"


def row_position(pos: int) -> str:
    """``where`` for an in-memory table: the row's position (0-based)."""
    return f"row {pos}"


def _series(values: pd.Series | Sequence | np.ndarray, column: str) -> pd.Series:
    if isinstance(values, pd.Series):
        return values
    return pd.Series(list(values) if not isinstance(values, np.ndarray) else values, name=column)


def _value(values: pd.Series, pos: int) -> Any:
    value = values.iloc[pos]
    return value.item() if isinstance(value, np.generic) else value


def _first(mask: pd.Series | np.ndarray) -> int:
    return int(np.flatnonzero(np.asarray(mask, dtype=bool))[0])


def _blank(values: pd.Series) -> pd.Series:
    """Missing, or a string that is empty after stripping."""
    text = values.astype("string").str.strip()
    return (values.isna() | (text == "")).fillna(True)


def check_labels(
    values: pd.Series | Sequence | np.ndarray,
    *,
    source: str,
    column: str,
    where: Where = row_position,
) -> pd.Series:
    """Coarse labels as ``Int8`` (1, 0, -1, ``<NA>`` for empty), index kept.

    Raises ``ValueError`` naming ``source``, ``column``, ``where(position)`` of the first bad
    value and the value itself.
    """
    values = _series(values, column)
    blank = _blank(values)
    numeric = pd.to_numeric(values.where(~blank, np.nan), errors="coerce")
    bad = (numeric.isna() & ~blank) | (numeric.notna() & ~numeric.isin(COARSE_VALUES))
    if bad.any():
        pos = _first(bad)
        raise FinegrainError(
            f"{source}: label {_value(values, pos)!r} in column {column!r} at {where(pos)} "
            "is not one of 1, 0, -1 or empty"
        )
    return numeric.astype("Int8").rename(values.name)


def check_subcategories(
    values: pd.Series | Sequence | np.ndarray,
    *,
    source: str,
    column: str,
    where: Where = row_position,
) -> pd.Series:
    """Subcategories as a ``string`` series of ``atypical`` / ``typical`` / ``<NA>`` (empty).

    Case and surrounding space are normalised. Raises ``ValueError`` naming ``source``,
    ``column``, ``where(position)`` of the first unknown value and the value itself.
    """
    return _choices(values, SUBCATEGORIES, "subcategory", source=source, column=column, where=where)


#: The values of an index's optional ``<Obs> cue`` column (empty: not positive / uncertain).
#: ``severity``: the subcategory comes from a severity word; ``change``: from a change word (no
#: severity word); ``no``: no cue (typical by the paper's rule only); ``yes``: a cue of unknown
#: kind (indexes written by finegrain 0.3).
CUE_VALUES: tuple[str, ...] = ("severity", "change", "no", "yes")


def check_cues(
    values: pd.Series | Sequence | np.ndarray,
    *,
    source: str,
    column: str,
    where: Where = row_position,
) -> pd.Series:
    """Cue flags as a ``string`` series of :data:`CUE_VALUES` / ``<NA>`` (empty); a
    ``ValueError`` names ``source``, ``column``, where the first unknown value is and the value.

    >>> check_cues(pd.Series(["severity", " No", ""]), source="index", column="Edema cue").tolist()
    ['severity', 'no', <NA>]
    """
    return _choices(values, CUE_VALUES, "cue", source=source, column=column, where=where)


def _choices(
    values, choices: Sequence[str], what: str, *, source: str, column: str, where: Where
) -> pd.Series:
    """``values`` as a ``string`` series of ``choices`` or ``<NA>`` (empty; case and surrounding
    space normalised); the first other value is a :class:`FinegrainError` naming it."""
    values = _series(values, column)
    blank = _blank(values)
    text = values.astype("string").str.strip().str.lower().mask(blank, pd.NA)
    bad = text.notna() & ~text.isin(choices)
    if bad.any():
        pos = _first(bad)
        expected = ", ".join(repr(c) for c in choices)
        raise FinegrainError(
            f"{source}: unknown {what} {_value(values, pos)!r} in column {column!r} at "
            f"{where(pos)} (expected {expected} or empty)"
        )
    return text.rename(values.name)
