"""Coarse difficulty as the literature measures it: every image of the held-out split scored,
uncertain and blank labels counted negative.

The papers that report a DenseNet121's coarse AUROC on MIMIC-CXR or CheXpert with the labeler's
labels score **every** image of the split and count a positive label (1) against **everything
else** (negative 0, uncertain -1 and blank alike). finegrain's own evaluation during training
scores only the images labelled positive or negative (:class:`~finegrain.data.dataset.CXRDataset`
leaves the others out), so a run's recorded ``auc`` is not comparable with those numbers.
:func:`coarse_difficulty` scores a finished run the literature's way, at the checkpoint with the
highest coarse AUC on the validation split (ties: the earliest; the literature selects on coarse
AUC), whichever split it scores:

* ``auc_all``: positive vs negative + uncertain + blank, over every image of the split;
* ``auc_labelled``: positive vs negative only, from the same scores: the run's own recorded
  ``auc`` at that checkpoint up to float noise (unless the run was trained with label noise,
  whose recorded ``auc`` is on the flipped validation labels).

Images of the split that are not in the image cache, or failed in it, cannot be scored: they are
counted in the result (``n_not_in_cache``, ``n_failed_in_cache``) and a warning says how many.

:data:`REAL_RANGE` is the range a phantom's coarse difficulty is calibrated to: DenseNet121 on
MIMIC-CXR with labeler labels, uncertain and blank counted negative (CheXclusion,
Seyyed-Kalantari et al., PSB 2021, five runs: about 0.84 for Consolidation, 0.90 for Edema).

>>> literature_label(pd.Series([1, 0, -1, None], dtype="Int8")).tolist()
[1, 0, 0, 0]
>>> label_states(pd.Series([1, 0, -1, None], dtype="Int8")).tolist()
['positive', 'negative', 'uncertain', 'blank']
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finegrain.errors import FinegrainError
from finegrain.experiment.selection import read_metrics, read_spec, select_iteration
from finegrain.observations import NEGATIVE, POSITIVE, UNCERTAIN
from finegrain.train.rundir import CONFIG_FILE, RunDirectory, find_runs

log = logging.getLogger(__name__)

#: Coarse AUROC of a DenseNet121 on MIMIC-CXR with labeler labels, uncertain and blank counted
#: negative (CheXclusion, PSB 2021, five runs: about 0.84 Consolidation, 0.90 Edema).
REAL_RANGE: dict[str, tuple[float, float]] = {"Consolidation": (0.80, 0.86), "Edema": (0.85, 0.91)}

#: The original label states, counted as ``n_<state>`` in a result.
STATES: tuple[str, ...] = ("positive", "negative", "uncertain", "blank")

#: Columns of :func:`difficulty_table` (the keys of :func:`coarse_difficulty`), in order.
COLUMNS: list[str] = [
    "observation",
    "method",
    "variant",
    "settings",
    "seed",
    "run",
    "iteration",
    "split",
    "auc_all",
    "auc_labelled",
    "auc_recorded",
    "real_low",
    "real_high",
    "in_range",
    *(f"n_{state}" for state in STATES),
    "n_not_in_cache",
    "n_failed_in_cache",
    "label_noise",
]

#: Columns of :func:`summarise_difficulty`, in order.
SUMMARY_COLUMNS: list[str] = [
    "observation",
    "method",
    "variant",
    "settings",
    "runs",
    "seeds",
    "auc_all_mean",
    "auc_all_min",
    "auc_all_max",
    "auc_labelled_mean",
    "auc_recorded_mean",
    *(f"n_{state}" for state in STATES),
    "n_not_in_cache",
    "n_failed_in_cache",
    "real_low",
    "real_high",
    "in_range",
]


def literature_label(labels: pd.Series) -> pd.Series:
    """1 where the label is positive, 0 everywhere else (negative, uncertain or blank)."""
    return (labels == POSITIVE).fillna(False).astype(np.int64)


def label_states(labels: pd.Series) -> np.ndarray:
    """Each label's state, one of :data:`STATES` (``labels``: 1 / 0 / -1 / NA)."""
    values = labels.to_numpy(dtype=float, na_value=np.nan)
    states = np.full(len(values), "blank", dtype=object)
    for code, state in ((POSITIVE, "positive"), (NEGATIVE, "negative"), (UNCERTAIN, "uncertain")):
        states[values == code] = state
    return states


