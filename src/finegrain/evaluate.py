"""Predictions + labels → AUC^FG, AUC and the positive probability's calibration (ECE and
Brier on the AUC's cases, :mod:`finegrain.calibration`), with counts of every case used or
left out.

Which cases enter which metric (the paper measures AUC^FG over positive cases):

* **AUC** (ordinary): label ``1`` (positive) versus label ``0`` (negative).
* **AUC^FG**: the positive cases (label ``1``) that carry a subcategory, ``atypical`` (0)
  versus ``typical`` (1).
* Uncertain cases (label ``-1``) are left out of both unless ``include_uncertain=True``, which
  counts them as positives in both (the U-ones reading of "uncertain").
* Blank labels (not mentioned) are left out of both.

AUC^FG ranks the fine score when the predictions have one (:mod:`finegrain.scores`: a run's
``fine_score``, ``predict``'s too), with the paper's AUC^FG of the positive probability beside it
where the two differ; the coarse AUC is always the positive probability's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finegrain.calibration import (
    BRIER,
    ECE,
    N_BINS,
    brier_score,
    calibration_ci,
    expected_calibration_error,
)
from finegrain.data.index import FINE_LABEL_SOURCES, fine_label_column
from finegrain.errors import FinegrainError, option
from finegrain.labels import check_labels, check_subcategories
from finegrain.metrics import auc, auc_fg, bootstrap_ci
from finegrain.observations import (
    NEGATIVE,
    POSITIVE,
    SUBCATEGORIES,
    TYPICAL,
    UNCERTAIN,
    check_observation,
    subcategory_column,
)
from finegrain.scores import FINE_SCORE, SCORE

__all__ = [
    "Evaluation",
    "evaluate_predictions",
    "read_labels",
    "read_predictions",
    "score_predictions",
    "subcategory_agreement",
    "true_labels",
]

#: Keys of the dict returned by :func:`score_predictions` (the metrics.jsonl contract).
SCORE_KEYS: tuple[str, ...] = (
    "auc_fg",
    "auc_fg_fine",
    "auc",
    "n_atypical",
    "n_typical",
    "n_positive",
    "n_negative",
)


def _where(values: pd.Series, pos: int, source: str) -> str:
    """Where the ``pos``-th value is: ``line N`` of a CSV file, else ``row <index>``."""
    index = values.index[pos]
    index = index.item() if isinstance(index, np.generic) else index
    if source.endswith((".csv", ".csv.gz", ".gz", ".tsv")) and isinstance(index, int):
        return f"line {int(index) + 2}"
    return f"row {index!r}"


def _first(values: pd.Series, mask: pd.Series | np.ndarray, source: str) -> tuple[Any, str]:
    """The first flagged value and where it is (see :func:`_where`)."""
    pos = int(np.flatnonzero(np.asarray(mask, dtype=bool))[0])
    value = values.iloc[pos]
    value = value.item() if isinstance(value, np.generic) else value
    return value, _where(values, pos, source)


def _labels_array(values: pd.Series, source: str, column: str) -> np.ndarray:
    """Coarse labels as float (1, 0, -1, NaN for blank); a ValueError names the bad row."""
    labels = check_labels(
        values, source=source, column=column, where=lambda pos: _where(values, pos, source)
    )
    return labels.to_numpy(dtype=np.float64, na_value=np.nan)


def _subcategory_array(values: pd.Series, source: str, column: str) -> np.ndarray:
    """Subcategories as an object array of 'atypical' / 'typical' / None."""
    subs = check_subcategories(
        values, source=source, column=column, where=lambda pos: _where(values, pos, source)
    )
    return subs.to_numpy(dtype=object, na_value=None)


def _as_objects(values: pd.Series) -> np.ndarray:
    """Subcategories as an object array with ``None`` for missing (pandas may hold NaN)."""
    return values.astype("string").to_numpy(dtype=object, na_value=None)


def _score_array(values: pd.Series, source: str, column: str) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() | ~np.isfinite(numeric.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        value, where = _first(values, bad, source)
        raise FinegrainError(
            f"{source}: score {value!r} in column {column!r} at {where} is not a "
            f"finite number ({int(bad.sum())} such row(s))"
        )
    return numeric.to_numpy(dtype=np.float64)


def _require(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FinegrainError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))}; "
            f"it has {_column_list(frame)}"
        )


def _column_list(frame: pd.DataFrame, limit: int = 12) -> str:
    names = [repr(str(c)) for c in frame.columns]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


@dataclass
class _Selection:
    """The AUC and AUC^FG populations of one table, with what was left out and why."""

    y: np.ndarray  # AUC: 1 positive, 0 negative
    y_score: np.ndarray
    fg: np.ndarray  # AUC^FG: 1 typical, 0 atypical
    fg_score: np.ndarray
    left_out: Counter = field(default_factory=Counter)


def _select(
    label: np.ndarray, subcategory: np.ndarray, score: np.ndarray, include_uncertain: bool
) -> _Selection:
    positive = label == POSITIVE
    uncertain = label == UNCERTAIN
    if include_uncertain:
        positive = positive | uncertain
    negative = label == NEGATIVE
    used = positive | negative
    # a str, else no subcategory (None, or NaN where pandas stored the None as a string NA)
    has_sub = np.array([isinstance(s, str) for s in subcategory], dtype=bool)
    in_fg = positive & has_sub
    left_out: Counter = Counter()
    left_out["blank label"] = int(np.isnan(label).sum())
    if not include_uncertain:
        left_out["uncertain label"] = int(uncertain.sum())
    left_out["positive without subcategory (left out of AUC^FG only)"] = int(
        (positive & ~has_sub).sum()
    )
    left_out = Counter({k: v for k, v in left_out.items() if v})
    fg_sub = subcategory[in_fg]
    return _Selection(
        y=positive[used].astype(np.int8),
        y_score=score[used],
        fg=np.array([s == TYPICAL for s in fg_sub], dtype=np.int8),
        fg_score=score[in_fg],
        left_out=left_out,
    )


def score_predictions(frame: pd.DataFrame, *, include_uncertain: bool = False) -> dict[str, Any]:
    """AUC^FG, AUC and the class counts of one table of predictions (one split, one checkpoint).

    ``frame`` has the columns ``label`` (1 / 0 / -1 / blank), ``subcategory``
    (``atypical`` / ``typical`` / blank) and ``score`` (the positive probability). See the module
    docstring for which rows enter which metric. A metric whose classes are not both present is
    ``None`` (never an error), so the training loop can log it at any checkpoint.

    With a ``fine_score`` column (the method's own fine score), ``auc_fg_fine`` is AUC^FG of
    that score over the same positives; without one it is ``None``.

    Returns ``{"auc_fg", "auc_fg_fine", "auc", "n_atypical", "n_typical", "n_positive",
    "n_negative"}``.

    >>> frame = pd.DataFrame({
    ...     "label": [1, 1, 1, 0, 0, -1],
    ...     "subcategory": ["atypical", "typical", "typical", None, None, "typical"],
    ...     "score": [0.6, 0.9, 0.5, 0.1, 0.7, 0.8]})
    >>> score_predictions(frame)
    {'auc_fg': 0.5, 'auc_fg_fine': None, 'auc': 0.6666666666666666, 'n_atypical': 1, 'n_typical': 2, 'n_positive': 3, 'n_negative': 2}
    >>> score_predictions(frame.assign(fine_score=[0.1, 0.9, 0.2, 0, 0, 0]))["auc_fg_fine"]
    1.0
    """
    _require(frame, ["label", "subcategory", "score"], "predictions")
    sel = _select(
        _labels_array(frame["label"], "predictions", "label"),
        _subcategory_array(frame["subcategory"], "predictions", "subcategory"),
        _score_array(frame["score"], "predictions", "score"),
        include_uncertain,
    )
    n_typical = int(sel.fg.sum())
    n_atypical = int(sel.fg.shape[0] - n_typical)
    n_positive = int(sel.y.sum())
    n_negative = int(sel.y.shape[0] - n_positive)
    fine = None
    if "fine_score" in frame.columns and n_atypical and n_typical:
        fine_sel = _select(
            _labels_array(frame["label"], "predictions", "label"),
            _subcategory_array(frame["subcategory"], "predictions", "subcategory"),
            _score_array(frame["fine_score"], "predictions", "fine_score"),
            include_uncertain,
        )
        fine = auc_fg(fine_sel.fg, fine_sel.fg_score)
    return {
        "auc_fg": auc_fg(sel.fg, sel.fg_score) if n_atypical and n_typical else None,
        "auc_fg_fine": fine,
        "auc": auc(sel.y, sel.y_score) if n_positive and n_negative else None,
        "n_atypical": n_atypical,
        "n_typical": n_typical,
        "n_positive": n_positive,
        "n_negative": n_negative,
    }


# --------------------------------------------------------------------------------------------
# evaluate a predictions file against a labels file (the `finegrain evaluate` command)
# --------------------------------------------------------------------------------------------


def _read_table(table: pd.DataFrame | str | Path, what: str) -> tuple[pd.DataFrame, str]:
    if isinstance(table, pd.DataFrame):
        return table, f"{what} (DataFrame)"
    path = Path(table)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    if path.suffix == ".parquet":
        return pd.read_parquet(path), str(path)
    from finegrain.io import read_csv  # errors name the file and line

    frame = read_csv(path, require_rows=True, dtype=str, keep_default_na=False, na_values=[""])
    return frame, str(path)


def _id_column(
    frame: pd.DataFrame, given: str | None, source: str, fallback: str | None = None
) -> str:
    if given is not None:
        _require(frame, [given], source)
        return given
    for candidate in ("image_id", "id", fallback):
        if candidate is not None and candidate in frame.columns:
            return candidate
    raise FinegrainError(
        f"{source}: no id column: expected 'image_id' or 'id' (or name it with "
        f"{option('id_column', '--id-column')}); "
        f"it has {_column_list(frame)}"
    )


def _ids(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    ids = frame[column].astype("string").str.strip()
    blank = ids.isna() | (ids == "")
    if blank.any():
        raise FinegrainError(f"{source}: empty {column!r} at {_first(ids, blank, source)[1]}")
    dup = ids.duplicated()
    if dup.any():
        value, where = _first(ids, dup, source)
        raise FinegrainError(f"{source}: duplicate {column} {value!r} at {where}")
    return ids


#: The positive-probability column of ``finegrain predict``'s output (``path`` its id).
PREDICT_SCORE, PREDICT_ID = "probability", "path"


def read_predictions(
    predictions: pd.DataFrame | str | Path,
    *,
    id_column: str | None = None,
    score_column: str | None = None,
    fine_score_column: str | None = None,
    iteration: int | None = None,
) -> tuple[pd.DataFrame, int | None, str]:
    """One case per row: ``(frame with columns id, score[, fine_score, label, subcategory],
    iteration, source)``; rows of ``predict`` whose image could not be read (a non-empty
    ``error``) are dropped and counted in ``frame.attrs["failed"]``.

    A run's ``predictions-<split>.csv`` holds every checkpoint (column ``iteration``): the last
    one is taken unless ``iteration`` names another. ``score_column`` is the positive
    probability (default ``score``, or ``probability`` in ``finegrain predict``'s output);
    ``fine_score_column`` the fine score AUC^FG ranks (default ``fine_score`` when there is
    one). Any table needs an id column: ``image_id`` or ``id`` (or ``id_column``), or
    ``predict``'s ``path``.
    """
    frame, source = _read_table(predictions, "predictions")
    id_col = _id_column(frame, id_column, source, fallback=PREDICT_ID)
    if score_column is None:
        score_column = (
            SCORE if SCORE in frame.columns or PREDICT_SCORE not in frame.columns else PREDICT_SCORE
        )
    if score_column == FINE_SCORE:
        raise FinegrainError(
            f"--score-column {FINE_SCORE}: {FINE_SCORE} is the fine score, which AUC^FG ranks "
            "already; the coarse AUC needs the positive probability (the default score "
            f"column), and --fine-score-column names another fine score"
        )
    _require(frame, [score_column], source)
    if fine_score_column is None:
        fine_score_column = FINE_SCORE if FINE_SCORE in frame.columns else None
    elif fine_score_column not in frame.columns:
        _require(frame, [fine_score_column], source)
    chosen = None
    if "iteration" in frame.columns and id_col != PREDICT_ID:
        iters = pd.to_numeric(frame["iteration"], errors="coerce")
        if iters.isna().any():
            value, where = _first(frame["iteration"], iters.isna(), source)
            raise FinegrainError(f"{source}: iteration {value!r} at {where} is not a number")
        available = sorted(int(i) for i in iters.unique())
        if not available:
            raise FinegrainError(f"{source}: no predictions (the table is empty)")
        chosen = available[-1] if iteration is None else int(iteration)
        if chosen not in available:
            raise FinegrainError(
                f"{source}: no predictions for iteration {chosen}; it has {available}"
            )
        frame = frame[iters == chosen]
    elif iteration is not None:
        raise FinegrainError(
            f"{source}: iteration {iteration} asked for, but there is no 'iteration' column"
        )
    failed = 0
    if "error" in frame.columns:  # predict's unreadable images: no score to rank
        bad = frame["error"].fillna("").astype(str).str.strip() != ""
        failed = int(bad.sum())
        frame = frame[~bad.to_numpy()]
    out = pd.DataFrame(
        {
            "id": _ids(frame, id_col, source),
            "score": _score_array(frame[score_column], source, score_column),
        }
    )
    if fine_score_column is not None:
        out["fine_score"] = _score_array(frame[fine_score_column], source, fine_score_column)
    for col in ("label", "subcategory"):
        if col in frame.columns:
            out[col] = frame[col].to_numpy()
    out.attrs.update(failed=failed, id_column=id_col)
    return out, chosen, source


def read_labels(
    labels: pd.DataFrame | str | Path, observation: str, *, fine_labels: str = "text"
) -> tuple[pd.DataFrame, str]:
    """Labels of one observation: ``(frame with columns id, label, subcategory, source)``.

    Accepts a labels CSV from ``finegrain label`` (``id``, ``<Obs>``, ``<Obs> subcategory``, ...)
    or an index table (``image_id``, ..., ``<Obs>``, ``<Obs> subcategory``). ``fine_labels``
    picks the subcategory source: ``text`` (the report labeler's ``<Obs> subcategory``) or
    ``mesh`` (OpenI's human MeSH annotation, ``<Obs> subcategory mesh``, written by
    ``finegrain index --openi``); with ``mesh`` the frame also has ``text_subcategory`` when the
    table has the text-mined column (for the agreement between the two).
    """
    observation = check_observation(observation)
    frame, source = _read_table(labels, "labels")
    id_col = _id_column(frame, None, source)
    sub_col = fine_label_column(observation, fine_labels)
    _require(frame, [observation, sub_col], source)
    out = pd.DataFrame(
        {
            "id": _ids(frame, id_col, source),
            "label": _labels_array(frame[observation], source, observation),
            "subcategory": _subcategory_array(frame[sub_col], source, sub_col),
        }
    )
    text_col = subcategory_column(observation)
    if fine_labels != "text" and text_col in frame.columns:
        out["text_subcategory"] = _subcategory_array(frame[text_col], source, text_col)
    if "path" in frame.columns:  # an index table: its images, for predictions keyed by path
        out["path"] = frame["path"].fillna("").astype(str).to_numpy()
        out.attrs["base"] = Path(source).parent if not isinstance(labels, pd.DataFrame) else None
    return out, source


def true_labels(predictions: str | Path) -> tuple[pd.DataFrame, str, str] | None:
    """The true labels behind a run's predictions whose labels its ``label_noise`` flipped
    (``RUN/predictions-validate.csv`` of a positive control):
    ``(labels of that split from the run's index, as read_labels gives them, the run's
    observation, where they come from and why)``; ``None`` for any other file. An error says why
    when the run's index cannot be read: flipped labels are never used in their place.
    """
    from finegrain.data.index import read_index
    from finegrain.train.rundir import RunDirectory

    found = RunDirectory.of_predictions(predictions)
    if found is None:
        return None
    run, split = found
    share = run.label_noise(split)
    if not share:
        return None
    config = run.read_config()
    index_path, observation = config.get("index"), config.get("observation")
    why = (
        f"{predictions} carries its {split} labels as flipped by the run's label noise "
        f"({share:.0%}); the true labels are in the run's index"
    )
    if not index_path or not observation:
        raise FinegrainError(f"{why}, which {run.config_path} does not name")
    try:
        index = read_index(index_path)
    except (OSError, FinegrainError) as exc:
        raise FinegrainError(f"{why}, which cannot be read: {exc}") from exc
    table, _ = read_labels(index[index["split"] == split], observation)
    return table, check_observation(observation), f"{index_path} (true labels: {why})"


def subcategory_agreement(first: np.ndarray | list, second: np.ndarray | list) -> dict[str, Any]:
    """How two subcategory sources agree on the cases both label (anything but ``atypical`` /
    ``typical``, e.g. ``None`` or ``""``, is no subcategory).

    Returns ``n`` (cases with both), ``agree``, ``proportion`` and Cohen's ``kappa`` (``None``
    when undefined), and the 2×2 ``table`` ``{first: {second: count}}``.

    >>> subcategory_agreement(["typical", "atypical", "typical", None],
    ...                       ["typical", "typical", "typical", "atypical"])["agree"]
    2
    """
    from sklearn.metrics import cohen_kappa_score

    a, b = np.asarray(first, dtype=object), np.asarray(second, dtype=object)
    known = set(SUBCATEGORIES)
    both = np.array([x in known and y in known for x, y in zip(a, b, strict=True)], dtype=bool)
    a, b = a[both].astype(str), b[both].astype(str)
    n = int(both.sum())
    agree = int((a == b).sum())
    kappa = None
    if n and len(set(a) | set(b)) > 1:
        value = float(cohen_kappa_score(a, b, labels=list(SUBCATEGORIES)))
        kappa = None if np.isnan(value) else value
    table = {x: {y: int(((a == x) & (b == y)).sum()) for y in SUBCATEGORIES} for x in SUBCATEGORIES}
    return {
        "n": n,
        "agree": agree,
        "proportion": agree / n if n else None,
        "kappa": kappa,
        "table": table,
    }


@dataclass
class Evaluation:
    """AUC^FG and AUC of one predictions table with bootstrap CIs and every count behind them."""

    observation: str | None
    iteration: int | None
    auc_fg: float | None
    auc_fg_ci: tuple[float, float] | None
    auc: float | None
    auc_ci: tuple[float, float] | None
    n_atypical: int
    n_typical: int
    n_positive: int
    n_negative: int
    n_predictions: int
    left_out: dict[str, int]  # reason -> number of predictions
    labels_without_prediction: int | None
    level: float
    n_boot: int
    seed: int
    include_uncertain: bool
    predictions_source: str
    labels_source: str | None
    fine_labels: str = "text"
    agreement: dict[str, Any] | None = None  # text-mined vs fine_labels, AUC^FG-eligible cases
    #: when no prediction id is in the labels: a few ids of each side, to show how they differ
    id_samples: dict[str, list[str]] | None = None
    #: what AUC^FG ranked (:mod:`finegrain.scores`): ``fine_score`` when the predictions have
    #: one of their own, else ``score`` (the positive probability, which a method of the paper's
    #: fine score equals)
    ranked: str = SCORE
    #: the paper's AUC^FG of the positive probability, where it differs from the ranked one
    auc_fg_probability: float | None = None
    auc_fg_probability_ci: tuple[float, float] | None = None
    #: calibration of the positive probability on the AUC's cases (:mod:`finegrain.calibration`):
    #: expected calibration error over ``n_bins`` equal-mass bins and the Brier score, each with
    #: its bootstrap CI; ``None`` with ``calibration_note`` saying why (no case, scores that are
    #: not probabilities)
    ece: float | None = None
    ece_ci: tuple[float, float] | None = None
    brier: float | None = None
    brier_ci: tuple[float, float] | None = None
    n_bins: int = N_BINS
    calibration_note: str | None = None

    @property
    def evaluated(self) -> bool:
        """Whether AUC or AUC^FG could be measured (else nothing useful was done)."""
        return self.auc is not None or self.auc_fg is not None

    def nothing_evaluated(self) -> str:
        """One line on why nothing could be measured (call when not :attr:`evaluated`)."""
        if self.id_samples is not None:
            pred, lab = (", ".join(map(repr, v)) for v in self.id_samples.values())
            return (
                f"nothing evaluated: no prediction id is in the labels (the predictions' ids "
                f"look like {pred}; the labels' like {lab})"
            )
        return (
            "nothing evaluated: AUC needs a positive and a negative, AUC^FG an atypical and a "
            f"typical positive (positive {self.n_positive}, negative {self.n_negative}, "
            f"atypical {self.n_atypical}, typical {self.n_typical})"
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("auc_fg_ci", "auc_ci", "auc_fg_probability_ci", "ece_ci", "brier_ci"):
            out[key] = list(out[key]) if out[key] is not None else None
        return out

    def format(self) -> str:
        """Human-readable summary (what ``finegrain evaluate`` prints)."""
        pct = f"{100 * self.level:g}%"
        title = self.observation or "(observation not named)"
        if self.iteration is not None:
            title += f", iteration {self.iteration}"

        def line(name, value, ci, counts, missing):
            if value is None:
                return f"{name:<7} undefined ({missing})   ({counts})"
            return f"{name:<7} {value:.4f}  {pct} CI {ci[0]:.4f} to {ci[1]:.4f}   ({counts})"

        if self.fine_labels != "text":
            title += f" (AUC^FG against the {self.fine_labels} subcategories)"
        lines = [
            f"{title}: {self.n_predictions} predictions from {self.predictions_source}"
            + (f", labels from {self.labels_source}" if self.labels_source else ""),
            line(
                "AUC^FG",
                self.auc_fg,
                self.auc_fg_ci,
                f"atypical {self.n_atypical}, typical {self.n_typical}"
                + (", of the fine score" if self.ranked == FINE_SCORE else ""),
                "needs at least one atypical and one typical positive",
            ),
            *(
                [
                    line(
                        "  P(pos)",
                        self.auc_fg_probability,
                        self.auc_fg_probability_ci,
                        "the paper's AUC^FG, of the positive probability",
                        "",
                    )
                ]
                if self.auc_fg_probability is not None
                else []
            ),
            line(
                "AUC",
                self.auc,
                self.auc_ci,
                f"positive {self.n_positive}, negative {self.n_negative}",
                "needs at least one positive and one negative",
            ),
            line(
                "ECE",
                self.ece,
                self.ece_ci,
                f"positive probability, {self.n_bins} equal-mass bins",
                self.calibration_note,
            ),
            line("Brier", self.brier, self.brier_ci, "positive probability", self.calibration_note),
        ]
        for reason, n in self.left_out.items():
            lines.append(f"left out {n} ({reason})")
        if self.agreement is not None:
            a = self.agreement
            kappa = "undefined" if a["kappa"] is None else f"{a['kappa']:.3f}"
            share = "" if a["proportion"] is None else f" ({100 * a['proportion']:.1f}%)"
            lines.append(
                f"text-mined vs {self.fine_labels} subcategories: agree on {a['agree']} of "
                f"{a['n']} positives with both{share}, Cohen's kappa {kappa}"
            )
        if self.labels_without_prediction:
            lines.append(
                f"note: {self.labels_without_prediction} labelled cases have no prediction"
            )
        lines.append(
            f"CIs: percentile bootstrap, {self.n_boot} replicates stratified by class, "
            f"seed {self.seed}"
            + ("; uncertain counted as positive" if self.include_uncertain else "")
        )
        return "\n".join(lines)


def evaluate_predictions(
    predictions: pd.DataFrame | str | Path,
    labels: pd.DataFrame | str | Path | None = None,
    observation: str | None = None,
    *,
    id_column: str | None = None,
    score_column: str | None = None,
    fine_score_column: str | None = None,
    iteration: int | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    include_uncertain: bool = False,
    fine_labels: str = "text",
) -> Evaluation:
    """Join predictions to labels by id and measure AUC^FG and AUC with bootstrap CIs.

    ``predictions`` and ``labels`` are DataFrames or file paths (see :func:`read_predictions`
    and :func:`read_labels`). Without ``labels``, the predictions must carry ``label`` and
    ``subcategory`` columns (as a run's ``predictions-<split>.csv`` does); with ``labels``, those
    columns of the predictions are ignored. A run's own predictions of a split whose labels its
    ``label_noise`` flipped are scored against the true labels in the run's index
    (:func:`true_labels`), never the flipped ones. Every prediction left out is counted by reason:
    id not in the labels, blank label, uncertain label, positive without a subcategory.

    ``fine_labels="mesh"`` measures AUC^FG against the human MeSH subcategories of an OpenI
    index (``labels`` needed) and reports their agreement with the text-mined ones on the
    positives of the predictions (:func:`subcategory_agreement`).

    AUC^FG ranks the predictions' fine score when they have one (``fine_score``, or
    ``fine_score_column``), with the paper's AUC^FG of the positive probability beside it where
    the two differ; the AUC is the positive probability's. ``finegrain predict``'s output
    (``path``, ``probability``, ``fine_score``) is joined to an index table by image path, to
    a labels CSV by file name.
    """
    if fine_labels not in FINE_LABEL_SOURCES:
        raise FinegrainError(
            f"fine_labels must be one of {FINE_LABEL_SOURCES}, got {fine_labels!r}"
        )
    if fine_labels != "text" and labels is None:
        raise FinegrainError(
            f"{option(f'fine_labels={fine_labels!r}', f'--fine-labels {fine_labels}')} needs "
            f"{option('labels', '--labels')}: an index table with "
            f"'<Observation> subcategory {fine_labels}' columns (finegrain index --openi)"
        )
    agreement = None
    id_samples = None
    noisy = None
    if labels is None and not isinstance(predictions, pd.DataFrame):
        noisy = true_labels(predictions)
    preds, chosen, pred_source = read_predictions(
        predictions,
        id_column=id_column,
        score_column=score_column,
        fine_score_column=fine_score_column,
        iteration=iteration,
    )
    left_out: Counter = Counter()
    left_out["image not read (predict's error column)"] = preds.attrs.get("failed", 0)
    fine = None
    labels_source = None
    unmatched_labels = None
    if noisy is not None:  # a label-noise run's own predictions: its true labels, not theirs
        table, run_observation, labels_source = noisy
        if observation is not None and check_observation(observation) != run_observation:
            raise FinegrainError(
                f"{pred_source}: predictions of {run_observation}, not {observation}"
            )
        observation = run_observation
    if labels is not None or noisy is not None:
        if noisy is None:
            if observation is None:
                raise FinegrainError("labels are read for one observation: give the observation")
            observation = check_observation(observation)
            table, labels_source = read_labels(labels, observation, fine_labels=fine_labels)
            preds, table = _join_keys(preds, table)
        found = preds["id"].isin(table["id"])
        left_out["id not in labels"] = int((~found).sum())
        if not found.any():
            id_samples = {
                "predictions": [str(v) for v in preds["id"].head(3)],
                "labels": [str(v) for v in table["id"].head(3)],
            }
        # a run scores only its split's positives and negatives: the rest are not missed
        unmatched_labels = None if noisy else int((~table["id"].isin(preds["id"])).sum())
        matched = table.set_index("id").loc[preds.loc[found, "id"]]
        label = matched["label"].to_numpy(dtype=np.float64)
        subcategory = _as_objects(matched["subcategory"])
        score = preds.loc[found, "score"].to_numpy()
        if "fine_score" in preds.columns:
            fine = preds.loc[found, "fine_score"].to_numpy()
        if "text_subcategory" in matched.columns:
            positive = (label == POSITIVE) | (include_uncertain & (label == UNCERTAIN))
            agreement = subcategory_agreement(
                _as_objects(matched["text_subcategory"])[positive], subcategory[positive]
            )
    else:
        _require(preds, ["label", "subcategory"], f"{pred_source} (no labels file given)")
        if observation is not None:
            observation = check_observation(observation)
        label = _labels_array(preds["label"], pred_source, "label")
        subcategory = _subcategory_array(preds["subcategory"], pred_source, "subcategory")
        score = preds["score"].to_numpy()
        if "fine_score" in preds.columns:
            fine = preds["fine_score"].to_numpy()
    sel = _select(label, subcategory, score, include_uncertain)
    ranked = sel if fine is None else _select(label, subcategory, fine, include_uncertain)
    left_out.update(sel.left_out)
    n_typical, n_positive = int(sel.fg.sum()), int(sel.y.sum())
    n_atypical, n_negative = sel.fg.shape[0] - n_typical, sel.y.shape[0] - n_positive

    def measure(metric, y, s, ok):
        if not ok:
            return None, None
        return metric(y, s), bootstrap_ci(metric, y, s, n_boot=n_boot, level=level, seed=seed)

    fg_value, fg_ci = measure(auc_fg, ranked.fg, ranked.fg_score, n_atypical and n_typical)
    auc_value, auc_ci = measure(auc, sel.y, sel.y_score, n_positive and n_negative)
    paper, paper_ci = None, None
    own = fine is not None and not np.array_equal(fine, score)  # a fine score of its own
    if own:
        paper, paper_ci = measure(auc_fg, sel.fg, sel.fg_score, n_atypical and n_typical)
    calibration = _calibration(sel.y, sel.y_score, n_boot=n_boot, level=level, seed=seed)
    return Evaluation(
        observation=observation,
        iteration=chosen,
        auc_fg=fg_value,
        auc_fg_ci=fg_ci,
        auc=auc_value,
        auc_ci=auc_ci,
        n_atypical=int(n_atypical),
        n_typical=n_typical,
        n_positive=n_positive,
        n_negative=int(n_negative),
        n_predictions=int(preds.shape[0]),
        left_out={k: v for k, v in left_out.items() if v},
        labels_without_prediction=unmatched_labels,
        level=level,
        n_boot=n_boot,
        seed=seed,
        include_uncertain=include_uncertain,
        predictions_source=pred_source,
        labels_source=labels_source,
        fine_labels=fine_labels,
        agreement=agreement,
        id_samples=id_samples,
        ranked=FINE_SCORE if own else SCORE,
        auc_fg_probability=paper,
        auc_fg_probability_ci=paper_ci,
        **calibration,
    )


def _calibration(
    y: np.ndarray, probability: np.ndarray, *, n_boot: int, level: float, seed: int
) -> dict[str, Any]:
    """ECE and Brier of the positive probability with their CIs, or a note why not."""
    y = np.asarray(y)
    p = np.asarray(probability, dtype=float)
    if y.shape[0] == 0:
        return {"calibration_note": "needs at least one positive or negative"}
    if np.nanmin(p) < 0 or np.nanmax(p) > 1:
        return {"calibration_note": "the scores are not probabilities: outside [0, 1]"}
    common = {"n_boot": n_boot, "level": level, "seed": seed}
    return {
        "ece": expected_calibration_error(y, p),
        "ece_ci": calibration_ci(y, p, measure=ECE, **common),
        "brier": brier_score(y, p),
        "brier_ci": calibration_ci(y, p, measure=BRIER, **common),
    }


def _join_keys(preds: pd.DataFrame, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``finegrain predict``'s output names its images by path: joined to an index table by
    the resolved path, to a labels CSV by the file name without extension."""
    if preds.attrs.get("id_column") != PREDICT_ID:
        return preds, table
    if "path" in table.columns:  # an index's paths are relative to its folder
        base = table.attrs.get("base") or Path.cwd()
        paths = [str((base / p).resolve()) if p else "" for p in table["path"]]
        keys = [str(Path(p).resolve()) for p in preds["id"]]
        return preds.assign(id=keys), table.assign(id=paths)
    return preds.assign(id=[Path(p).stem for p in preds["id"]]), table
