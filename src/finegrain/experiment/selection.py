"""Best-checkpoint selection: the paper's protocol picks, for each run, the checkpoint with the
highest validation AUC^FG (ties go to the earliest iteration).

The test split is never used to choose: its scores are read at the iteration chosen on
validation.

>>> import pandas as pd
>>> m = pd.DataFrame({"iteration": [100, 200, 300], "split": ["validate"] * 3,
...                   "auc_fg": [0.61, 0.70, 0.70]})
>>> select_iteration(m)
200
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from finegrain.evaluate import SCORE_KEYS
from finegrain.experiment.grid import RunSpec, method_tau
from finegrain.train.rundir import RunDirectory, find_runs

#: The metric fields of each evaluation line of a run (the training loop's contract).
METRIC_FIELDS: tuple[str, ...] = SCORE_KEYS


def select_iteration(
    metrics: pd.DataFrame, *, split: str = "validate", metric: str = "auc_fg"
) -> int | None:
    """The iteration with the highest ``metric`` on ``split``; ties -> earliest iteration.

    Evaluations whose metric is missing (``null``: a class was empty) cannot be chosen. Returns
    ``None`` when no evaluation of ``split`` has a value.
    """
    for column in ("iteration", "split", metric):
        if column not in metrics.columns:
            raise ValueError(f"metrics table has no {column!r} column")
    rows = metrics[(metrics["split"] == split) & metrics[metric].notna()]
    if rows.empty:
        return None
    values = rows[metric].astype(float)
    best = values.max()
    return int(rows.loc[values == best, "iteration"].astype(int).min())


def read_metrics(run_dir: str | Path) -> pd.DataFrame:
    """The evaluations of a run as a table, one row per (iteration, split); a checkpoint
    evaluated twice (a resumed run re-evaluating its last checkpoint) keeps its latest line."""
    return RunDirectory(run_dir).read_metrics(METRIC_FIELDS)


def read_spec(run_dir: str | Path, config: dict | None = None) -> RunSpec:
    """The run's identity (observation, method, τ, seed) from its recorded configuration."""
    run = RunDirectory(run_dir)
    if config is None:
        config = run.read_config()
    for key in ("observation", "method", "seed"):
        if key not in config:
            raise ValueError(f"{run.config_path}: missing field {key!r}")
    method = str(config["method"])
    return RunSpec(
        observation=str(config["observation"]),
        method=method,
        tau=method_tau(method, float(config.get("tau", 0.3))),
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

    @property
    def run(self) -> RunDirectory:
        return RunDirectory(self.directory)

    def row(self, split: str) -> dict | None:
        """The metrics of ``split`` at the chosen iteration (``None`` if not evaluated)."""
        if self.iteration is None:
            return None
        rows = self.metrics[
            (self.metrics["split"] == split) & (self.metrics["iteration"] == self.iteration)
        ]
        return None if rows.empty else rows.iloc[-1].to_dict()


def select_run(run_dir: str | Path, *, split: str = "validate") -> RunSelection:
    """Read a finished run directory and choose its checkpoint by ``split`` AUC^FG."""
    run_dir = Path(run_dir)
    config = RunDirectory(run_dir).read_config()
    metrics = read_metrics(run_dir)
    selection = RunSelection(
        read_spec(run_dir, config),
        run_dir,
        metrics,
        select_iteration(metrics, split=split),
        config=config,
    )
    if selection.iteration is None:
        selection.notes.append(f"no {split} evaluation with a defined AUC^FG; no checkpoint chosen")
    return selection


__all__ = [
    "METRIC_FIELDS",
    "RunSelection",
    "find_runs",
    "read_metrics",
    "read_spec",
    "select_iteration",
    "select_run",
]
