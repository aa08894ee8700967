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

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from finegrain.evaluate import SCORE_KEYS
from finegrain.experiment.grid import RunSpec, method_tau
from finegrain.io import read_jsonl

#: The metric fields of each metrics.jsonl line (the training loop's contract).
METRIC_FIELDS: tuple[str, ...] = SCORE_KEYS

#: Marker file a finished run directory carries (written last by the train loop).
DONE_MARKER = "done"


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
    """``metrics.jsonl`` of a run as a table, one row per (iteration, split).

    A checkpoint evaluated twice (a resumed run re-evaluating its last checkpoint) keeps its
    latest line.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics.jsonl in run directory")
    records = read_jsonl(path)
    for line_no, rec in enumerate(records, start=1):
        for key in ("iteration", "split"):
            if key not in rec:
                raise ValueError(f"{path}: line {line_no} has no {key!r} field")
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(columns=["iteration", "split", *METRIC_FIELDS])
    for column in METRIC_FIELDS:
        if column not in frame.columns:
            frame[column] = math.nan
    frame["iteration"] = frame["iteration"].astype(int)
    frame = frame.drop_duplicates(["iteration", "split"], keep="last")
    return frame.sort_values(["split", "iteration"], kind="stable").reset_index(drop=True)


def read_spec(run_dir: str | Path) -> RunSpec:
    """The run's identity (observation, method, τ, seed) from its ``config.json``."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no config.json in run directory")
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in ("observation", "method", "seed"):
        if key not in config:
            raise ValueError(f"{path}: missing field {key!r}")
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
    metrics = read_metrics(run_dir)
    selection = RunSelection(
        read_spec(run_dir), run_dir, metrics, select_iteration(metrics, split=split)
    )
    if selection.iteration is None:
        selection.notes.append(f"no {split} evaluation with a defined AUC^FG; no checkpoint chosen")
    return selection


def find_runs(runs_root: str | Path) -> tuple[list[Path], list[Path]]:
    """Run directories under ``runs_root``: (finished ones with a ``done`` marker, unfinished)."""
    runs_root = Path(runs_root)
    finished, unfinished = [], []
    if not runs_root.is_dir():
        return finished, unfinished
    for config in sorted(runs_root.glob("*/*/seed*/config.json")):
        run_dir = config.parent
        (finished if (run_dir / DONE_MARKER).exists() else unfinished).append(run_dir)
    return finished, unfinished
