"""Benchmark presets: the paper's protocol and a demo that runs on a laptop CPU.

A preset fixes the grid (observations, selections, seeds), the data (image size, phantom
size, the phantom's knobs: ``phantom``) and a *training template*: the
:class:`~finegrain.train.config.TrainConfig` fields every run of the grid gets (``train``;
fields it leaves out keep TrainConfig's defaults). The grid adds each run's identity
(observation, method with its τ, seed), its data paths and its run directory. τ is the methods'
own option (:data:`~finegrain.train.methods.TAU`), set for a benchmark with ``--tau``.
Command-line options override single fields (see :meth:`Preset.replace`).

>>> DEMO.setting("iterations"), PAPER.setting("iterations"), PAPER.lr
(300, 50000, 0.0001)
>>> DEMO.replace(iterations=60).train["iterations"]
60
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from finegrain.errors import FinegrainError
from finegrain.registry import Registry


def _train_fields() -> dict[str, dataclasses.Field]:
    from finegrain.train.config import TrainConfig

    return {f.name: f for f in dataclasses.fields(TrainConfig)}


@dataclass(frozen=True)
class Preset:
    """Everything a benchmark needs besides the data location and the output folder."""

    name: str
    #: one line for ``finegrain list``
    description: str = ""
    observations: tuple[str, ...] = ("Consolidation", "Edema")
    selections: tuple[str, ...] = ("table2",)
    seeds: int = 3
    #: TrainConfig fields of every run (e.g. ``{"iterations": 300, "lr": 1e-3}``)
    train: dict[str, Any] = field(default_factory=dict, hash=False)
    image_size: int = 224
    views: tuple[str, ...] = ("AP", "PA")
    #: phantom studies and pixel size when the data is the built-in phantom
    phantom_studies: int = 2000
    phantom_size: int = 128
    #: studies in each of the phantom's validate and test splits (``None``: the phantom splits
    #: ``phantom_studies`` 70/15/15; otherwise ``phantom_studies`` are the training studies)
    phantom_eval_studies: int | None = None
    #: ``make_phantom`` keywords over the sizes above: the phantom's condition, e.g.
    #: ``{"visibility": {"Consolidation": 3.0}}`` (a study's per-condition options win over it)
    phantom: dict[str, Any] = field(default_factory=dict, hash=False)
    #: torch CPU threads while training (``None``: torch's default). Tiny models on a small CPU
    #: run several times faster on one thread than on two competing ones.
    threads: int | None = None
    #: runs trained at once in worker processes (capped at the CPU count)
    jobs: int = 1

    def __post_init__(self) -> None:
        names = _train_fields()
        unknown = sorted(set(self.train) - set(names))
        if unknown:
            raise FinegrainError(f"preset {self.name!r}: TrainConfig has no field(s) {unknown}")
        from finegrain.train.config import GRID_FIELDS

        owned = sorted(set(self.train) & GRID_FIELDS)
        if owned:
            raise FinegrainError(f"preset {self.name!r}: {owned} are set by the grid for each run")
        from finegrain.constraints import check
        from finegrain.train.config import TrainConfig

        for key, value in self.train.items():  # the fields' declared rules, as everywhere
            check(f"preset {self.name!r}: {key}", value, TrainConfig.CONSTRAINTS.get(key, ()))
        if self.phantom:
            import inspect

            from finegrain.data.phantom import make_phantom

            keywords = set(inspect.signature(make_phantom).parameters) - {"out", "progress"}
            unknown = sorted(set(self.phantom) - keywords)
            if unknown:
                raise FinegrainError(
                    f"preset {self.name!r}: make_phantom has no keyword(s) {unknown} "
                    f"(phantom={{...}}: {sorted(keywords)})"
                )
            from finegrain.data.phantom import PhantomKnobs

            names = {f.name for f in dataclasses.fields(PhantomKnobs)}
            PhantomKnobs(**{k: v for k, v in self.phantom.items() if k in names and v is not None})

    def setting(self, name: str) -> Any:
        """A training setting of the preset's runs: the template's, else TrainConfig's default."""
        if name in self.train:
            return self.train[name]
        spec = _train_fields()[name]
        if spec.default is not dataclasses.MISSING:
            return spec.default
        return spec.default_factory()  # type: ignore[misc]

    def __getattr__(self, name: str) -> Any:
        """``preset.iterations`` etc.: a TrainConfig field reads :meth:`setting`."""
        if not name.startswith("_") and name in _train_fields():
            return self.setting(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def replace(self, **changes: Any) -> Preset:
        """A copy with the non-``None`` ``changes`` applied; TrainConfig fields go into the
        training template, the others replace preset fields."""
        changes = {k: v for k, v in changes.items() if v is not None}
        own = {f.name for f in dataclasses.fields(self)}
        train = {k: v for k, v in changes.items() if k not in own}
        if train:
            unknown = sorted(set(train) - set(_train_fields()))
            if unknown:
                raise FinegrainError(f"neither a preset nor a TrainConfig field: {unknown}")
            changes = {k: v for k, v in changes.items() if k in own}
            changes["train"] = {**self.train, **changes.get("train", {}), **train}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready form; the phantom's ``design`` is always written (a record without one
        predates the continuum design: :meth:`from_dict`)."""
        from finegrain.data.phantom import DEFAULT_DESIGN

        found = dataclasses.asdict(self)
        found["phantom"] = {"design": DEFAULT_DESIGN, **found["phantom"]}
        return found

    @classmethod
    def from_dict(cls, data: dict) -> Preset:
        """Inverse of :meth:`to_dict` (e.g. the preset recorded in a benchmark's
        ``benchmark.json``); lists become tuples again. A record without the phantom's design
        was written by finegrain 0.2-0.3, whose phantoms were all drawn by the bands design."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        values["phantom"] = {"design": "bands", **(values.get("phantom") or {})}
        return cls(**values)


