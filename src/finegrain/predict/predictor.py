"""A trained checkpoint ready for inference, with the preprocessing it was trained with.

The preprocessing (image size, crop, normalisation) is read from the checkpoint itself, where
training stored it (:class:`finegrain.data.cache.Preprocessing`): nothing is looked up on disk,
so a prediction does not depend on where it runs. A checkpoint without it (written by an older
finegrain) is refused, never guessed. So is the probability's recalibration, stored beside the
tier thresholds by ``finegrain calibrate``: every probability a predictor gives (``predict``,
``cam``, the exported graph) is the recalibrated one (:func:`calibrated_scores`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from finegrain.data.cache import Preprocessing
from finegrain.errors import FinegrainError
from finegrain.predict.tiers import Thresholds, reading_of
from finegrain.recalibration import Recalibration, describe, from_dict

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from finegrain.train.methods import Method


def calibrated_scores(
    method: Method, logits: torch.Tensor, recalibration: Recalibration | None
) -> dict[str, torch.Tensor]:
    """``method``'s scores of ``logits`` (:meth:`~finegrain.train.methods.Method.scores`) with
    the positive probability recalibrated; a fine score that is the positive probability (the
    paper's methods) is the recalibrated probability too, a method's own is left as it is."""
    scores = method.scores(logits)
    if recalibration is None:
        return scores
    probability = recalibration.apply_tensor(scores["score"])
    fine = scores["fine_score"] if method.own_fine_score else probability
    return {"score": probability, "fine_score": fine}


@dataclass
class Predictor:
    """A model (uint8 ``[B, 1, S, S]`` -> logits), the method it was trained with (which turns
    the logits into the positive probability and the fine score) and its preprocessing."""

    model: torch.nn.Module
    method: Method
    preprocessing: Preprocessing
    thresholds: Thresholds | None = None
    name: str = ""
    meta: dict = field(default_factory=dict)
    #: the positive probability's recalibration (``None``: the model's own probability)
    recalibration: Recalibration | None = None

    @property
    def calibration(self) -> str:
        """The recalibration in one line (``temperature T = 1.83``, ``none``)."""
        return describe(self.recalibration)

    @property
    def image_size(self) -> int:
        return self.preprocessing.size

    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike) -> Predictor:
        """Load a checkpoint once (``weights_only=True``) and rebuild its model. A run folder
        gives its checkpoint chosen on validation AUC^FG, else its latest
        (:func:`~finegrain.experiment.selection.chosen_checkpoint`)."""
        from finegrain.train.checkpoint import load_checkpoint, method_of, model_from_checkpoint

        checkpoint = Path(checkpoint)
        if checkpoint.is_dir():
            from finegrain.experiment.selection import chosen_checkpoint

            run, checkpoint = checkpoint, chosen_checkpoint(checkpoint)
            log.info("%s: a run folder; its checkpoint %s", run, checkpoint.name)
        payload = load_checkpoint(checkpoint)
        model, meta = model_from_checkpoint(payload, checkpoint)
        method = method_of(payload)
        spec = meta.get("preprocessing")
        if not spec:
            raise FinegrainError(
                f"{checkpoint}: the checkpoint does not record its preprocessing (image size, "
                "crop, normalisation); it was written by an older finegrain. Train it again with "
                "this version to use it for predict, cam or export"
            )
        try:
            preprocessing = Preprocessing.from_dict(spec)
        except (TypeError, ValueError) as exc:
            raise FinegrainError(f"{checkpoint}: {exc}") from exc
        if meta.get("image_size") not in (None, preprocessing.size):
            raise FinegrainError(
                f"{checkpoint}: image_size {meta['image_size']} differs from its preprocessing "
                f"size {preprocessing.size}"
            )
        data = meta.get("thresholds")
        thresholds = Thresholds.from_dict(data) if data else None
        try:
            recalibration = from_dict(meta["calibration"]) if meta.get("calibration") else None
            if thresholds is not None:
                reading_of(recalibration, thresholds)
        except (TypeError, ValueError) as exc:
            raise FinegrainError(f"{checkpoint}: {exc}") from exc
        iteration = meta.get("iteration")
        name = " ".join(
            str(x)
            for x in (
                meta.get("observation"),
                method.name,
                f"iter {iteration}" if iteration is not None else "",
            )
            if x
        )
        return cls(
            model=model.eval(),
            method=method,
            preprocessing=preprocessing,
            thresholds=thresholds,
            name=name or checkpoint.stem,
            meta=meta,
            recalibration=recalibration,
        )

    def read(self, path: str | os.PathLike) -> np.ndarray:
        """The image as the model sees it: uint8 ``(S, S)``."""
        return self.preprocessing.read(path)

    def logits(self, images: np.ndarray) -> torch.Tensor:
        """Logits ``[B, outputs]`` for uint8 images ``(B, S, S)``."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))[:, None]
        with torch.inference_mode():
            return self.model(x).float()

    def scores(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """``{"score": positive probability, "fine_score": fine score}``, each ``(B,)``, for
        uint8 images ``(B, S, S)``, recalibrated (:func:`calibrated_scores`)."""
        return self.scores_of(self.logits(images))

    def scores_of(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        """:meth:`scores` from the model's logits ``[B, outputs]``."""
        import torch

        with torch.inference_mode():
            scores = calibrated_scores(self.method, logits, self.recalibration)
        return {k: v.numpy().astype(float) for k, v in scores.items()}

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Positive probabilities ``(B,)`` for uint8 images ``(B, S, S)``."""
        return self.scores(images)["score"]
