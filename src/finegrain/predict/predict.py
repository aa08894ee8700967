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

from finegrain.errors import FinegrainError
from finegrain.predict.cam import CAMRenderer
from finegrain.predict.images import IMAGE_EXTENSIONS, collect_images, read_batches
from finegrain.predict.predictor import Predictor
from finegrain.predict.tiers import Thresholds, tiers

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)

#: Columns of the predictions table: per image, then what the probability is of (the
#: checkpoint's observation, method, iteration and file), so a table read later says it.
COLUMNS = (
    "path",
    "probability",
    "fine_score",
    "tier",
    "error",
    "observation",
    "method",
    "iteration",
    "checkpoint",
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

    Returns a DataFrame with columns ``path, probability, fine_score, tier, error`` one row per
    image in
    :func:`collect_images` order, then ``observation, method, iteration, checkpoint`` (the same
    on every row: what the probability is of); ``error`` is empty for images that were read, and
    holds the reason (with ``probability`` NaN and ``tier`` empty) for those that were not. Thresholds
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
    if predictor.thresholds is None:
        where = (
            predictor.meta.get("path", predictor.name) if predictor is checkpoint else checkpoint
        )
        raise FinegrainError(
            f"checkpoint {where} has no tier thresholds; run `finegrain calibrate {where}` "
            "(fits them on the run's validation predictions) first, or pass thresholds="
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
    bar = tqdm(total=len(files), unit="image", desc="predict", disable=not progress)
    for batch in read_batches(files, predictor.read, batch_size):
        for i, text in batch.errors.items():
            errors[i] = text
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
    frame = pd.DataFrame(
        {
            "path": [str(f) for f in files],
            "probability": probs,
            "fine_score": fine,
            "tier": [t or "" for t in tiers(probs, predictor.thresholds, fine)],
            "error": errors,
            "observation": predictor.meta.get("observation", ""),
            "method": predictor.method.name,
            "iteration": predictor.meta.get("iteration"),
            "checkpoint": predictor.meta.get("path", ""),
        },
        columns=list(COLUMNS),
    )
    return frame


def write_predictions(frame: pd.DataFrame, out: str | os.PathLike) -> None:
    """Write a predictions table as CSV or JSON (a list of records), by extension; atomic."""
    from finegrain.io import atomic_write_csv, atomic_write_json

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".csv":
        atomic_write_csv(out, frame)
    elif suffix == ".json":
        records = [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in frame.to_dict(orient="records")
        ]
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
