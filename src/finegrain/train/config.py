"""``TrainConfig``: every knob of a training run, stored as ``config.json`` in the run directory.

A run *is* its configuration: :meth:`TrainConfig.identity` is every setting that changes its
results (all fields but where it runs, how fast, and where its data and outputs live), and the
benchmark's grid derives each run's folder from it, so runs that differ in any setting never
share a folder (:mod:`finegrain.experiment.grid`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from finegrain.constraints import Boolean, Constraint, Each, Interval, IsNone, Options, check_all
from finegrain.cpu_kernels import KERNELS
from finegrain.errors import FinegrainError
from finegrain.train.methods import PAPER_METHOD

#: Fields that do not change a run's results, only where or how fast it runs (or where it is
#: written): a run may be resumed, or reused by the benchmark, with other values of these.
RUNTIME_FIELDS: frozenset[str] = frozenset(
    {"num_workers", "compile", "eval_batch_size", "device", "out", "augment_on"}
)

#: Fields that say where the run's data live: not part of its identity (the same run may be
#: read from another folder), but still compared before a run is reused or resumed.
LOCATION_FIELDS: frozenset[str] = frozenset({"index", "cache"})

#: Fields a grid sets for each run: its cell (observation, method, seed, and the method's τ, a
#: coordinate of the cell) and what the benchmark fixes (data, folder, evaluation splits). The
#: one owner of this set: never an extra axis of a grid, a preset's training template or a
#: training option of the benchmark.
CELL_FIELDS: frozenset[str] = frozenset({"observation", "method", "tau", "seed"})
FIXED_FIELDS: frozenset[str] = frozenset({"index", "cache", "out", "eval_splits"})
GRID_FIELDS: frozenset[str] = CELL_FIELDS | FIXED_FIELDS

#: Fields added since finegrain 0.3, with the default at which they are left out of a run's
#: identity (the behaviour of the runs recorded before them).
ADDED_FIELDS: dict[str, Any] = {"label_noise": 0.0, "cpu_kernels": "native"}

#: Keys of a run's recorded configuration that are not TrainConfig fields (written by the
#: training loop beside them: environment, data summary, preprocessing).
RECORD_EXTRAS: frozenset[str] = frozenset(
    {"versions", "world_size", "data", "preprocessing", "cpu"}
)


@dataclass
class TrainConfig:
    """One training run: one observation x method x seed.

    Defaults follow the paper's protocol: Adam (0.9, 0.999), lr 1e-4, no weight decay, global
    batch 32, 50k iterations, a checkpoint (and validation) every 10k iterations.
    ``num_workers=None`` picks ``min(4, cpu count)``; ``device="auto"`` picks CUDA when present.
    ``amp`` and ``compile`` only act on CUDA; ``channels_last`` acts on CUDA and CPU (on CPU:
    training 1.1-1.3x and inference 1.35-1.7x faster, ``benchmarks/memory_format.py``).
    """

    index: str
    cache: str
    observation: str
    method: str = PAPER_METHOD
    seed: int = 0
    iterations: int = 50000
    batch_size: int = 32
    checkpoint_every: int = 10000
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    model: str = "densenet121"
    pretrained: bool = True
    weights: str | None = None
    out: str = "runs/run"
    eval_splits: tuple[str, ...] = ("validate",)
    eval_batch_size: int = 64
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    num_workers: int | None = None
    augment: bool = True
    #: where training augmentation runs: "loader" (per image, in DataLoader workers), "device"
    #: (per batch on the training device), "auto" (device on CUDA, loader on CPU)
    augment_on: str = "auto"
    device: str = "auto"
    #: the method's options (its dataclass fields, e.g. ``{"q_atypical": 0.5}``, or PCE's
    #: ``{"tau": 0.1}``), part of the run's identity; see
    #: :meth:`finegrain.train.methods.Method.configure`
    method_options: dict[str, Any] = field(default_factory=dict)
    #: label noise for a positive control: the share of the observation's positive and
    #: negative labels flipped on the training and validation splits (the same images in every
    #: run; the test split keeps its labels); see ``CXRDataset.flip_labels``
    label_noise: float = 0.0
    #: the CPU kernels: "native" (the CPU's own) or "avx2" (the same bits on every x86-64 CPU
    #: with AVX2, a little slower); see :mod:`finegrain.cpu_kernels`
    cpu_kernels: str = "native"

    #: The declared rule of each field (:mod:`finegrain.constraints`, as scikit-learn's
    #: ``_parameter_constraints``): checked here, by ``finegrain train`` and ``finegrain
    #: benchmark`` (options and ``--axis`` values) and by a preset's training template.
    CONSTRAINTS: ClassVar[dict[str, list[Constraint]]] = {
        "seed": [Interval(int, 0, None)],
        "iterations": [Interval(int, 1, None)],
        "batch_size": [Interval(int, 1, None)],
        "checkpoint_every": [Interval(int, 1, None)],
        "lr": [Interval(float, 0, None, closed="neither")],
        "betas": [Each(Interval(float, 0, 1, closed="left"), length=2)],
        "weight_decay": [Interval(float, 0, None)],
        "eval_splits": [Each(Options({"train", "validate", "test"}))],
        "eval_batch_size": [Interval(int, 1, None)],
        "num_workers": [Interval(int, 0, None), IsNone()],
        "augment_on": [Options({"auto", "loader", "device"})],
        "label_noise": [Interval(float, 0, 0.5, closed="left")],
        "cpu_kernels": [Options(set(KERNELS))],
        **{
            name: [Boolean()]
            for name in ("pretrained", "amp", "channels_last", "compile", "augment")
        },
    }

    def __post_init__(self) -> None:
        for key in ("index", "cache", "out", "weights"):
            value = getattr(self, key)
            if value is not None:
                setattr(self, key, str(value))
        self.betas = tuple(float(b) for b in self.betas)
        self.eval_splits = tuple(self.eval_splits)
        self.method_options = dict(self.method_options or {})
        check_all(dataclasses.asdict(self), self.CONSTRAINTS)

    def training_method(self):
        """The run's :class:`~finegrain.train.methods.Method`, its options applied (its τ among
        them: :attr:`~finegrain.train.methods.Method.tau`)."""
        from finegrain.train.methods import get_method

        return get_method(self.method, self.method_options)

    def identity(self) -> dict[str, Any]:
        """Every setting that changes the run's results, as plain JSON values: all fields but
        :data:`RUNTIME_FIELDS` and :data:`LOCATION_FIELDS`, and a field added since 0.3
        (:data:`ADDED_FIELDS`) only away from its default. The method's τ, when its loss uses
        one, is the key ``tau`` (the method's own option, its default filled in) and not one of
        ``method_options``: the form runs were recorded under before τ became a method option,
        so every run keeps its identity and its folder."""
        out = {k: v for k, v in self.to_dict().items() if k not in _NOT_IDENTITY}
        tau = self.training_method().tau
        out["method_options"] = {k: v for k, v in out["method_options"].items() if k != "tau"}
        if tau is not None:
            out["tau"] = tau
        for name, default in ADDED_FIELDS.items():
            if out.get(name) == default:
                out.pop(name)
        return out

    def registered_in(self) -> tuple[str, ...]:
        """The modules that registered this run's method and model: a process that rebuilds
        them by name (a worker, ``predict`` on a checkpoint) imports these first."""
        from finegrain.train.methods import METHODS
        from finegrain.train.models import MODELS

        found = (METHODS.module_of(self.method), MODELS.module_of(self.model))
        return tuple(dict.fromkeys(m for m in found if m and not m.startswith("finegrain.")))

    def identity_hash(self, exclude: tuple[str, ...] = ()) -> str:
        """8 hex digits of the SHA-256 of :meth:`identity` without ``exclude`` (canonical JSON)."""
        rest = {k: v for k, v in self.identity().items() if k not in exclude}
        text = json.dumps(rest, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`. The extras of a recorded configuration
        (:data:`RECORD_EXTRAS`) are ignored; any other unknown key is an error."""
        if data.get("extra"):  # finegrain <= 0.2 kept unnamed settings there
            raise FinegrainError(
                f"a recorded 'extra' setting is no longer supported: {data['extra']}"
            )
        data = {k: v for k, v in data.items() if k != "extra"}
        if "tau" in data:  # recorded before τ became the method's option: it is that option
            data = _tau_into_options(data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names - RECORD_EXTRAS
        if unknown:
            raise FinegrainError(f"unknown TrainConfig field(s): {', '.join(sorted(unknown))}")
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        """Read a ``config.json`` written by :func:`finegrain.train.train`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def differences(self, recorded: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """``{field: (recorded value, this value)}`` for every field that changes results
        (all but :data:`RUNTIME_FIELDS`) on which ``recorded`` (a run's ``config.json``, or
        :meth:`to_dict` of another config) differs from this config."""
        previous = type(self).from_dict(recorded)
        old = {**previous.identity(), **{k: getattr(previous, k) for k in LOCATION_FIELDS}}
        new = {**self.identity(), **{k: getattr(self, k) for k in LOCATION_FIELDS}}
        return {
            k: (old.get(k), new.get(k))
            for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)
        }


_NOT_IDENTITY = RUNTIME_FIELDS | LOCATION_FIELDS


def recorded_method(recorded: Mapping[str, Any]):
    """The :class:`~finegrain.train.methods.Method` of a recorded configuration (a run's
    ``config.json``, complete or not), its options applied, a τ recorded before 0.3.0
    included."""
    from finegrain.train.methods import get_method

    data = _tau_into_options(dict(recorded)) if "tau" in recorded else recorded
    return get_method(str(data.get("method", PAPER_METHOD)), data.get("method_options") or {})


def _tau_into_options(data: dict[str, Any]) -> dict[str, Any]:
    """A recorded configuration whose ``tau`` (finegrain < 0.3.0) is moved into the method's
    options when its method uses τ, and dropped when it does not (it never acted)."""
    from finegrain.train.methods import get_method

    data = dict(data)
    tau = data.pop("tau")
    options = dict(data.get("method_options") or {})
    if "tau" not in options and get_method(str(data.get("method", PAPER_METHOD)), options).uses_tau:
        options["tau"] = float(tau)
    data["method_options"] = options
    return data


def format_differences(differences: dict[str, tuple[Any, Any]]) -> str:
    """``iterations: 100 -> 150, lr: 0.001 -> 0.0001``."""
    return ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in differences.items())
