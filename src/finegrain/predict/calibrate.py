"""Fit the reading of a checkpoint from its run's validation predictions and store it in the
checkpoint: the positive probability's recalibration (temperature scaling by default,
:mod:`finegrain.recalibration`) under ``"calibration"`` and the tier thresholds fitted after it
under ``"thresholds"`` (:func:`finegrain.predict.tiers.fit_reading`).

Both live *inside* the checkpoint (see docs/architecture.md), so a checkpoint file is all
``finegrain predict`` and ``export`` need. The checkpoint is rewritten atomically: loaded with
``weights_only=True``, the keys set, saved through :func:`finegrain.io.atomic_open`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from finegrain.errors import FinegrainError, option
from finegrain.evaluate import true_labels
from finegrain.predict.tiers import Reading, Thresholds, fit_reading
from finegrain.recalibration import Recalibration, from_dict
from finegrain.train.checkpoint import load_checkpoint, method_of, save_checkpoint
from finegrain.train.rundir import CONFIG_FILE, RunDirectory, checkpoints_of

log = logging.getLogger(__name__)


def stored_thresholds(checkpoint: str | os.PathLike | dict) -> Thresholds | None:
    """The thresholds stored in a checkpoint (path or loaded dict), or ``None``."""
    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    data = ckpt.get("thresholds")
    return Thresholds.from_dict(data) if data else None


def stored_recalibration(checkpoint: str | os.PathLike | dict) -> Recalibration | None:
    """The probability's recalibration stored in a checkpoint (path or loaded dict), or
    ``None`` (none stored: the model's own probability)."""
    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    data = ckpt.get("calibration")
    return from_dict(data) if data else None


def store_reading(checkpoint_path: str | os.PathLike, reading: Reading) -> None:
    """Rewrite ``checkpoint_path`` atomically with ``"calibration"`` (removed for none) and
    ``"thresholds"`` set."""
    ckpt = load_checkpoint(checkpoint_path)
    ckpt.pop("calibration", None)
    if reading.recalibration is not None:
        ckpt["calibration"] = reading.recalibration.to_dict()
    ckpt["thresholds"] = reading.thresholds.to_dict()
    save_checkpoint(checkpoint_path, ckpt)


#: What a checkpoint records about its run when its training configuration is absent.
_CHECKPOINT_RUN_KEYS: tuple[str, ...] = ("observation", "method", "method_options", "tau")


def _run_differences(ckpt: dict, recorded: dict) -> dict[str, tuple]:
    """``{field: (the predictions' run's value, the checkpoint's)}`` for every setting that
    changes results on which the run that wrote the predictions (``recorded``: its
    ``config.json``) and the checkpoint's run differ (their data's location aside)."""
    from finegrain.train.config import LOCATION_FIELDS, TrainConfig

    ours = {**ckpt.get("config", {})}
    for key in _CHECKPOINT_RUN_KEYS:
        if ckpt.get(key) is not None:
            ours.setdefault(key, ckpt[key])
    try:
        differences = TrainConfig.from_dict(ours).differences(recorded)
    except (TypeError, FinegrainError):  # a partial record: compare what both record
        keys = ("observation", "method", "method_options", "seed")
        differences = {
            k: (recorded[k], ours[k])
            for k in keys
            if k in recorded and k in ours and (recorded[k] or None) != (ours[k] or None)
        }
    return {k: v for k, v in differences.items() if k not in LOCATION_FIELDS}


def _check_provenance(
    ckpt: dict, checkpoint: Path, predictions: Path, iteration: int | None
) -> None:
    """Refuse predictions of another iteration, or of another run than the checkpoint's (any
    setting that changes results: observation, method, its options, seed, ...): their
    thresholds would not fit its model. Predictions outside a run directory cannot be traced:
    a warning says so."""
    from finegrain.train.config import format_differences

    own = ckpt.get("iteration")
    if iteration is not None and own is not None and int(iteration) != int(own):
        raise FinegrainError(
            f"{option('iteration', '--iteration')} {iteration} is not the checkpoint's iteration "
            f"{own} ({checkpoint}); calibrate the checkpoint of that iteration instead"
        )
    found = RunDirectory.of_predictions(predictions)
    if found is None:
        log.warning(
            "%s: not a run's predictions file (no %s beside it): which run and method made "
            "these predictions cannot be checked against %s",
            predictions,
            CONFIG_FILE,
            checkpoint,
        )
        return
    run, _ = found
    differences = _run_differences(ckpt, run.read_config())
    if differences:
        raise FinegrainError(
            f"{predictions}: predictions of another run than {checkpoint}'s ({run.config_path} "
            f"-> the checkpoint: {format_differences(differences)}); give that checkpoint's own "
            "predictions"
        )


def calibrate_checkpoint(
    checkpoint_path: str | os.PathLike,
    *,
    predictions: str | os.PathLike | None = None,
    iteration: int | None = None,
    sensitivity: float = 0.95,
    method: str = "sensitivity",
    calibration: str = "temperature",
    write: bool = True,
) -> Reading:
    """Fit the reading of one checkpoint (the recalibration of ``calibration``, then the
    thresholds) from validation predictions at its iteration.

    ``predictions`` defaults to the validation predictions of the run directory the checkpoint
    belongs to (``RUN/checkpoints/iter-N.pt``); ``iteration`` defaults to
    the checkpoint's own. With ``write`` the reading is stored in the checkpoint.
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
    _check_provenance(ckpt, checkpoint_path, predictions, iteration)
    if iteration is None:
        iteration = ckpt.get("iteration")
    frame = pd.read_csv(predictions, keep_default_na=False, na_values=[""], dtype={"image_id": str})
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
    true = true_labels(predictions)
    if true is not None:  # a label-noise run: fit on the true labels, never the flipped ones
        table, _, source = true
        table = table.set_index("id")
        ids = rows["image_id"].astype(str)
        unknown = ids[~ids.isin(table.index)]
        if len(unknown):
            raise FinegrainError(f"{source}: no true label for image {unknown.iloc[0]!r}")
        labels = table.loc[ids, "label"].to_numpy(dtype=float)
        subs = pd.Series(table.loc[ids, "subcategory"].to_numpy(), dtype=object).fillna("")
        log.info("calibrating on %s", source)
    own_fine = bool(ckpt.get("method")) and method_of(ckpt).own_fine_score and "fine_score" in rows
    try:
        reading = fit_reading(
            labels,
            subs.tolist(),
            rows["score"].to_numpy(dtype=float),
            fine_scores=rows["fine_score"].to_numpy(dtype=float) if own_fine else None,
            calibration=calibration,
            sensitivity=sensitivity,
            method=method,
            iteration=int(iteration),
        )
    except ValueError as exc:
        raise FinegrainError(f"{predictions} (iteration {iteration}): {exc}") from exc
    if reading.changed:
        log.warning(
            "%s: after %s, %d validation reading(s) differ from those of thresholds fitted on "
            "the model's own probabilities (the map ties probabilities the model separates)",
            checkpoint_path,
            calibration,
            reading.changed,
        )
    if write:
        store_reading(checkpoint_path, reading)
        log.info("stored the calibration and thresholds in %s", checkpoint_path)
    return reading


def calibrate(
    target: str | os.PathLike,
    *,
    predictions: str | os.PathLike | None = None,
    iteration: int | None = None,
    sensitivity: float = 0.95,
    method: str = "sensitivity",
    calibration: str = "temperature",
    write: bool = True,
) -> dict[Path, Reading]:
    """Calibrate a checkpoint, or every checkpoint of a run directory; returns path -> reading.

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
            calibration=calibration,
            write=write,
        )
        for p in paths
    }
