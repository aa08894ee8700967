"""Benchmark presets: the paper's protocol and a demo that runs on a laptop CPU.

A preset fixes the data (phantom size), the model and the training schedule; command-line
options override single fields (see :func:`Preset.replace`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """Everything a benchmark needs besides the data location and the output folder."""

    name: str
    observations: tuple[str, ...] = ("Consolidation", "Edema")
    selections: tuple[str, ...] = ("table2",)
    seeds: int = 3
    tau: float = 0.3
    model: str = "densenet121"
    pretrained: bool = True
    #: ImageNet weights file (``None``: torchvision's file in the local torch hub cache)
    weights: str | None = None
    image_size: int = 224
    iterations: int = 50_000
    checkpoint_every: int = 10_000
    batch_size: int = 32
    lr: float = 1e-4
    augment: bool = True
    views: tuple[str, ...] = ("AP", "PA")
    #: phantom studies and pixel size when the data is the built-in phantom
    phantom_studies: int = 2000
    phantom_size: int = 128
    #: studies in each of the phantom's validate and test splits (``None``: the phantom splits
    #: ``phantom_studies`` 70/15/15; otherwise ``phantom_studies`` are the training studies)
    phantom_eval_studies: int | None = None
    num_workers: int | None = None
    #: torch CPU threads while training (``None``: torch's default). Tiny models on a small CPU
    #: run several times faster on one thread than on two competing ones.
    threads: int | None = None
    #: runs trained at once in worker processes (capped at the CPU count)
    jobs: int = 1

    def replace(self, **changes) -> Preset:
        """A copy with the non-``None`` ``changes`` applied."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: The paper's protocol (Section 4.1): DenseNet121 from ImageNet weights, 224 px, Adam 1e-4,
#: batch 32, 50k iterations with a checkpoint every 10k, 3 seeds, τ = 0.3, Consolidation and
#: Edema, AP/PA views, the official split.
PAPER = Preset(name="paper")

#: A small grid on the phantom that finishes in a few minutes on a 2-core CPU (see
#: docs/benchmark.md for the measurements behind these numbers).
DEMO = Preset(
    name="demo",
    seeds=2,
    model="densenet-tiny",
    pretrained=False,
    image_size=64,
    iterations=300,
    checkpoint_every=150,
    batch_size=32,
    lr=1e-3,
    augment=False,
    # 4,000 training studies; validate and test sized for >= 300 atypical and >= 300 typical
    # positives of each observation (the rarest: Consolidation, 6.8% positive, 19% of them
    # atypical): finegrain.data.phantom.required_eval_studies(300)
    phantom_studies=4000,
    phantom_eval_studies=30071,
    phantom_size=64,
    num_workers=0,
    threads=1,
    jobs=2,
)

PRESETS: dict[str, Preset] = {"paper": PAPER, "demo": DEMO}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}; expected one of: {', '.join(PRESETS)}"
        ) from None
