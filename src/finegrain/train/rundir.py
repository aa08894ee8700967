"""The run directory: one observation x method x seed, self-describing, and its one owner.

Every file name of a run directory is spelled here and nowhere else; the training loop, the
benchmark, selection, aggregation, calibration and prediction all go through
:class:`RunDirectory`::

    RUN/
      config.json               TrainConfig + versions, world size, data summary, preprocessing
      metrics.jsonl             one line per evaluation (iteration, split, scores, train loss)
      predictions-<split>.csv   image_id, iteration, label, subcategory, score, fine_score
      checkpoints/iter-0010000.pt
      train.lock                held (flock) by the process training the run
      done                      written last: the run is complete

Writes are atomic (``finegrain.io``); ``metrics.jsonl`` is appended line by line and fsynced.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finegrain.errors import FinegrainError
from finegrain.io import (
    append_jsonl,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
    read_jsonl,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import torch

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
DONE_FILE = "done"
LOCK_FILE = "train.lock"
CHECKPOINT_DIR = "checkpoints"
PREDICTIONS_PATTERN = "predictions-{split}.csv"
#: Columns of ``predictions-<split>.csv``, in order.
PREDICTION_COLUMNS: tuple[str, ...] = (
    "image_id",
    "iteration",
    "label",
    "subcategory",
    "score",
    "fine_score",
)
#: Columns a run written before the method owned its scores may lack, and what they equal there.
_OPTIONAL_PREDICTIONS: dict[str, str] = {"fine_score": "score"}
#: Where run directories sit under a benchmark's ``runs/`` folder (``grid.RunSpec.directory``:
#: ``<settings hash>/<observation>/<variant>/seed<k>``).
GRID_LAYOUT = "*/*/*/seed*"
_CHECKPOINT_NAME = re.compile(r"^iter-(\d+)\.pt$")
_PREDICTIONS_NAME = re.compile(
    "^" + re.escape(PREDICTIONS_PATTERN).replace(re.escape("{split}"), r"(\w+)") + "$"
)
#: The splits whose recorded labels a run's ``label_noise`` flips (its predictions of these
#: splits carry the flipped labels; the test split keeps the labeler's).
LABEL_NOISE_SPLITS: tuple[str, ...] = ("train", "validate")


class RunLockedError(FinegrainError):
    """Another process is training this run directory (a ``ValueError``: the command line
    reports it in one line, like other unusable arguments)."""


class RunDirectory:
    """Paths and operations of one run directory (it need not exist yet)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock_handle: Any = None

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # -- paths ------------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def done_path(self) -> Path:
        return self.path / DONE_FILE

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    def predictions_path(self, split: str) -> Path:
        """``RUN/predictions-<split>.csv``."""
        return self.path / PREDICTIONS_PATTERN.format(split=split)

    def checkpoint_path(self, iteration: int) -> Path:
        """``RUN/checkpoints/iter-0010000.pt``."""
        return self.checkpoint_dir / f"iter-{int(iteration):07d}.pt"

    @classmethod
    def of_predictions(cls, path: str | os.PathLike) -> tuple[RunDirectory, str] | None:
        """The run directory and split of a run's predictions file (``RUN/predictions-<split>.csv``
        beside ``RUN/config.json``); ``None`` for any other file."""
        path = Path(path)
        match = _PREDICTIONS_NAME.match(path.name)
        run = cls(path.parent)
        if match is None or not run.has_config():
            return None
        return run, match.group(1)

    def label_noise(self, split: str) -> float:
        """The share of labels the run's ``label_noise`` flipped in its recorded labels of
        ``split`` (``predictions-<split>.csv``): 0 when it has none or the split keeps its
        labels (:data:`LABEL_NOISE_SPLITS`)."""
        if split not in LABEL_NOISE_SPLITS:
            return 0.0
        return float(self.read_config().get("label_noise") or 0.0)

    @classmethod
    def of_checkpoint(cls, checkpoint: str | os.PathLike) -> RunDirectory:
        """The run directory a checkpoint file belongs to (``RUN/checkpoints/iter-N.pt``)."""
        return cls(Path(checkpoint).parent.parent)

    # -- config.json ------------------------------------------------------------------------

    def has_config(self) -> bool:
        return self.config_path.is_file()

    def write_config(self, record: dict[str, Any]) -> None:
        atomic_write_json(self.config_path, record)

    def read_config(self) -> dict[str, Any]:
        """``config.json`` as a dict; errors name the file."""
        path = self.config_path
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no {CONFIG_FILE} in run directory")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise FinegrainError(f"{path}: not valid JSON ({exc})") from exc

    # -- metrics.jsonl ----------------------------------------------------------------------

    def append_metrics(self, record: dict[str, Any]) -> None:
        append_jsonl(self.metrics_path, record)

    def metrics_records(self) -> list[dict[str, Any]]:
        """The lines of ``metrics.jsonl`` (empty when absent)."""
        return read_jsonl(self.metrics_path) if self.metrics_path.is_file() else []

    def read_metrics(self, fields: Iterable[str] = ()) -> pd.DataFrame:
        """``metrics.jsonl`` as a table, one row per (iteration, split), sorted.

        A checkpoint evaluated twice (a resumed run re-evaluating its last checkpoint) keeps its
        latest line; ``fields`` missing from every line become NaN columns.
        """
        import pandas as pd

        path = self.metrics_path
        fields = list(fields)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no {METRICS_FILE} in run directory")
        records = read_jsonl(path)
        for line_no, rec in enumerate(records, start=1):
            for key in ("iteration", "split"):
                if key not in rec:
                    raise FinegrainError(f"{path}: line {line_no} has no {key!r} field")
        frame = pd.DataFrame.from_records(records)
        if frame.empty:
            return pd.DataFrame(columns=["iteration", "split", *fields])
        for column in fields:
            if column not in frame.columns:
                frame[column] = math.nan
        frame["iteration"] = frame["iteration"].astype(int)
        frame = frame.drop_duplicates(["iteration", "split"], keep="last")
        return frame.sort_values(["split", "iteration"], kind="stable").reset_index(drop=True)

    # -- predictions-<split>.csv ------------------------------------------------------------

    def has_predictions(self, split: str) -> bool:
        return self.predictions_path(split).is_file()

    def append_predictions(self, split: str, frame: pd.DataFrame) -> None:
        """Add one checkpoint's predictions of ``split`` (rewritten atomically)."""
        import pandas as pd

        path = self.predictions_path(split)
        if path.exists():
            frame = pd.concat(
                [pd.read_csv(path, dtype={"image_id": str}), frame], ignore_index=True
            )
        atomic_write_csv(path, frame)

    def read_predictions(self, split: str, iteration: int | None = None) -> pd.DataFrame | None:
        """``predictions-<split>.csv`` (rows of ``iteration`` only, when given), or ``None``
        when the file is absent; a missing column is an error naming the file."""
        import pandas as pd

        path = self.predictions_path(split)
        if not path.is_file():
            return None
        frame = pd.read_csv(path, dtype={"image_id": str, "subcategory": str})
        for column, same_as in _OPTIONAL_PREDICTIONS.items():
            if column not in frame.columns and same_as in frame.columns:
                frame[column] = frame[same_as]
        for column in PREDICTION_COLUMNS:
            if column not in frame.columns:
                raise FinegrainError(f"{path}: missing column {column!r}")
        if iteration is not None:
            frame = frame[frame["iteration"] == int(iteration)]
        return frame

    # -- resume bookkeeping -----------------------------------------------------------------

    def truncate_after(self, iteration: int, splits: Iterable[str]) -> None:
        """Drop metrics and prediction rows after ``iteration`` (written before a kill)."""
        import pandas as pd

        if self.metrics_path.exists():
            kept = [r for r in read_jsonl(self.metrics_path) if r["iteration"] <= iteration]
            atomic_write_text(
                self.metrics_path,
                "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in kept),
            )
        for split in splits:
            path = self.predictions_path(split)
            if path.exists():
                frame = pd.read_csv(path, dtype={"image_id": str})
                atomic_write_csv(path, frame[frame["iteration"] <= iteration])

    def clear_outputs(self, splits: Iterable[str]) -> None:
        """Remove metrics and predictions (left by a run killed before its first checkpoint)."""
        for stale in [self.metrics_path] + [self.predictions_path(s) for s in splits]:
            stale.unlink(missing_ok=True)

    # -- checkpoints ------------------------------------------------------------------------

    def checkpoints(self) -> list[tuple[int, Path]]:
        """``(iteration, path)`` of every checkpoint, oldest first."""
        found = []
        if self.checkpoint_dir.is_dir():
            for path in self.checkpoint_dir.iterdir():
                match = _CHECKPOINT_NAME.match(path.name)
                if match:
                    found.append((int(match.group(1)), path))
        return sorted(found)

    def latest_checkpoint(self) -> Path | None:
        """The checkpoint with the highest iteration, or ``None``."""
        found = self.checkpoints()
        return found[-1][1] if found else None

    def save_checkpoint(self, iteration: int, payload: dict[str, Any]) -> Path:
        """Write checkpoint ``iteration`` atomically; returns its path."""
        from finegrain.train.checkpoint import save_checkpoint

        path = self.checkpoint_path(iteration)
        save_checkpoint(path, payload)
        return path

    def load_checkpoint(
        self, iteration: int | None = None, map_location: str | torch.device = "cpu"
    ) -> dict[str, Any]:
        """Checkpoint ``iteration`` (default: the latest), loaded with ``weights_only=True``."""
        from finegrain.train.checkpoint import load_checkpoint

        if iteration is None:
            path = self.latest_checkpoint()
            if path is None:
                raise FileNotFoundError(f"no checkpoint in {self.checkpoint_dir}")
        else:
            path = self.checkpoint_path(iteration)
        return load_checkpoint(path, map_location=map_location)

    # -- done marker ------------------------------------------------------------------------

    def is_done(self) -> bool:
        return self.done_path.exists()

    def mark_done(self, iterations: int) -> None:
        """Write the ``done`` marker (last, after every checkpoint and output)."""
        atomic_write_text(self.done_path, f"{iterations}\n")

    # -- lock -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[RunDirectory]:
        """Hold an exclusive ``flock`` on ``RUN/train.lock`` while training.

        A second process raises :class:`RunLockedError` naming the directory. The OS releases
        the lock when the holder exits or is killed, so a stale lock file is harmless.
        """
        from finegrain.io import held_lock

        def busy(holder: str) -> RunLockedError:
            return RunLockedError(
                f"{self.path} is being trained by another process (it holds {self.lock_path});"
                " wait for it to finish or stop it, or choose another --out"
            )

        with held_lock(self.lock_path, busy):
            yield self


