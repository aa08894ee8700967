"""Best-checkpoint selection: the paper's protocol picks, for each run, the checkpoint with the
highest validation AUC^FG (ties go to the earliest iteration), AUC^FG of the score the method
ranks (:mod:`finegrain.scores`: the paper's AUC^FG of the positive probability for the paper's
methods, the fine score's for a method with one of its own).

The test split is never used to choose: its scores are read at the iteration chosen on
validation. :func:`select_runs` is the benchmark's *select* stage: each planned run's record
(:class:`RunSelection`: spec, folder, recorded configuration, method, chosen checkpoint).

>>> import pandas as pd
>>> m = pd.DataFrame({"iteration": [100, 200, 300], "split": ["validate"] * 3,
...                   "auc_fg_fine": [0.61, 0.70, 0.70]})
>>> select_iteration(m)
200
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from finegrain.errors import FinegrainError
from finegrain.evaluate import SCORE_KEYS
from finegrain.experiment.grid import RunSpec
from finegrain.scores import RANKED_METRIC, with_ranked_metric
from finegrain.train.config import recorded_method
from finegrain.train.rundir import RunDirectory, find_runs

if TYPE_CHECKING:  # pragma: no cover
    from finegrain.experiment.plan import PlannedRun
    from finegrain.train.methods import Method

#: The metric fields of each evaluation line of a run (the training loop's contract).
METRIC_FIELDS: tuple[str, ...] = SCORE_KEYS
#: What the loop summarises on each evaluation line about the training since the previous one
#: (loss; PCE's reach: the share of training positives with p <= τ; the positives' mean
#: cross-entropy -log p: near 0 once they are memorised).
TRAINING_FIELDS: tuple[str, ...] = ("train_loss", "train_pce_reach", "train_positive_ce")


def select_iteration(
    metrics: pd.DataFrame, *, split: str = "validate", metric: str = RANKED_METRIC
) -> int | None:
    """The iteration with the highest ``metric`` on ``split``; ties -> earliest iteration.

    Evaluations whose metric is missing (``null``: a class was empty) cannot be chosen. Returns
    ``None`` when no evaluation of ``split`` has a value. The ranked AUC^FG of evaluations
    recorded before the fine score is the paper's (:func:`finegrain.scores.with_ranked_metric`).
    """
    if metric == RANKED_METRIC:
        metrics = with_ranked_metric(metrics)
    for column in ("iteration", "split", metric):
        if column not in metrics.columns:
            raise FinegrainError(f"metrics table has no {column!r} column")
    rows = metrics[(metrics["split"] == split) & metrics[metric].notna()]
    if rows.empty:
        return None
    values = rows[metric].astype(float)
    best = values.max()
    return int(rows.loc[values == best, "iteration"].astype(int).min())


def read_metrics(run_dir: str | Path) -> pd.DataFrame:
    """The evaluations of a run as a table, one row per (iteration, split); a checkpoint
    evaluated twice (a resumed run re-evaluating its last checkpoint) keeps its latest line.
    The ranked AUC^FG of evaluations recorded before the fine score is the paper's."""
    metrics = RunDirectory(run_dir).read_metrics((*METRIC_FIELDS, *TRAINING_FIELDS))
    return with_ranked_metric(metrics)


def read_spec(run_dir: str | Path, config: dict | None = None) -> RunSpec:
    """The run's identity (observation, method, τ, seed) from its recorded configuration."""
    run = RunDirectory(run_dir)
    if config is None:
        config = run.read_config()
    for key in ("observation", "method", "seed"):
        if key not in config:
            raise FinegrainError(f"{run.config_path}: missing field {key!r}")
    return RunSpec(
        observation=str(config["observation"]),
        method=str(config["method"]),
        tau=recorded_method(config).tau,
        seed=int(config["seed"]),
    )


@dataclass
class RunSelection:
    """One finished run with its metrics and the checkpoint chosen on validation."""

    spec: RunSpec
    directory: Path
    metrics: pd.DataFrame
    iteration: int | None
    notes: list[str] = field(default_factory=list)
    #: the run's recorded configuration (``config.json``)
    config: dict = field(default_factory=dict)
    #: why no checkpoint was chosen (``""`` when one was): :func:`undefined_reason`
    unchosen: str = ""

    @property
    def run(self) -> RunDirectory:
        return RunDirectory(self.directory)

    @functools.cached_property
    def method(self) -> Method:
        """The run's method with its recorded options (whose fine score AUC^FG ranks)."""
        return recorded_method(self.config)

    def row(self, split: str) -> dict | None:
        """The metrics of ``split`` at the chosen iteration (``None`` if not evaluated)."""
        if self.iteration is None:
            return None
        rows = self.metrics[
            (self.metrics["split"] == split) & (self.metrics["iteration"] == self.iteration)
        ]
        return None if rows.empty else rows.iloc[-1].to_dict()


