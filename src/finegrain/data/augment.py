"""Training augmentation for chest radiographs: a small random affine on uint8 images.

A CXR recipe keeps augmentation mild: a few degrees of rotation, a few percent of translation
and scale. No flips by default (they move the heart to the wrong side). The transform runs on
the uint8 tensor ``[1, S, S]`` returned by the dataset and keeps it uint8; normalisation to
float happens later, in one place: the model's ``InputNormalization`` (see ``docs/data.md``).

Randomness comes from torch's global generator, which the DataLoader seeds per worker from its
own ``generator``: runs are deterministic given the loader's seed and ``num_workers``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import torch


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
            raise ValueError("Augmentation: degrees and shear must be >= 0")
        if not 0 <= self.translate < 1:
            raise ValueError(f"Augmentation: translate must be in [0, 1), got {self.translate}")
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"Augmentation: scale must be (low, high) > 0, got {self.scale}")
        if not 0 <= self.fill <= 255:
            raise ValueError(f"Augmentation: fill must be a uint8 value, got {self.fill}")
        if not 0 <= self.hflip <= 1:
            raise ValueError(f"Augmentation: hflip must be a probability, got {self.hflip}")

    @cached_property
    def transform(self) -> Any:
        """The torchvision ``transforms.v2`` pipeline this augmentation stands for."""
        from torchvision.transforms import v2

        steps = [
            v2.RandomAffine(
                degrees=self.degrees,
                translate=(self.translate, self.translate),
                scale=self.scale,
                shear=self.shear or None,
                interpolation=v2.InterpolationMode.BILINEAR,
                fill=self.fill,
            )
        ]
        if self.hflip:
            steps.append(v2.RandomHorizontalFlip(self.hflip))
        return v2.Compose(steps)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Augment one uint8 image ``[C, H, W]``; the result is uint8 of the same shape."""
        if image.dtype != torch.uint8:
            raise TypeError(f"Augmentation expects a uint8 image, got {image.dtype}")
        return self.transform(image)

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
