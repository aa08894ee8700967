"""Training augmentation for chest radiographs: a small random affine on uint8 images.

A CXR recipe keeps augmentation mild: a few degrees of rotation, a few percent of translation
and scale. No flips by default (they move the heart to the wrong side). The transform runs on
the uint8 images returned by the dataset, one ``[1, S, S]`` or a whole batch ``[B, 1, S, S]``
at once (one ``affine_grid`` + ``grid_sample`` call with a random affine per image, bilinear,
the same operation as torchvision's ``RandomAffine``), and returns uint8; normalisation to
float happens later, in one place: the model's ``InputNormalization`` (see ``docs/data.md``).

Randomness comes from torch's global generator (or the ``generator`` given), which the
DataLoader seeds per worker from its own ``generator``: runs are deterministic given the
loader's seed and ``num_workers``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from finegrain.errors import FinegrainError


@dataclass(frozen=True)
class Augmentation:
    """Random affine: rotation within ±``degrees``, translation up to ``translate`` of the side
    on each axis, isotropic ``scale`` in the given range, optional ``shear`` (degrees); pixels
    moved in from outside take the value ``fill``. ``hflip`` is the probability of a
    left-right flip (0 by default)."""

    degrees: float = 10.0
    translate: float = 0.05
    scale: tuple[float, float] = (0.95, 1.05)
    shear: float = 0.0
    fill: int = 0
    hflip: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", tuple(float(s) for s in self.scale))
        if self.degrees < 0 or self.shear < 0:
            raise FinegrainError("Augmentation: degrees and shear must be >= 0")
        if not 0 <= self.translate < 1:
            raise FinegrainError(f"Augmentation: translate must be in [0, 1), got {self.translate}")
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            raise FinegrainError(f"Augmentation: scale must be (low, high) > 0, got {self.scale}")
        if not 0 <= self.fill <= 255:
            raise FinegrainError(f"Augmentation: fill must be a uint8 value, got {self.fill}")
        if not 0 <= self.hflip <= 1:
            raise FinegrainError(f"Augmentation: hflip must be a probability, got {self.hflip}")

    def __call__(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Augment uint8 images ``[C, H, W]`` or a batch ``[B, C, H, W]`` (each image with its
        own random draw) in one ``grid_sample`` call; the result is uint8 of the same shape."""
        if images.dtype != torch.uint8:
            raise TypeError(f"Augmentation expects uint8 images, got {images.dtype}")
        if images.ndim not in (3, 4):
            raise FinegrainError(f"expected [C, H, W] or [B, C, H, W], got {tuple(images.shape)}")
        batch = images if images.ndim == 4 else images[None]
        out = _random_affine(batch, self, generator)
        return out if images.ndim == 4 else out[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields (for run configs)."""
        out = asdict(self)
        out["scale"] = list(self.scale)
        return out

    @classmethod
    def from_value(cls, value: bool | dict | Augmentation | None) -> Augmentation | None:
        """``True`` -> the default recipe, ``False``/``None`` -> no augmentation, a dict (from
        :meth:`to_dict`) or an ``Augmentation`` -> that augmentation."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls(**value)
        raise TypeError(f"cannot make an Augmentation from {value!r}")


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def _draw(
    n: int, aug: Augmentation, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` random affines as ``[n, 2, 3]`` float64 (the forward 2x2 map, then the
    normalised translation) and flips (or None); always drawn in the same order."""
    angle = _uniform(n, -aug.degrees, aug.degrees, generator) * (math.pi / 180)
    shear = _uniform(n, -aug.shear, aug.shear, generator) * (math.pi / 180)
    scale = _uniform(n, aug.scale[0], aug.scale[1], generator)
    # translation as a fraction of the side; normalised coordinates span 2 per side
    tx = _uniform(n, -aug.translate, aug.translate, generator) * 2
    ty = _uniform(n, -aug.translate, aug.translate, generator) * 2
    flip = torch.rand(n, generator=generator) < aug.hflip if aug.hflip else None
    # forward map in pixel units: x' = S R Sh x + t
    cos, sin = torch.cos(angle), torch.sin(angle)
    forward = torch.zeros(n, 2, 2, dtype=torch.float64)
    forward[:, 0, 0] = cos
    forward[:, 0, 1] = -sin + cos * torch.tan(shear)
    forward[:, 1, 0] = sin
    forward[:, 1, 1] = cos - sin * torch.tan(shear)
    forward = forward * scale.view(n, 1, 1)
    params = torch.empty(n, 2, 3, dtype=torch.float64)
    params[:, :, :2] = forward
    params[:, 0, 2], params[:, 1, 2] = tx, ty
    return params, flip


def _apply(
    images: torch.Tensor, params: torch.Tensor, flip: torch.Tensor | None, aug: Augmentation
) -> torch.Tensor:
    """Warp ``images`` [B, C, H, W] (uint8, any device) by the drawn ``params``, bilinear."""
    n, _, height, width = images.shape
    forward, shift = params[:, :, :2], params[:, :, 2]
    # affine_grid needs the inverse map, in normalised coordinates (corrected for non-square
    # images with the aspect matrix A)
    aspect = torch.tensor([[width / 2, 0.0], [0.0, height / 2]], dtype=torch.float64)
    inverse = torch.linalg.inv(aspect) @ torch.linalg.inv(forward) @ aspect
    theta = torch.empty(n, 2, 3, dtype=torch.float64)
    theta[:, :, :2] = inverse
    theta[:, :, 2] = -(inverse @ shift.unsqueeze(-1)).squeeze(-1)
    theta = theta.float().to(images.device)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    shifted = images.float() - aug.fill  # zero padding of (x - fill) == padding with fill
    out = F.grid_sample(shifted, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out.add_(aug.fill).round_().clamp_(0, 255).to(torch.uint8)
    if flip is not None and flip.any():
        flip = flip.to(images.device)
        out[flip] = out[flip].flip(-1)
    return out


def _random_affine(
    images: torch.Tensor, aug: Augmentation, generator: torch.Generator | None
) -> torch.Tensor:
    """Per-image random rotation / scale / shear / translation (+ optional flip), bilinear."""
    params, flip = _draw(images.shape[0], aug, generator)
    return _apply(images, params, flip, aug)


def augment_seeded(images: torch.Tensor, aug: Augmentation, seeds: Sequence[int]) -> torch.Tensor:
    """Augment a batch where image ``i`` draws its affine from a generator seeded ``seeds[i]``,
    in one ``grid_sample`` call on the batch's device (the GPU-fed data path).

    The draws are those of ``aug(image)`` under ``torch.manual_seed(seeds[i])`` (what the
    training loop's seeded items do one image at a time in the loader), so on CPU the result
    equals the per-image augmentation bit for bit.
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise TypeError(
            f"expected uint8 images [B, C, H, W], got {images.dtype} {tuple(images.shape)}"
        )
    if len(seeds) != images.shape[0]:
        raise FinegrainError(f"{len(seeds)} seeds for {images.shape[0]} images")
    draws = [_draw(1, aug, torch.Generator().manual_seed(int(seed))) for seed in seeds]
    params = torch.cat([p for p, _ in draws])
    flip = torch.cat([f for _, f in draws]) if aug.hflip else None
    return _apply(images, params, flip, aug)
