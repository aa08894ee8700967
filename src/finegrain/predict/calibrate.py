"""Fit tier thresholds from a run's validation predictions and store them in the checkpoint.

The thresholds live *inside* the checkpoint under ``"thresholds"`` (see docs/architecture.md),
so a checkpoint file is all ``finegrain predict`` needs. The checkpoint is rewritten atomically:
loaded with ``weights_only=True``, the key added, saved through :func:`finegrain.io.atomic_open`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from finegrain.errors import FinegrainError
from finegrain.predict.tiers import Thresholds, fit_thresholds
from finegrain.train.checkpoint import load_checkpoint, save_checkpoint
from finegrain.train.rundir import CONFIG_FILE, RunDirectory, checkpoints_of

log = logging.getLogger(__name__)


def stored_thresholds(checkpoint: str | os.PathLike | dict) -> Thresholds | None:
    """The thresholds stored in a checkpoint (path or loaded dict), or ``None``."""
    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    data = ckpt.get("thresholds")
    return Thresholds.from_dict(data) if data else None


def store_thresholds(checkpoint_path: str | os.PathLike, thresholds: Thresholds) -> None:
    """Rewrite ``checkpoint_path`` atomically with ``"thresholds"`` added (or replaced)."""
    ckpt = load_checkpoint(checkpoint_path)
    ckpt["thresholds"] = thresholds.to_dict()
    save_checkpoint(checkpoint_path, ckpt)


def _check_same_model(
    ckpt: dict, checkpoint: Path, predictions: Path, iteration: int | None
) -> None:
    """Refuse predictions of another iteration, or (when they sit in a run directory) of
    another observation than the checkpoint's: their thresholds would not fit its model."""
    own = ckpt.get("iteration")
    if iteration is not None and own is not None and int(iteration) != int(own):
        raise FinegrainError(
            f"--iteration {iteration} is not the checkpoint's iteration {own} ({checkpoint}); "
            "calibrate the checkpoint of that iteration instead"
        )
    config = predictions.parent / CONFIG_FILE
    observation = ckpt.get("observation")
    if observation and config.is_file():
        try:
            theirs = json.loads(config.read_text(encoding="utf-8")).get("observation")
        except (ValueError, AttributeError):
            return
        if theirs and theirs != observation:
            raise FinegrainError(
                f"{predictions}: predictions of {theirs} (per {config}), but {checkpoint} "
                f"predicts {observation}; give that checkpoint's own predictions"
            )


def calibrate_checkpoint(
    checkpoint_path: str | os.PathLike,
    *,
    predictions: str | os.PathLike | None = None,
    iteration: int | None = None,
    sensitivity: float = 0.95,
    method: str = "sensitivity",
    write: bool = True,
) -> Thresholds:
    """Fit thresholds for one checkpoint from validation predictions at its iteration.

    ``predictions`` defaults to the validation predictions of the run directory the checkpoint
    belongs to (``RUN/checkpoints/iter-N.pt``); ``iteration`` defaults to
    the checkpoint's own. With ``write`` the thresholds are stored in the checkpoint.
    """
    import pandas as pd

    checkpoint_path = Path(checkpoint_path)
    ckpt = load_checkpoint(checkpoint_path)
    if predictions is None:
        predictions = RunDirectory.of_checkpoint(checkpoint_path).predictions_path("validate")
    predictions = Path(predictions)
    if not predictions.is_file():
        raise FileNotFoundError(
            f"validation predictions not found: {predictions} (pass --predictions, or evaluate "
            "the run on the validate split first)"
        )
    _check_same_model(ckpt, checkpoint_path, predictions, iteration)
    if iteration is None:
        iteration = ckpt.get("iteration")
    frame = pd.read_csv(predictions, keep_default_na=False, na_values=[""])
    missing = [c for c in ("iteration", "label", "subcategory", "score") if c not in frame.columns]
    if missing:
        raise FinegrainError(f"{predictions}: missing column(s) {missing}")
    if iteration is not None:
        rows = frame[frame["iteration"] == int(iteration)]
        if rows.empty:
            have = sorted(frame["iteration"].unique().tolist())
            raise FinegrainError(
                f"{predictions}: no rows for iteration {iteration} (iterations present: {have})"
            )
    else:
        if frame["iteration"].nunique() > 1:
            raise FinegrainError(
                f"{predictions}: several iterations and the checkpoint names none; pass --iteration"
            )
        rows = frame
        iteration = int(frame["iteration"].iloc[0])
    labels = pd.to_numeric(rows["label"], errors="coerce").to_numpy(dtype=float)
    subs = rows["subcategory"].astype(object).where(rows["subcategory"].notna(), "")
    try:
        thresholds = fit_thresholds(
            labels,
            subs.tolist(),
            rows["score"].to_numpy(dtype=float),
            sensitivity=sensitivity,
            method=method,
            iteration=int(iteration),
            fine_scores=rows["fine_score"].to_numpy(dtype=float) if "fine_score" in rows else None,
        )
    except ValueError as exc:
        raise FinegrainError(f"{predictions} (iteration {iteration}): {exc}") from exc
    if write:
        store_thresholds(checkpoint_path, thresholds)
        log.info("stored thresholds in %s", checkpoint_path)
    return thresholds


def calibrate(
    target: str | os.PathLike,
    *,
    predictions: str | os.PathLike | None = None,
    iteration: int | None = None,
    sensitivity: float = 0.95,
    method: str = "sensitivity",
    write: bool = True,
) -> dict[Path, Thresholds]:
    """Calibrate a checkpoint, or every checkpoint of a run directory; returns path -> thresholds.

    ``iteration`` may only be given with a single checkpoint.
    """
    paths = checkpoints_of(target)
    if iteration is not None and len(paths) > 1:
        raise FinegrainError(f"--iteration needs a single checkpoint; {target} has {len(paths)}")
    return {
        p: calibrate_checkpoint(
            p,
            predictions=predictions,
            iteration=iteration,
            sensitivity=sensitivity,
            method=method,
            write=write,
        )
        for p in paths
    }
