"""Apply a trained checkpoint to new radiographs: positive probability and a three-tier reading.

Images (JPEG, PNG 8/16-bit, DICOM) are read with the checkpoint's own preprocessing (image size,
crop: exactly how the training cache was made, recorded in the checkpoint) and cross into the
model as uint8 ``[B, 1, S, S]``. An unreadable file becomes a row with its error; the rest goes
on.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from finegrain.data.imageio import image_dimensions
from finegrain.errors import FinegrainError, option
from finegrain.predict.cam import CAMRenderer
from finegrain.predict.images import IMAGE_EXTENSIONS, collect_images, degenerate, read_batches
from finegrain.predict.predictor import Predictor
from finegrain.predict.tiers import Thresholds, reading_of, tiers

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)

#: Columns of the predictions table: per image, then what the probability is of (the
#: checkpoint's observation, method, iteration and file, and the recalibration applied to it),
#: so a table read later says it.
COLUMNS = (
    "path",
    "probability",
    "fine_score",
    "tier",
    "error",
    "warning",
    "observation",
    "method",
    "iteration",
    "checkpoint",
    "calibration",
)


def predict(
    checkpoint: str | os.PathLike | Predictor,
    paths: Sequence[str | os.PathLike] | str | os.PathLike,
    *,
    batch_size: int = 32,
    thresholds: Thresholds | dict | None = None,
    cam_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Predict the positive probability, the fine score and the tier of each image (files
    and/or folders).

    Returns a DataFrame with columns ``path, probability, fine_score, tier, error, warning`` one
    row per image in :func:`collect_images` order, then ``observation, method, iteration,
    checkpoint, calibration`` (the same on every row: what the probability is of, and the
    recalibration stored in the checkpoint that made it: ``temperature T = 1.83``, or ``none``
    for the model's own probability); ``error`` is empty for
    images that were read, and holds the reason (with ``probability`` NaN and ``tier`` empty) for
    those that were not; ``warning`` says what makes a read image a poor radiograph (tiny, an
    extreme aspect ratio, constant: :func:`~finegrain.predict.images.degenerate`), else it is
    empty. Thresholds
    come from the checkpoint (``finegrain calibrate``) unless given. With ``cam_dir`` a CAM
    overlay is written per readable image (see :mod:`finegrain.predict.cam`).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise FinegrainError(f"batch_size must be >= 1, got {batch_size}")
    predictor = (
        checkpoint if isinstance(checkpoint, Predictor) else Predictor.from_checkpoint(checkpoint)
    )
    if thresholds is not None:
        predictor.thresholds = (
            thresholds if isinstance(thresholds, Thresholds) else Thresholds.from_dict(thresholds)
        )
        reading_of(predictor.recalibration, predictor.thresholds)
    if predictor.thresholds is None:
        where = (
            predictor.meta.get("path", predictor.name) if predictor is checkpoint else checkpoint
        )
        given = option("thresholds=", None)
        raise FinegrainError(
            f"checkpoint {where} has no tier thresholds; run `finegrain calibrate {where}` "
            "(fits them on the run's validation predictions) first"
            + (f", or pass {given}" if given else "")
        )
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = collect_images(paths)
    if not files:
        raise FinegrainError(f"no images found in {[str(p) for p in paths]}")
    renderer = None
    if cam_dir is not None:
        renderer = CAMRenderer([predictor], cam_dir, inputs=files)

    probs = np.full(len(files), math.nan)
    fine = np.full(len(files), math.nan)
    errors = [""] * len(files)
    warnings = [""] * len(files)
    bar = tqdm(total=len(files), unit="image", desc="predict", disable=not progress)
    for batch in read_batches(files, predictor.read, batch_size):
        for i, text in batch.errors.items():
            errors[i] = text
        for k, i in enumerate(batch.positions):
            found = degenerate(image_dimensions(files[i]), batch.images[k], predictor.image_size)
            warnings[i] = "; ".join(found)
        if batch.images is not None:
            if renderer is None:
                scores = predictor.scores(batch.images)
            else:
                scores = renderer.render_batch(batch.paths, batch.images)[0]
            probs[batch.positions], fine[batch.positions] = scores["score"], scores["fine_score"]
        bar.update(batch.size)
    bar.close()
    n_bad = sum(bool(e) for e in errors)
    if n_bad:
        log.warning("%d of %d image(s) could not be read (see the error column)", n_bad, len(files))
    warned = [(f, w) for f, w in zip(files, warnings, strict=True) if w]
    if warned:
        log.warning(
            "%d of %d image(s) are poor radiographs, their probabilities doubtful (see the "
            "warning column); e.g. %s: %s",
            len(warned),
            len(files),
            *warned[0],
        )
    frame = pd.DataFrame(
        {
            "path": [str(f) for f in files],
            "probability": probs,
            "fine_score": fine,
            "tier": [t or "" for t in tiers(probs, predictor.thresholds, fine)],
            "error": errors,
            "warning": warnings,
            "observation": predictor.meta.get("observation", ""),
            "method": predictor.method.name,
            "iteration": predictor.meta.get("iteration"),
            "checkpoint": predictor.meta.get("path", ""),
            "calibration": predictor.calibration,
        },
        columns=list(COLUMNS),
    )
    return frame


def _json_value(value):
    """A cell as JSON: ``null`` for a missing one (NaN, an empty error, tier or warning)."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def write_predictions(frame: pd.DataFrame, out: str | os.PathLike) -> None:
    """Write a predictions table as CSV or JSON (a list of records, ``null`` for a missing
    value: a probability, tier or error, a warning), by extension; atomic."""
    from finegrain.io import atomic_write_csv, atomic_write_json

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".csv":
        atomic_write_csv(out, frame)
    elif suffix == ".json":
        records = [{k: _json_value(v) for k, v in r.items()} for r in frame.to_dict("records")]
        atomic_write_json(out, records)
    else:
        raise FinegrainError(f"output {out} must end in .csv or .json")


__all__ = [
    "COLUMNS",
    "IMAGE_EXTENSIONS",
    "Predictor",
    "collect_images",
    "predict",
    "write_predictions",
]