def resolve_checkpoint(checkpoint_or_run: str | os.PathLike) -> Path:
    """A checkpoint file itself, or the latest checkpoint of a run directory."""
    path = Path(checkpoint_or_run)
    if path.is_dir():
        found = RunDirectory(path).latest_checkpoint()
        if found is None:
            raise FileNotFoundError(f"no checkpoint in {path / CHECKPOINT_DIR}")
        return found
    return path


def checkpoints_of(target: str | os.PathLike) -> list[Path]:
    """A checkpoint file itself, or every checkpoint of a run directory (oldest first)."""
    target = Path(target)
    if target.is_file():
        return [target]
    if target.is_dir():
        found = [path for _, path in RunDirectory(target).checkpoints()]
        if not found:
            raise FileNotFoundError(f"no checkpoints in run directory {target}")
        return found
    raise FileNotFoundError(f"neither a checkpoint nor a run directory: {target}")


def find_runs(runs_root: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """Run directories under a benchmark's ``runs_root``: (finished ones, unfinished ones)."""
    runs_root = Path(runs_root)
    finished: list[Path] = []
    unfinished: list[Path] = []
    if not runs_root.is_dir():
        return finished, unfinished
    for config in sorted(runs_root.glob(f"{GRID_LAYOUT}/{CONFIG_FILE}")):
        run = RunDirectory(config.parent)
        (finished if run.is_done() else unfinished).append(run.path)
    return finished, unfinished


def load_model(
    checkpoint_or_run: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[Any, dict[str, Any]]:
    """Rebuild the model of a checkpoint (or of a run directory's latest checkpoint).

    Returns ``(model in eval mode, meta)``; see
    :func:`finegrain.train.checkpoint.model_from_checkpoint`.
    """
    from finegrain.train.checkpoint import load_checkpoint, model_from_checkpoint

    path = resolve_checkpoint(checkpoint_or_run)
    payload = load_checkpoint(path, map_location=map_location)
    return model_from_checkpoint(payload, path, map_location=map_location)