#: The paper's protocol (Section 4.1): DenseNet121 from ImageNet weights, 224 px, Adam 1e-4,
#: batch 32, 50k iterations with a checkpoint every 10k (TrainConfig's defaults), 3 seeds,
#: τ = 0.3 (the methods' own), Consolidation and Edema, AP/PA views, the official split.
PAPER = Preset(
    name="paper",
    description="the paper's protocol: DenseNet121 from ImageNet weights, 224 px, 50k iterations, "
    "3 seeds (your MIMIC-CXR-JPG)",
)

#: finegrain 0.3's demo, on the phantom of finegrain 0.2-0.3 (the bands design, byte for byte):
#: the grid of docs/study.md sections 1-5 and of every README number before 0.4. Reproducible
#: as it was (this CPU's own kernels, as it was measured).
DEMO_V03 = Preset(
    name="demo-v0.3",
    description="finegrain 0.3's quick start: densenet-tiny, 300 iterations, 2 seeds on the "
    "bands phantom (docs/study.md sections 1-5)",
    seeds=2,
    train={
        "model": "densenet-tiny",
        "pretrained": False,
        "iterations": 300,
        "checkpoint_every": 150,
        "batch_size": 32,
        "lr": 1e-3,
        "augment": False,
        "num_workers": 0,
    },
    image_size=64,
    # 4,000 training studies; validate and test sized for >= 300 atypical and >= 300 typical
    # positives of each observation (the rarest: Consolidation, 6.8% positive, 19% of them
    # atypical): finegrain.data.phantom.required_eval_studies(300)
    phantom_studies=4000,
    phantom_eval_studies=30071,
    phantom_size=64,
    phantom={"design": "bands"},
    threads=1,
    jobs=2,
)

#: The positive control (docs/study.md section 4): the demo's phantom and model, Consolidation
#: with 40 % of its training and validation labels flipped, trained ten times longer (3,000
#: iterations: about 136 epochs of its 705 U-Ignore training images, enough to memorise them)
#: with a checkpoint every 300; CE (U-Ignore) and PCE at three τ, 5 seeds.
CONTROL = dataclasses.replace(
    DEMO_V03,
    name="control",
    description="the positive control: CE vs PCE with 40 % of Consolidation's labels flipped, "
    "3,000 iterations, 5 seeds",
    observations=("Consolidation",),
    selections=("control",),
    seeds=5,
    train={**DEMO_V03.train, "iterations": 3000, "checkpoint_every": 300, "label_noise": 0.4},
)