def select_run(
    run_dir: str | Path, *, split: str = "validate", spec: RunSpec | None = None
) -> RunSelection:
    """Read a finished run directory and choose its checkpoint by ``split`` AUC^FG.

    ``spec``: the grid's run expected there (its extra axes cannot be read back from the
    configuration alone); a note says so when the recorded configuration disagrees with it.
    """
    run_dir = Path(run_dir)
    config = RunDirectory(run_dir).read_config()
    metrics = read_metrics(run_dir)
    selection = RunSelection(
        spec or read_spec(run_dir, config),
        run_dir,
        metrics,
        select_iteration(metrics, split=split),
        config=config,
    )
    if spec is not None:
        wrong = spec.differences(config)
        if wrong:
            shown = {k: old for k, (old, _) in wrong.items()}
            selection.notes.append(
                f"{run_dir}: its recorded config ({shown}) is not that of {spec.label}"
            )
    if selection.iteration is None:
        selection.unchosen = f"no checkpoint chosen: {undefined_reason(metrics, split)}"
        selection.notes.append(selection.unchosen)
    return selection


def chosen_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint of a run folder that the benchmark would use: the one chosen on
    validation AUC^FG (:func:`select_iteration`), else (no validation AUC^FG, or that
    checkpoint not kept) the latest; an error when the folder has none."""
    run = RunDirectory(run_dir)
    iteration = None
    if run.metrics_path.is_file():
        iteration = select_iteration(read_metrics(run.path))
    if iteration is not None and run.checkpoint_path(iteration).is_file():
        return run.checkpoint_path(iteration)
    latest = run.latest_checkpoint()
    if latest is None:
        raise FileNotFoundError(f"{run.path}: a folder without checkpoints ({run.checkpoint_dir})")
    return latest


def undefined_reason(metrics: pd.DataFrame, split: str = "validate") -> str:
    """Why no evaluation of ``split`` has an AUC^FG, with the counts behind it:
    ``AUC^FG undefined at every validate evaluation (0 atypical / 41 typical positives at
    iteration 3000)``; ``no validate evaluation`` when there is none."""
    rows = metrics[metrics["split"] == split] if "split" in metrics.columns else metrics.iloc[:0]
    if rows.empty:
        return f"no {split} evaluation"
    last = rows.sort_values("iteration").iloc[-1]
    counts = [
        f"{int(last[f'n_{kind}'])} {kind}"
        for kind in ("atypical", "typical")
        if f"n_{kind}" in rows.columns and pd.notna(last[f"n_{kind}"])
    ]
    where = f"at iteration {int(last['iteration'])}"
    detail = f" ({' / '.join(counts)} positives {where})" if counts else f" (last {where})"
    return f"AUC^FG undefined at every {split} evaluation{detail}"


def missing_predictions(selections: list[RunSelection], split: str) -> str:
    """Why a variant has no ``split`` predictions to score: the runs' own reason when none of
    them had a checkpoint chosen (an undefined validation AUC^FG, with its counts), else that
    the predictions are absent."""
    if selections and all(s.iteration is None for s in selections):
        reasons = dict.fromkeys(s.unchosen for s in selections if s.unchosen)
        return "; ".join(reasons) or f"no {split} predictions"
    return f"no {split} predictions"


def select_runs(planned: Sequence[PlannedRun]) -> tuple[list[RunSelection], list[str]]:
    """The benchmark's *select* stage: the record of every finished planned run, its checkpoint
    chosen on validation; notes name the runs left out (unfinished) and each run's own."""
    selections, notes, missing = [], [], []
    for run in planned:
        if not RunDirectory(run.directory).is_done():
            missing.append(run.label)
            continue
        sel = select_run(run.directory, spec=run.spec)
        notes += [f"{run.label}: {n}" for n in sel.notes]
        selections.append(sel)
    if missing:
        notes.insert(
            0,
            f"{len(missing)} of {len(planned)} runs not finished (left out of the tables): "
            + ", ".join(missing),
        )
    return selections, notes


def _setting(config: dict, key: str):
    if key == "image_size":
        return (config.get("preprocessing") or {}).get("size")
    return config.get(key)


def describe_runs(selections: list[RunSelection]) -> str:
    """The training settings of the runs themselves (their recorded configurations), e.g.
    ``model: densenet-tiny, 64 px, 300 iterations (checkpoint every 100), batch 32, lr 0.001``;
    a setting on which the runs differ lists every value and says so."""
    values: dict[str, list] = {}
    for key in ("model", "image_size", "iterations", "checkpoint_every", "batch_size", "lr"):
        found = []
        for sel in selections:
            value = _setting(sel.config, key)
            if value is not None and value not in found:
                found.append(value)
        values[key] = found

    def text(key: str) -> str:
        found = values[key]
        if len(found) == 1:
            return f"{found[0]}"
        return " / ".join(str(v) for v in found) + " (runs differ)"

    parts = []
    if values["model"]:
        parts.append(f"model: {text('model')}")
    if values["image_size"]:
        parts.append(f"{text('image_size')} px")
    if values["iterations"]:
        every = (
            f" (checkpoint every {text('checkpoint_every')})" if values["checkpoint_every"] else ""
        )
        parts.append(f"{text('iterations')} iterations{every}")
    if values["batch_size"]:
        parts.append(f"batch {text('batch_size')}")
    if values["lr"]:
        parts.append(f"lr {text('lr')}")
    return ", ".join(parts) if parts else "no run settings recorded"


__all__ = [
    "METRIC_FIELDS",
    "TRAINING_FIELDS",
    "RunSelection",
    "chosen_checkpoint",
    "describe_runs",
    "find_runs",
    "missing_predictions",
    "read_metrics",
    "read_spec",
    "select_iteration",
    "select_run",
    "undefined_reason",
    "select_runs",
]
