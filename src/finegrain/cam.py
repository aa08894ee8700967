"""Class activation maps (CAM, Zhou et al. 2016) as in the paper's Figure 5.

For a network that ends in global average pooling and a linear head (the DenseNet and ResNet
variants of ``build_model``), the logit of class ``k`` is
``z_k = b_k + mean_{h,w} sum_c W[k, c] A[c, h, w]`` over the last feature map ``A``. With two
logits the positive probability is ``sigmoid(z_1 - z_0)``, so we map the *positive-vs-negative*
weights ``w = W[1] - W[0]``::

    cam[h, w] = sum_c w_c A[c, h, w]        and exactly   mean(cam) + (b_1 - b_0) = z_1 - z_0

(the identity is checked on every call: a model without such a head gets a clear error). The map
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

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import torch

    from finegrain.predict.predict import Predictor


@dataclass
class CAMResult:
    """CAMs of a batch: ``feature_cam`` ``(B, h, w)``, ``cam`` upsampled ``(B, S, S)`` (both in
    logit-difference units), ``logits`` ``(B, 2)``, ``probability`` ``(B,)``, ``bias`` = b1 - b0."""

    feature_cam: np.ndarray
    cam: np.ndarray
    logits: np.ndarray
    probability: np.ndarray
    bias: float


def _linear_head(model: torch.nn.Module) -> torch.nn.Linear:
    from torch import nn

    heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not heads or heads[-1].out_features != 2:
        raise ValueError(
            f"plain CAM needs a model ending in a 2-logit linear head; {type(model).__name__} "
            "has none (CAM supports the densenet/resnet models of build_model)"
        )
    return heads[-1]


def compute_cam(model: torch.nn.Module, images: torch.Tensor | np.ndarray) -> CAMResult:
    """Plain CAM for uint8 images ``[B, 1, S, S]`` (or ``(B, S, S)``) through ``model``.

    The last feature map is the last 4-D activation (with the head's channel count) produced
    before the linear head runs; it is verified that its spatial mean is the head's input.
    """
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(images)
    if x.ndim == 3:
        x = x[:, None]
    head = _linear_head(model)
    channels = head.in_features
    maps: list[torch.Tensor] = []
    captured: dict[str, torch.Tensor] = {}

    def on_module(module, _inputs, output):
        if "head_in" in captured:
            return
        if isinstance(output, torch.Tensor) and output.ndim == 4 and output.shape[1] == channels:
            maps.append(output)  # a reference: an in-place ReLU after this is seen by the check

    def on_head(_module, inputs, output):
        captured["head_in"] = inputs[0].detach()
        captured["head_out"] = output.detach()

    handles = [m.register_forward_hook(on_module) for m in model.modules() if m is not head]
    handles.append(head.register_forward_hook(on_head))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            logits = model(x).float()
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if "head_in" not in captured or not maps:
        raise ValueError(
            f"plain CAM: no {channels}-channel feature map before the linear head of "
            f"{type(model).__name__} (needs global-average-pool + linear head)"
        )
    if not torch.allclose(captured["head_out"].float(), logits, atol=1e-4, rtol=1e-4):
        raise ValueError("plain CAM: the linear head's output is not the model's output")
    spatial = [m for m in maps if m.shape[2] * m.shape[3] > 1]
    fmap = (spatial or maps)[-1].float()
    pooled = captured["head_in"].float().flatten(1)
    for candidate in (fmap, F.relu(fmap)):
        if torch.allclose(candidate.mean(dim=(2, 3)), pooled, atol=1e-4, rtol=1e-3):
            fmap = candidate
            break
    else:
        raise ValueError(
            "plain CAM: the head's input is not the global average of the last feature map "
            f"({type(model).__name__}); CAM supports global-average-pool + linear heads"
        )
    weight = head.weight.detach().float()
    bias = head.bias.detach().float() if head.bias is not None else torch.zeros(2)
    w = weight[1] - weight[0]
    fcam = torch.einsum("c,bchw->bhw", w, fmap)
    up = F.interpolate(fcam[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)
    return CAMResult(
        feature_cam=fcam.numpy(),
        cam=up[:, 0].numpy(),
        logits=logits.numpy(),
        probability=logits.softmax(dim=1)[:, 1].numpy().astype(float),
        bias=float(bias[1] - bias[0]),
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
    """Writes one PNG per image into ``out_dir``, one CAM panel per predictor."""

    def __init__(self, predictors: Sequence[Predictor], out_dir: str | os.PathLike):
        if not predictors:
            raise ValueError("CAM needs at least one checkpoint")
        sizes = {p.image_size for p in predictors}
        crops = {p.crop for p in predictors}
        if len(sizes) > 1 or len(crops) > 1:
            raise ValueError(
                f"checkpoints disagree on preprocessing (image sizes {sorted(sizes)}, crops "
                f"{sorted(crops)}); side-by-side CAMs need the same"
            )
        for p in predictors:
            _linear_head(p.model)  # fail early with the clear error
        self.predictors = list(predictors)
        self.out_dir = Path(out_dir)
        self._used: set[str] = set()
        names = [p.name for p in predictors]
        self.labels = (
            names
            if len(set(names)) == len(names)
            else [f"{i + 1}: {n}" for i, n in enumerate(names)]
        )

    def output_path(self, image_path: str | os.PathLike) -> Path:
        """``<out_dir>/<image stem>.png``, with ``-2``, ``-3``... for repeated stems."""
        stem, k = Path(image_path).stem, 1
        name = f"{stem}.png"
        while name in self._used:
            k += 1
            name = f"{stem}-{k}.png"
        self._used.add(name)
        return self.out_dir / name

    def render_batch(
        self, paths: Sequence[str | os.PathLike], images: np.ndarray
    ) -> tuple[np.ndarray, list[Path]]:
        """Write the figures for a batch; returns the first predictor's probabilities and the
        PNG paths written."""
        from finegrain.predict.tiers import tier

        results = [compute_cam(p.model, images) for p in self.predictors]
        outputs = []
        for i, path in enumerate(paths):
            panels = []
            for p, label, res in zip(self.predictors, self.labels, results, strict=True):
                prob = float(res.probability[i])
                text = f"{label}\np = {prob:.3f}"
                if p.thresholds is not None:
                    text += f" ({tier(prob, p.thresholds)})"
                h, w = res.feature_cam.shape[1:]
                if h * w == 1:  # e.g. a 32 px input through a /32 backbone
                    text += "\n1x1 feature map: no spatial CAM"
                panels.append((res.cam[i], text))
            out = self.output_path(path)
            outputs.append(save_cam_figure(images[i], panels, out, title=Path(path).name))
        return results[0].probability, outputs


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

    from finegrain.predict.predict import Predictor, _error_text, collect_images

    predictors = [
        c if isinstance(c, Predictor) else Predictor.from_checkpoint(c) for c in checkpoints
    ]
    renderer = CAMRenderer(predictors, out_dir)
    files = collect_images(images)
    if not files:
        raise ValueError(f"no images found in {[str(p) for p in images]}")
    rows = {}
    for start in tqdm(range(0, len(files), batch_size), desc="cam", disable=not progress):
        ok, arrays = [], []
        for f in files[start : start + batch_size]:
            try:
                arrays.append(predictors[0].read(f))
                ok.append(f)
            except Exception as exc:  # noqa: BLE001 - reported per image
                rows[f] = {"path": str(f), "output": "", "probability": np.nan,
                           "error": _error_text(exc)}  # fmt: skip
        if ok:
            probs, outs = renderer.render_batch(ok, np.stack(arrays))
            for f, pr, o in zip(ok, probs, outs, strict=True):
                rows[f] = {"path": str(f), "output": str(o), "probability": float(pr), "error": ""}
    rows = [rows[f] for f in files]  # input order
    frame = pd.DataFrame(rows, columns=["path", "output", "probability", "error"])
    return frame