#: The demo on the phantom whose coarse difficulty was calibrated to real radiographs
#: (docs/study.md, section 5.3, recorded before any comparison uses it): each observation's
#: contrast at every severity (``conspicuity``) chosen so that U-Ones' coarse AUC, uncertain and
#: blank counted negative (``finegrain difficulty``), meets CheXclusion's DenseNet121 on
#: MIMIC-CXR. Edema (0.7071) is in range (0.864-0.881 against 0.85-0.91); Consolidation did not
#: reach its range within the procedure and keeps its closest value (2.8284: 0.893 against
#: 0.80-0.86, a little easier than real).
REAL_DIFFICULTY = dataclasses.replace(
    DEMO_V03,
    name="real-difficulty",
    description="the demo on the phantom calibrated to real coarse difficulty (conspicuity)",
    phantom={"design": "bands", "conspicuity": {"Consolidation": 2.8284, "Edema": 0.7071}},
)

#: The continuum phantom calibrated to real targets (docs/study.md, section 6, point c1, all
#: three targets reached, 3 seeds): Consolidation coarse AUC 0.815 (CheXclusion 0.80-0.86), U-Ones
#: AUC^FG against mined labels 0.768 (the paper's 0.7716) and against the image truth 0.833
#: (at most 0.85); Edema 0.891 (0.85-0.91), 0.643 (0.6374), 0.787. ``slight_share`` of
#: Consolidation from stage 0, ``conspicuity`` and ``spread`` from the fit; the other knobs at
#: their defaults.
CALIBRATED_PHANTOM: dict[str, Any] = {
    "design": "continuum",
    "slight_share": {"Consolidation": 0.15, "Edema": 0.69},
    "conspicuity": {"Consolidation": 1.003, "Edema": 1.0019},
    "spread": {"Consolidation": 0.0638, "Edema": 0.5954},
}

#: The regime the phantom was calibrated in and the comparisons ran in (docs/study.md,
#: sections 6-7): finegrain 0.3's demo settings with densenet-small trained 600 iterations (a
#: checkpoint every 150) on that phantom, 15,000 studies in each evaluation split; 5 seeds.
CALIBRATED = dataclasses.replace(
    DEMO_V03,
    name="calibrated",
    description="densenet-small on the continuum phantom calibrated to real targets (study 6-7)",
    seeds=5,
    train={**DEMO_V03.train, "model": "densenet-small", "iterations": 600},
    phantom_eval_studies=15_000,
    phantom=CALIBRATED_PHANTOM,
)

#: The quick start (``finegrain benchmark``): the paper's four methods and the best fine-label
#: method of docs/study.md section 7 (ordinal) on the calibrated phantom (the same settings as
#: ``calibrated``'s), with densenet-tiny trained 300 iterations so that it finishes in minutes
#: on a laptop CPU; its CPU kernels pinned, so its numbers are the same on every x86-64 CPU with
#: AVX2 (docs/training.md).
DEMO = dataclasses.replace(
    CALIBRATED,
    name="demo",
    description="the quick start: densenet-tiny, 300 iterations, 2 seeds, the paper's four "
    "methods and ordinal on the calibrated phantom (minutes on a CPU)",
    selections=("quick-start",),
    seeds=2,
    train={
        **DEMO_V03.train,
        "cpu_kernels": "avx2",  # the same numbers on every x86 CPU (docs/training.md)
    },
)

#: Every preset by name (filled at import; a user's module may register its own).
PRESETS: Registry[Preset] = Registry("preset")
PRESETS.register("demo", DEMO)
PRESETS.register("demo-v0.3", DEMO_V03)
PRESETS.register("paper", PAPER)
PRESETS.register("control", CONTROL)
PRESETS.register("real-difficulty", REAL_DIFFICULTY)
PRESETS.register("calibrated", CALIBRATED)


def phantom_condition(preset: Preset) -> list[str]:
    """The phantom knobs ``preset.phantom`` sets (its ``design`` aside): a condition of the
    built-in phantom, which other data (MIMIC-CXR, OpenI, an index and cache) does not have.

    >>> phantom_condition(REAL_DIFFICULTY), phantom_condition(PAPER)
    (['conspicuity'], [])
    """
    return [k for k, v in preset.phantom.items() if k != "design" and v is not None]


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a :class:`~finegrain.errors.FinegrainError` lists them."""
    return PRESETS.get(name)
