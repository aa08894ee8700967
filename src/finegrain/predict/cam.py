"""Class activation maps (CAM, Zhou et al. 2016) as in the paper's Figure 5.

A finegrain model (:func:`finegrain.train.models.build_model`) is ``normalize -> features ->
global average pool -> linear classifier``; :func:`~finegrain.train.models.cam_layers` gives its
feature extractor and classifier. The logit of class ``k`` is
``z_k = b_k + mean_{h,w} sum_c W[k, c] A[c, h, w]`` over the last feature map ``A``. The
training method names the logit combination that is its evidence for a positive,
``e = sum_k c_k z_k`` (:meth:`finegrain.train.methods.Method.evidence`; for two logits
``z_1 - z_0``, whose sigmoid is the positive probability), so we map the weights
``w = sum_k c_k W[k]``::

    cam[h, w] = sum_c w_c A[c, h, w]        and exactly   mean(cam) + sum_k c_k b_k = e

(the identity is checked on every call: a model whose pooling is not a global average gets a
clear error). The map
is upsampled bilinearly to the input size and overlaid on the image with a colormap; each panel
is min-max normalised on its own, so colours compare regions within a map, not across maps.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from finegrain.errors import FinegrainError
from finegrain.predict.images import collect_images, read_batches
from finegrain.predict.predictor import Predictor

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import torch

    from finegrain.train.methods import Method


@dataclass
class CAMResult:
    """CAMs of a batch: ``feature_cam`` ``(B, h, w)``, ``cam`` upsampled ``(B, S, S)`` (both in
    evidence units: the logit difference for two logits), ``logits`` ``(B, outputs)``,
    ``probability`` ``(B,)`` (the method's positive probability), ``bias`` = ``c · b``."""

    feature_cam: np.ndarray
    cam: np.ndarray
    logits: np.ndarray
    probability: np.ndarray
    bias: float


def cam_parts(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Linear]:
    """``(features, classifier)`` of a finegrain model, via the model factory's ``cam_layers``;
    a ``ValueError`` for a model CAM cannot explain."""
    from torch import nn

    from finegrain.train.models import cam_layers

    try:
        features, head = cam_layers(model)
    except AttributeError:
        raise FinegrainError(
            f"plain CAM needs a finegrain model (features -> global average pool -> linear "
            f"head, see build_model); {type(model).__name__} has no features/classifier"
        ) from None
    if not isinstance(head, nn.Linear):
        raise FinegrainError(
            f"plain CAM needs a linear head; {type(model).__name__}'s classifier is "
            f"{type(head).__name__}"
        )
    return features, head


def compute_cam(
    model: torch.nn.Module, images: torch.Tensor | np.ndarray, method: Method
) -> CAMResult:
    """Plain CAM for uint8 images ``[B, 1, S, S]`` (or ``(B, S, S)``) through ``model``,
    trained by ``method`` (whose head width must match the model's).

    The feature map is the output of the model's ``features`` (captured during the ordinary
    forward pass); the map's spatial mean plus the evidence's bias must equal the evidence of
    the logits, which is checked.
    """
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(images)
    if x.ndim == 3:
        x = x[:, None]
    features, head = cam_parts(model)
    captured: list[torch.Tensor] = []
    handle = features.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            logits = model(x).float()
    finally:
        handle.remove()
        model.train(was_training)
    probability = method.positive_probability(logits)  # checks the head's width
    coefficients = method.evidence().float()
    fmap = captured[-1].float()
    weight = head.weight.detach().float()
    bias = head.bias.detach().float() if head.bias is not None else torch.zeros(len(weight))
    fcam = torch.einsum("c,bchw->bhw", coefficients @ weight, fmap)
    b = float(coefficients @ bias)
    if not torch.allclose(fcam.mean(dim=(1, 2)) + b, logits @ coefficients, atol=1e-4, rtol=1e-3):
        raise FinegrainError(
            "plain CAM: the classifier's input is not the global average of the feature map "
            f"({type(model).__name__}); CAM supports global-average-pool + linear heads"
        )
    up = F.interpolate(fcam[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)
    return CAMResult(
        feature_cam=fcam.numpy(),
        cam=up[:, 0].numpy(),
        logits=logits.numpy(),
        probability=probability.numpy().astype(float),
        bias=b,
    )


def _normalise(cam: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a (numerically) constant map becomes all zeros."""
    lo, hi = float(cam.min()), float(cam.max())
    if hi - lo <= 1e-6 * max(1.0, abs(hi), abs(lo)):
        return np.zeros_like(cam, dtype=float)
    return (cam - lo) / (hi - lo)


def save_cam_figure(
    image: np.ndarray,
    panels: Sequence[tuple[np.ndarray, str]],
    out: str | os.PathLike,
    *,
    title: str = "",
    alpha: float = 0.45,
    cmap: str = "jet",
) -> Path:
    """One PNG: the image, then one overlay per ``(cam, panel title)`` side by side (atomic)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from finegrain.io import atomic_open

    n = 1 + len(panels)
    fig = Figure(figsize=(3.2 * n, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)[0]
    axes[0].imshow(image, cmap="gray", vmin=0, vmax=255)
    axes[0].set_title("image", fontsize=9)
    for ax, (cam, label) in zip(axes[1:], panels, strict=True):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.imshow(_normalise(cam), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
        ax.set_title(label, fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.92) if title else None)
    out = Path(out)
    with atomic_open(out, "wb") as handle:
        fig.savefig(handle, format="png")
    return out


class CAMRenderer:
    """Writes one PNG per image into ``out_dir``, one CAM panel per predictor; never over one
    of the ``inputs`` (when ``out_dir`` holds the images themselves)."""

    def __init__(
        self,
        predictors: Sequence[Predictor],
        out_dir: str | os.PathLike,
        inputs: Sequence[str | os.PathLike] = (),
    ):
        if not predictors:
            raise FinegrainError("CAM needs at least one checkpoint")
        specs = {p.preprocessing for p in predictors}
        if len(specs) > 1:
            raise FinegrainError(
                f"checkpoints disagree on preprocessing ({', '.join(map(str, specs))}); "
                "side-by-side CAMs need the same"
            )
        for p in predictors:
            cam_parts(p.model)  # fail early with the clear error
        self.predictors = list(predictors)
        self.out_dir = Path(out_dir)
        self._used: set[str] = set()
        self._inputs = {os.path.realpath(p) for p in inputs}
        names = [p.name for p in predictors]
        self.labels = (
            names
            if len(set(names)) == len(names)
            else [f"{i + 1}: {n}" for i, n in enumerate(names)]
        )

    def output_path(self, image_path: str | os.PathLike) -> Path:
        """``<out_dir>/<image stem>.png``, with ``-2``, ``-3``... for repeated stems and for
        names of input images."""
        stem, k = Path(image_path).stem, 1
        name = f"{stem}.png"
        while name in self._used or os.path.realpath(self.out_dir / name) in self._inputs:
            k += 1
            name = f"{stem}-{k}.png"
        self._used.add(name)
        return self.out_dir / name

    def render_batch(
        self, paths: Sequence[str | os.PathLike], images: np.ndarray
    ) -> tuple[dict[str, np.ndarray], list[Path]]:
        """Write the figures for a batch; returns the first predictor's scores (``score``,
        ``fine_score``; :meth:`Predictor.scores`) and the PNG paths written."""
        import torch

        from finegrain.predict.tiers import tier

        results = [compute_cam(p.model, images, p.method) for p in self.predictors]
        scores = [
            p.scores_of(torch.from_numpy(r.logits))
            for p, r in zip(self.predictors, results, strict=True)
        ]
        outputs = []
        for i, path in enumerate(paths):
            panels = []
            for p, label, res, sc in zip(
                self.predictors, self.labels, results, scores, strict=True
            ):
                prob = float(sc["score"][i])
                calibrated = "calibrated " if p.recalibration is not None else ""
                text = f"{label}\n{calibrated}p = {prob:.3f}"
                if p.thresholds is not None:
                    text += f" ({tier(prob, p.thresholds, float(sc['fine_score'][i]))})"
                h, w = res.feature_cam.shape[1:]
                if h * w == 1:  # e.g. a 32 px input through a /32 backbone
                    text += "\n1x1 feature map: no spatial CAM"
                panels.append((res.cam[i], text))
            out = self.output_path(path)
            outputs.append(save_cam_figure(images[i], panels, out, title=Path(path).name))
        return scores[0], outputs


def cam_images(
    checkpoints: Sequence[str | os.PathLike | Predictor],
    images: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    batch_size: int = 16,
    progress: bool = True,
) -> pd.DataFrame:
    """CAM overlays for images (files/folders) under one or two checkpoints (side by side).

    Returns a table ``path, output, probability, error`` (``probability`` of the first
    checkpoint); unreadable images are reported there and skipped.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    predictors = [
        c if isinstance(c, Predictor) else Predictor.from_checkpoint(c) for c in checkpoints
    ]
    files = collect_images(images)
    if not files:
        raise FinegrainError(f"no images found in {[str(p) for p in images]}")
    renderer = CAMRenderer(predictors, out_dir, inputs=files)
    rows: list[dict] = [{} for _ in files]
    bar = tqdm(total=len(files), unit="image", desc="cam", disable=not progress)
    for batch in read_batches(files, predictors[0].read, batch_size):
        for i, text in batch.errors.items():
            rows[i] = {"path": str(files[i]), "output": "", "probability": np.nan, "error": text}
        if batch.images is not None:
            scores, outs = renderer.render_batch(batch.paths, batch.images)
            for i, pr, o in zip(batch.positions, scores["score"], outs, strict=True):
                rows[i] = {"path": str(files[i]), "output": str(o), "probability": float(pr),
                           "error": ""}  # fmt: skip
        bar.update(batch.size)
    bar.close()
    return pd.DataFrame(rows, columns=["path", "output", "probability", "error"])
