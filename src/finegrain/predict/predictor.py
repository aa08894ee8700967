"""A trained checkpoint ready for inference, with the preprocessing it was trained with.

The preprocessing (image size, crop, normalisation) is read from the checkpoint itself, where
training stored it (:class:`finegrain.data.cache.Preprocessing`): nothing is looked up on disk,
so a prediction does not depend on where it runs. A checkpoint without it (written by an older
finegrain) is refused, never guessed.
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
from finegrain.predict.tiers import Thresholds

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from finegrain.train.methods import Method


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
            thresholds=Thresholds.from_dict(data) if data else None,
            name=name or checkpoint.stem,
            meta=meta,
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
        uint8 images ``(B, S, S)`` (:meth:`~finegrain.train.methods.Method.scores`)."""
        logits = self.logits(images)
        return {k: v.numpy().astype(float) for k, v in self.method.scores(logits).items()}

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Positive probabilities ``(B,)`` for uint8 images ``(B, S, S)``."""
        return self.scores(images)["score"]
