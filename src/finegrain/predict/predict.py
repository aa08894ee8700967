"""Apply a trained checkpoint to new radiographs: positive probability and a three-tier reading.

Images (JPEG, PNG 8/16-bit, DICOM) are read with :func:`finegrain.data.imageio.read_grayscale`
at the checkpoint's image size and crop -- exactly the preprocessing of the image cache the model
was trained on -- and cross into the model as uint8 ``[B, 1, S, S]``. An unreadable file becomes
a row with its error; the rest goes on.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from finegrain.predict.tiers import Thresholds, tiers

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import torch

log = logging.getLogger(__name__)

#: File extensions collected from folders (case-insensitive).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".dcm")
#: Columns of the predictions table.
COLUMNS = ("path", "probability", "tier", "error")


def collect_images(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (recursively, sorted) into image paths.

    Files named explicitly are kept whatever their extension (so that a wrong one is reported
    as an error row, not skipped); folders contribute files with :data:`IMAGE_EXTENSIONS`.
    A path that does not exist is kept too and reported as an error row by :func:`predict`.
    """
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
            )
            if not found:
                log.warning("no %s files under %s", "/".join(IMAGE_EXTENSIONS), p)
            out.extend(found)
        else:
            out.append(p)
    return out


def _meta_get(meta: dict, key: str, default: Any = None) -> Any:
    if meta.get(key) is not None:
        return meta[key]
    config = meta.get("config") or {}
    return config.get(key, default) if isinstance(config, dict) else default


@dataclass
class Predictor:
    """A model ready for inference with the preprocessing it was trained with.

    ``model`` takes uint8 ``[B, 1, S, S]`` and returns 2 logits; ``softmax[:, 1]`` is the
    positive probability.
    """

    model: torch.nn.Module
    image_size: int
    crop: str = "none"
    thresholds: Thresholds | None = None
    name: str = ""
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike) -> Predictor:
        """Load a checkpoint once (``weights_only=True``) and rebuild its model."""
        from finegrain.train.checkpoint import load_checkpoint, model_from_checkpoint

        checkpoint = Path(checkpoint)
        model, meta = model_from_checkpoint(load_checkpoint(checkpoint), checkpoint)
        size = _meta_get(meta, "image_size")
        if size is None:
            raise ValueError(f"{checkpoint}: no image_size in the checkpoint")
        crop = _meta_get(meta, "crop") or _cache_crop(meta) or "none"
        data = meta.get("thresholds")
        method = _meta_get(meta, "method", "")
        iteration = meta.get("iteration")
        name = " ".join(
            str(x) for x in (method, f"iter {iteration}" if iteration is not None else "") if x
        )
        return cls(
            model=model.eval(),
            image_size=int(size),
            crop=str(crop),
            thresholds=Thresholds.from_dict(data) if data else None,
            name=name or checkpoint.stem,
            meta=meta,
        )

    def read(self, path: str | os.PathLike) -> np.ndarray:
        """The image as the model sees it: uint8 ``(S, S)``."""
        return _read_image(path, self.image_size, self.crop)

    def logits(self, images: np.ndarray) -> torch.Tensor:
        """Logits ``[B, 2]`` for uint8 images ``(B, S, S)``."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))[:, None]
        with torch.inference_mode():
            return self.model(x).float()

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Positive probabilities ``(B,)`` for uint8 images ``(B, S, S)``."""
        return self.logits(images).softmax(dim=1)[:, 1].numpy().astype(float)


def _cache_crop(meta: dict) -> str | None:
    """The crop recorded in the training cache's ``cache.json``, when reachable."""
    import json

    from finegrain.data.cache import META_FILE

    cache = _meta_get(meta, "cache")
    if not cache:
        return None
    try:
        return json.loads((Path(cache) / META_FILE).read_text()).get("crop")
    except (OSError, ValueError):
        return None


def _read_image(path: str | os.PathLike, size: int, crop: str) -> np.ndarray:
    from finegrain.data.imageio import read_grayscale

    image = np.asarray(read_grayscale(path, size, crop=crop or "none"))
    if image.dtype != np.uint8 or image.shape != (size, size):
        raise ValueError(f"{path}: reader returned {image.dtype} {image.shape}, not uint8 {size}^2")
    return image


def _error_text(exc: BaseException) -> str:
    from finegrain.data.imageio import ImageReadError

    text = str(exc) or type(exc).__name__
    if isinstance(exc, ImageReadError):  # "PATH: what went wrong", the path first
        return text.replace("\n", " ")
    return f"{type(exc).__name__}: {text}".replace("\n", " ")


def predict(
    checkpoint: str | os.PathLike | Predictor,
    paths: Sequence[str | os.PathLike] | str | os.PathLike,
    *,
    batch_size: int = 32,
    thresholds: Thresholds | dict | None = None,
    cam_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Predict the positive probability and tier of each image (files and/or folders).

    Returns a DataFrame with columns ``path, probability, tier, error``, one row per image in
    :func:`collect_images` order; ``error`` is empty for images that were read, and holds the
    reason (with ``probability`` NaN and ``tier`` empty) for those that were not. Thresholds
    come from the checkpoint (``finegrain calibrate``) unless given. With ``cam_dir`` a CAM
    overlay is written per readable image (see :mod:`finegrain.cam`).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
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
        raise ValueError(
            f"checkpoint {where} has no tier thresholds; run `finegrain calibrate {where}` "
            "(fits them on the run's validation predictions) first, or pass thresholds="
        )
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = collect_images(paths)
    if not files:
        raise ValueError(f"no images found in {[str(p) for p in paths]}")
    renderer = None
    if cam_dir is not None:
        from finegrain.cam import CAMRenderer

        renderer = CAMRenderer([predictor], cam_dir)

    probs = np.full(len(files), math.nan)
    errors = [""] * len(files)
    bar = tqdm(total=len(files), unit="image", desc="predict", disable=not progress)
    for start in range(0, len(files), batch_size):
        chunk = range(start, min(start + batch_size, len(files)))
        images, rows = [], []
        for i in chunk:
            try:
                images.append(predictor.read(files[i]))
                rows.append(i)
            except Exception as exc:  # noqa: BLE001 - any reader failure becomes an error row
                errors[i] = _error_text(exc)
        if images:
            batch = np.stack(images)
            if renderer is None:
                probs[rows] = predictor.probabilities(batch)
            else:
                probs[rows] = renderer.render_batch([files[i] for i in rows], batch)[0]
        bar.update(len(chunk))
    bar.close()
    n_bad = sum(bool(e) for e in errors)
    if n_bad:
        log.warning("%d of %d image(s) could not be read (see the error column)", n_bad, len(files))
    frame = pd.DataFrame(
        {
            "path": [str(f) for f in files],
            "probability": probs,
            "tier": [t or "" for t in tiers(probs, predictor.thresholds)],
            "error": errors,
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
        raise ValueError(f"output {out} must end in .csv or .json")