def in_range(observation: str, auc: float) -> bool | None:
    """Whether ``auc`` lies in the observation's :data:`REAL_RANGE` (``None``: no range or NaN)."""
    if observation not in REAL_RANGE or math.isnan(auc):
        return None
    low, high = REAL_RANGE[observation]
    return bool(low <= auc <= high)


def _auc(positive: np.ndarray, score: np.ndarray) -> float:
    """:func:`finegrain.metrics.auc` of ``positive`` (bool) vs the rest; NaN if a class is empty."""
    from finegrain.metrics import auc

    if positive.all() or not positive.any():
        return math.nan
    return auc(positive.astype(np.int64), score)


def _variant(run_dir: Path, config: dict[str, Any]) -> str:
    """The run's folder name in a benchmark's layout (``<hash>/<observation>/<variant>/seed<k>``,
    which names the grid's axes), else its method and τ (``pu-rm-tau0.3``)."""
    spec = read_spec(run_dir, config)
    if run_dir.name == f"seed{spec.seed}" and run_dir.parent.parent.name == spec.observation:
        return run_dir.parent.name
    return spec.variant


def coarse_difficulty(
    run_dir: str | os.PathLike,
    *,
    split: str = "validate",
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """The coarse difficulty of one trained run (module docstring): a flat dict of
    :data:`COLUMNS`. ``device``: ``cpu``, ``cuda``, ``cuda:1`` or ``auto``."""
    from tqdm.auto import tqdm

    from finegrain.data.cache import ImageCache
    from finegrain.data.dataset import CXRDataset
    from finegrain.data.index import read_index
    from finegrain.labels import check_labels
    from finegrain.predict.predictor import Predictor
    from finegrain.train.distributed import resolve_device
    from finegrain.train.evaluation import predict_split

    run = RunDirectory(run_dir)
    if not run.metrics_path.is_file():
        raise FinegrainError(f"{run.path}: no {run.metrics_path.name}; not a trained run folder")
    config = run.read_config()
    spec = read_spec(run.path, config)
    metrics = read_metrics(run.path)
    iteration = select_iteration(metrics, split="validate", metric="auc")
    if iteration is None:
        raise FinegrainError(f"{run.path}: no validate evaluation with a coarse AUC")
    checkpoint = run.checkpoint_path(iteration)
    if not checkpoint.is_file():
        raise FinegrainError(f"{run.path}: no checkpoint of iteration {iteration} ({checkpoint})")
    recorded = metrics[(metrics["split"] == split) & (metrics["iteration"] == iteration)]

    predictor = Predictor.from_checkpoint(checkpoint)
    index = read_index(config["index"])
    cache = ImageCache(config["cache"])
    trained_on = (predictor.image_size, predictor.preprocessing.crop)
    if (cache.size, cache.crop) != trained_on:
        raise FinegrainError(
            f"{run.path}: its cache {cache.directory} holds {cache.size} px images "
            f"({cache.crop} crop); the checkpoint was trained on {trained_on[0]} px "
            f"({trained_on[1]} crop)"
        )
    observation = spec.observation
    if observation not in index.columns:
        raise FinegrainError(f"{config['index']}: no column {observation!r}")
    original = check_labels(index[observation], source=str(config["index"]), column=observation)
    view = index.assign(**{observation: literature_label(original)})  # no blank: all kept
    dataset = CXRDataset(view, cache, observation, split, keep_uncertain=True)

    model = predictor.model.to(resolve_device(device))
    n = len(dataset)
    batches = tqdm(
        range(0, n, batch_size),
        desc=f"{observation} seed{spec.seed}",
        unit="batch",
        leave=False,
        disable=not progress,
    )
    frames = [
        predict_split(
            model, dataset, predictor.method, batch_size, positions=range(s, n)[:batch_size]
        )
        for s in batches
    ]
    score = np.concatenate([f["score"].to_numpy(np.float64) for f in frames] or [np.zeros(0)])
    state = label_states(original)[dataset.index_rows]  # frames are in dataset order
    labelled = (state == "positive") | (state == "negative")

    left_out = {k: dataset.summary[k] for k in ("not in cache", "failed in cache")}
    if any(left_out.values()):
        log.warning(
            "%s: %d of the %d %s images are left out of its difficulty (%d not in the cache %s, "
            "%d failed in it)",
            run.path,
            sum(left_out.values()),
            sum(left_out.values()) + len(dataset),
            split,
            left_out["not in cache"],
            cache.directory,
            left_out["failed in cache"],
        )
    auc_all = _auc(state == "positive", score)
    low, high = REAL_RANGE.get(observation, (math.nan, math.nan))
    return {
        "observation": observation,
        "method": spec.method,
        "variant": _variant(run.path, config),
        "settings": "",
        "seed": spec.seed,
        "run": str(run.path),
        "iteration": iteration,
        "split": split,
        "auc_all": auc_all,
        "auc_labelled": _auc(state[labelled] == "positive", score[labelled]),
        "auc_recorded": float(recorded["auc"].iloc[-1]) if len(recorded) else math.nan,
        "real_low": low,
        "real_high": high,
        "in_range": in_range(observation, auc_all),
        **{f"n_{s}": int((state == s).sum()) for s in STATES},
        "n_not_in_cache": int(left_out["not in cache"]),
        "n_failed_in_cache": int(left_out["failed in cache"]),
        "label_noise": float(config.get("label_noise") or 0.0),
    }


def difficulty_table(
    run_dirs: Iterable[str | os.PathLike],
    *,
    split: str = "validate",
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = False,
) -> pd.DataFrame:
    """:func:`coarse_difficulty` of each run, one row per run (:data:`COLUMNS`); ``settings``
    names what sets a run apart from the others of its observation and variant
    (:func:`settings_groups`), so that runs of other settings are never pooled as seeds."""
    from tqdm.auto import tqdm

    run_dirs = list(run_dirs)
    rows = [
        coarse_difficulty(run, split=split, batch_size=batch_size, device=device, progress=progress)
        for run in tqdm(run_dirs, desc="difficulty", unit="run", disable=not progress)
    ]
    names = settings_groups(
        [(row["observation"], row["variant"]) for row in rows],
        [RunDirectory(run).read_config() for run in run_dirs],
    )
    for row, name in zip(rows, names, strict=True):
        row["settings"] = name
    return pd.DataFrame(rows, columns=COLUMNS)


def settings_groups(keys: Sequence[Any], configs: Sequence[dict[str, Any]]) -> list[str]:
    """For runs grouped by ``keys`` (e.g. observation and variant), each run's values of the
    identity fields (:meth:`~finegrain.train.config.TrainConfig.identity`, seed aside) that
    differ between runs of its group: ``iterations=300``; ``""`` where they all agree.

    >>> base = {"index": "i", "cache": "c", "observation": "Edema", "method": "u-ones"}
    >>> settings_groups(["a", "a", "a"], [base | {"seed": 0}, base | {"seed": 1},
    ...                                   base | {"seed": 0, "iterations": 600}])
    ['iterations=50000', 'iterations=50000', 'iterations=600']
    """
    from finegrain.experiment.grid import settings_text
    from finegrain.train.config import ADDED_FIELDS, TrainConfig

    identities = []
    for config in configs:
        identity = TrainConfig.from_dict(config).identity()
        identity.pop("seed", None)
        identities.append(identity)
    names = [""] * len(identities)
    for key in dict.fromkeys(keys):
        members = [i for i, k in enumerate(keys) if k == key]
        fields = sorted({f for i in members for f in identities[i]})
        differ = [
            f
            for f in fields
            if len({json.dumps(identities[i].get(f, ADDED_FIELDS.get(f))) for i in members}) > 1
        ]
        for i in members:
            names[i] = settings_text(
                [(f, identities[i].get(f, ADDED_FIELDS.get(f))) for f in differ]
            )
    return names


def summarise_difficulty(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (observation, method, variant, settings) of a :func:`difficulty_table`: the
    mean ``auc_all`` over its runs (seeds), its min and max, the mean ``auc_labelled`` and
    ``auc_recorded``, the number of runs, the mean image counts, the real range and whether the
    mean lies in it."""
    keys = ["observation", "method", "variant", "settings"]
    table = table.assign(settings=table["settings"].fillna("").astype(str))
    counts = [f"n_{s}" for s in STATES] + ["n_not_in_cache", "n_failed_in_cache"]
    if table.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    grouped = table.groupby(keys, sort=True, dropna=False)
    summary = grouped.agg(
        runs=("run", "size"),
        seeds=("seed", lambda s: " ".join(str(v) for v in sorted(s))),
        auc_all_mean=("auc_all", "mean"),
        auc_all_min=("auc_all", "min"),
        auc_all_max=("auc_all", "max"),
        auc_labelled_mean=("auc_labelled", "mean"),
        auc_recorded_mean=("auc_recorded", "mean"),
        **{c: (c, "mean") for c in counts},
    ).reset_index()
    real = [REAL_RANGE.get(o, (math.nan, math.nan)) for o in summary["observation"]]
    summary["real_low"] = [low for low, _ in real]
    summary["real_high"] = [high for _, high in real]
    summary["in_range"] = [
        in_range(o, a) for o, a in zip(summary["observation"], summary["auc_all_mean"], strict=True)
    ]
    return summary[SUMMARY_COLUMNS]


def _number(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def format_difficulty(summary: pd.DataFrame) -> str:
    """A :func:`summarise_difficulty` table as markdown."""
    lines = [
        "| observation | method | auc_all mean [min–max] | auc_labelled | runs "
        "| images (pos / neg / unc / blank) | real range | in range |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in summary.itertuples(index=False):
        real = "—" if math.isnan(row.real_low) else f"{row.real_low:.2f}–{row.real_high:.2f}"
        verdict = {True: "yes", False: "no", None: "—"}[row.in_range]
        images = " / ".join(f"{getattr(row, f'n_{s}'):g}" for s in STATES)
        name = f"{row.variant} ({row.settings})" if row.settings else row.variant
        lines.append(
            f"| {row.observation} | {name} | {_number(row.auc_all_mean)} "
            f"[{_number(row.auc_all_min)}–{_number(row.auc_all_max)}] "
            f"| {_number(row.auc_labelled_mean)} | {row.runs} | {images} | {real} | {verdict} |"
        )
    notes = [
        "auc_all: positive vs negative + uncertain + blank, every image of the split (the "
        "literature's convention); auc_labelled: positive vs negative only (finegrain's own "
        "evaluation). Real range: DenseNet121 on MIMIC-CXR, labeler labels, uncertain and blank "
        "counted negative (CheXclusion, PSB 2021)."
    ]
    short = summary[(summary["n_not_in_cache"] + summary["n_failed_in_cache"]) > 0]
    if len(short):
        notes.append(
            "Images not in the image cache or failed in it could not be scored for: "
            + ", ".join(
                f"{r.observation} {r.variant}" + (f" ({r.settings})" if r.settings else "")
                for r in short.itertuples(index=False)
            )
            + " (their counts per run: n_not_in_cache, n_failed_in_cache)."
        )
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def is_benchmark_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a benchmark folder (a ``runs/`` folder, no ``config.json``)."""
    path = Path(path)
    return (path / "runs").is_dir() and not (path / CONFIG_FILE).is_file()


def runs_of(
    paths: Sequence[str | os.PathLike], *, methods: Sequence[str] | None = None
) -> list[Path]:
    """The run folders of ``paths``: each a benchmark folder (its finished runs, under
    ``runs/``) or a run folder; only runs of ``methods`` when given."""
    from finegrain.experiment.grid import check_method

    for method in methods or ():
        check_method(method)
    found: list[Path] = []
    for path in map(Path, paths):
        if is_benchmark_folder(path):
            finished, unfinished = find_runs(path / "runs")
            if unfinished:
                log.warning("%s: %d unfinished runs left out", path, len(unfinished))
            found += finished
        elif (path / CONFIG_FILE).is_file():
            if not RunDirectory(path).is_done():
                log.warning("%s: not finished (no done marker); its checkpoints so far", path)
            found.append(path)
        else:
            raise FinegrainError(
                f"{path}: neither a benchmark folder (runs/) nor a run folder ({CONFIG_FILE})"
            )
    if methods:
        wanted = set(methods)
        found = [p for p in found if RunDirectory(p).read_config().get("method") in wanted]
    return found


__all__ = [
    "COLUMNS",
    "REAL_RANGE",
    "STATES",
    "SUMMARY_COLUMNS",
    "coarse_difficulty",
    "difficulty_table",
    "format_difficulty",
    "in_range",
    "is_benchmark_folder",
    "label_states",
    "literature_label",
    "runs_of",
    "settings_groups",
    "summarise_difficulty",
]
