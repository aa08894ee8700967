"""The grid: which runs an experiment needs, as axes over run settings, and where each lives.

A run is its configuration (:meth:`finegrain.train.config.TrainConfig.identity`). A grid is a
set of *axes* over configuration fields: observations, (method, τ) cells, seeds, and any other
``TrainConfig`` field (iterations, model, lr, method options ...). The benchmark's selections
(the paper's Table 2, Table 3, Figure 4: :data:`SELECTIONS`) and every study are grids.

A run of the grid is a :class:`RunSpec`. Its folder under a ``runs/`` root is
``<group>/<observation>/<variant>/seed<k>``: the readable part names the grid's axes
(``pu-rm-tau0.3``, ``u-ones-iterations600``; τ, the method's own option, only for methods whose
loss uses it), and
``<group>`` is 8 hex digits of the hash of every other setting of the run
(:meth:`~finegrain.train.config.TrainConfig.identity_hash`), so runs that differ in any
setting never share a folder. Runs shared by several selections are listed once.

>>> specs = grid_for(["table2"], observations=["Edema"], seeds=1)
>>> [s.label for s in specs]
['Edema/u-ignore/seed0', 'Edema/u-zeros/seed0', 'Edema/u-ones/seed0', 'Edema/pu-rm-tau0.3/seed0']
>>> grid_for(["table2"], observations=["Edema"], seeds=1, methods=["u-ones"],
...          axes={"iterations": [300, 600]})[1].label
'Edema/u-ones-iterations600/seed0'
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finegrain.errors import FinegrainError
from finegrain.observations import check_observation
from finegrain.registry import Registry
from finegrain.train.config import CELL_FIELDS, FIXED_FIELDS
from finegrain.train.methods import BASELINE_METHOD, METHODS, PAPER_METHOD

if TYPE_CHECKING:  # pragma: no cover
    from finegrain.experiment.presets import Preset


def format_tau(tau: float) -> str:
    """``0.3`` -> ``"0.3"``; stable text for directory names and tables."""
    return f"{float(tau):g}"


def display_name(method: str) -> str:
    """The name tables and figures use (``"PU-RM"``), from the method registry."""
    return METHODS[method].display_name if method in METHODS else method


def cell(method: str, tau: float | None = None) -> tuple[str, float | None]:
    """A grid cell ``(method, τ)``: the method at ``tau`` when its loss uses τ (``None``: the
    method's own τ), its τ read from the method (``None`` for a τ-free one)."""
    return (method, check_method(method).at_tau(tau).tau)


def check_method(method: str):
    """The registered method ``method`` (a :class:`FinegrainError` lists the known ones)."""
    return METHODS.get(method)


def format_setting(name: str, value: Any) -> str:
    """``iterations600``, ``modeldensenet-tiny``, ``method_options-q_atypical0.5``: folder-safe."""
    if isinstance(value, float):
        text = format_tau(value)
    elif isinstance(value, dict | list | tuple):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        text = "-".join(f"{k}{v}" for k, v in items)
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{name}-{text}").strip("-")
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{name}{text}").strip("-")


@dataclass(frozen=True, order=True)
class RunSpec:
    """One run of a grid: its cell (observation, method, τ, seed) and the values of the grid's
    other axes (``settings``: sorted ``(field, value)`` pairs)."""

    observation: str
    method: str
    tau: float | None
    seed: int
    settings: tuple[tuple[str, Any], ...] = ()

    @property
    def variant(self) -> str:
        """``pu-rm-tau0.3``, ``u-ones``, ``u-ones-iterations600``: the method, τ (for methods
        whose loss uses it) and the grid's other axes."""
        parts = [self.method]
        if self.tau is not None:
            parts.append(f"tau{format_tau(self.tau)}")
        parts += [format_setting(k, v) for k, v in self.settings]
        return "-".join(parts)

    @property
    def label(self) -> str:
        return f"{self.observation}/{self.variant}/seed{self.seed}"

    @property
    def display(self) -> str:
        """The name of its variant in tables: ``PU-RM``, ``U-Ones (iterations 600)``."""
        name = display_name(self.method)
        if self.settings:
            name += " (" + ", ".join(f"{k} {_value_text(v)}" for k, v in self.settings) + ")"
        return name

    def config_values(self) -> dict[str, Any]:
        """The TrainConfig fields this run sets (its cell and its axes' values); its τ is the
        method's option, set only where it is not the method's own default."""
        values: dict[str, Any] = dict(self.settings)
        values.update(observation=self.observation, method=self.method, seed=self.seed)
        options = dict(values.get("method_options") or {})
        if self.tau is not None and self.tau != check_method(self.method).tau:
            options["tau"] = self.tau
        if options or "method_options" in values:
            values["method_options"] = options
        return values

    def differences(self, config: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
        """``{field: (recorded, this run's)}`` where a recorded configuration (a run's
        ``config.json``) is not this run's."""
        from finegrain.train.config import recorded_method

        recorded = {
            "observation": config.get("observation"),
            "method": config.get("method"),
            "seed": config.get("seed"),
            "tau": recorded_method(config).tau,
            **{k: _recorded(config.get(k)) for k, _ in self.settings},
        }
        wanted = {"observation": self.observation, "method": self.method, "seed": self.seed,
                  "tau": self.tau, **dict(self.settings)}  # fmt: skip
        return {k: (recorded[k], v) for k, v in wanted.items() if recorded[k] != v}

    def readable_fields(self) -> tuple[str, ...]:
        """The identity fields its folder names spell out (the rest go into the hash)."""
        return ("observation", "method", "tau", "seed", *(k for k, _ in self.settings))

    def directory(self, runs_root: str | Path, group: str) -> Path:
        """``<runs_root>/<group>/<observation>/<variant>/seed<k>``."""
        return Path(runs_root) / group / self.observation / self.variant / f"seed{self.seed}"


def _recorded(value: Any) -> Any:
    """A recorded (JSON) value as an axis holds it: lists are tuples."""
    return tuple(value) if isinstance(value, list) else value


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return format_tau(value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


@dataclass(frozen=True)
class Selection:
    """One of the paper's results as a grid of (method, τ) cells with its table.

    ``methods`` are the table's rows (``--methods`` replaces them); ``reference`` is the method
    every other one is compared with (paired difference, DeLong); ``swept`` (with ``taus``) is
    a method trained at every τ of a sweep, the others being its baselines (Figure 4).
    """

    name: str
    title: str
    methods: tuple[str, ...]
    reference: str = BASELINE_METHOD
    swept: str = ""
    taus: tuple[float, ...] = ()

    @property
    def is_sweep(self) -> bool:
        return bool(self.swept)

    def cells(
        self,
        *,
        tau: float | None = None,
        methods: Sequence[str] | None = None,
        taus: Sequence[float] | None = None,
    ) -> list[tuple[str, float | None]]:
        """The (method, τ) cells: the table's methods at ``tau`` (``None``: each method's own;
        ``methods`` replaces them, except in a sweep), then the swept method at every τ of the
        sweep (``taus`` replaces it)."""
        rows = self.methods if methods is None or self.is_sweep else tuple(methods)
        return [cell(m, tau) for m in rows] + self.sweep_cells(taus)

    def sweep_cells(self, taus: Sequence[float] | None = None) -> list[tuple[str, float | None]]:
        """The swept method at every τ of the sweep (none for a table)."""
        if not self.is_sweep:
            return []
        return [cell(self.swept, float(t)) for t in (taus or self.taus)]

    def table_cells(
        self, *, tau: float | None = None, methods: Sequence[str] | None = None
    ) -> list[tuple[str, float | None]]:
        """The table's rows as cells (a sweep's: its baselines), at ``tau``."""
        rows = self.baselines if self.is_sweep else self.table_methods(methods)
        return [cell(m, tau) for m in rows]

    def reference_cell(self, tau: float | None = None) -> tuple[str, float | None]:
        """The cell every other one is compared with (paired difference, DeLong)."""
        return cell(self.reference, tau)

    def table_methods(self, methods: Sequence[str] | None = None) -> list[str]:
        """The table's rows (none for a sweep: its table has a row per τ)."""
        if self.is_sweep:
            return []
        return list(methods) if methods is not None else list(self.methods)

    @property
    def baselines(self) -> tuple[str, ...]:
        """A sweep's methods other than the swept one (drawn as lines beside it)."""
        return tuple(m for m in self.methods if m != self.swept)


#: The paper's results by name (filled at import); ``all`` names every one.
SELECTIONS: Registry[Selection] = Registry("selection")
FIGURE4_TAUS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
for _selection in (
    Selection(
        "table2",
        "Table 2: AUC^FG (validation) of the uncertainty policies and PU-RM",
        ("u-ignore", "u-zeros", BASELINE_METHOD, PAPER_METHOD),
    ),
    Selection(
        "quick-start",
        "Table 2 and the best fine-label method (validation AUC^FG; ordinal: docs/study.md "
        "section 7)",
        ("u-ignore", "u-zeros", BASELINE_METHOD, PAPER_METHOD, "ordinal"),
    ),
    Selection(
        "table3",
        "Table 3: ablation of the risk-modulation (validation AUC^FG)",
        ("u-ignore", "p-rm", PAPER_METHOD),
    ),
    Selection(
        "figure4",
        "Figure 4: PU-RM AUC^FG (validation) against τ",
        (BASELINE_METHOD, "u-ignore", PAPER_METHOD),
        swept=PAPER_METHOD,
        taus=FIGURE4_TAUS,
    ),
    Selection(
        "control",
        "Positive control: CE vs PCE under label noise (validation AUC^FG; the control's "
        "coarse AUC against image truth is its own table)",
        ("u-ignore",),
        reference="u-ignore",
        swept="pce",
        taus=(0.1, 0.3, 0.5),
    ),
):
    SELECTIONS.register(_selection.name, _selection)


def get_selections(names: Iterable[str]) -> list[Selection]:
    """The selections called ``names`` (``all``: every registered one), in order."""
    names = list(names)
    if "all" in names:
        names = list(SELECTIONS)
    return [SELECTIONS.get(n) for n in names]


def check_axes(axes: Mapping[str, Sequence[Any]] | None) -> tuple[tuple[str, tuple], ...]:
    """The extra axes of a grid as sorted ``(field, values)``; each field must be a
    ``TrainConfig`` field that is neither a cell field nor fixed by the benchmark, and each
    value must satisfy the field's declared rule (``TrainConfig.CONSTRAINTS``)."""
    from finegrain.constraints import violation
    from finegrain.train.config import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    out = []
    for name, values in sorted((axes or {}).items()):
        if name in CELL_FIELDS:
            raise FinegrainError(f"grid axis {name!r} is a cell of the grid: use its own option")
        if name in FIXED_FIELDS or name not in fields:
            raise FinegrainError(
                f"grid axis {name!r} is not a setting of a run; choose from: "
                + ", ".join(sorted(fields - CELL_FIELDS - FIXED_FIELDS))
            )
        values = tuple(values)
        if not values:
            raise FinegrainError(f"grid axis {name!r} has no values")
        for value in values:  # the field's declared rule, as for an option
            wanted = violation(value, TrainConfig.CONSTRAINTS.get(name, ()))
            if wanted is not None:
                raise FinegrainError(f"grid axis {name!r}: {name} must be {wanted}, got {value!r}")
        out.append((name, values))
    return tuple(out)


@dataclass(frozen=True)
class Grid:
    """Observations × (method, τ) cells × the extra axes × seeds ``0..seeds-1``."""

    observations: tuple[str, ...]
    cells: tuple[tuple[str, float | None], ...]
    seeds: int
    axes: tuple[tuple[str, tuple], ...] = field(default=())

    def specs(self) -> list[RunSpec]:
        """Every run, seed-major (all variants of seed 0 first, so a partial grid already has
        one seed of everything), without duplicates."""
        if self.seeds < 1:
            raise FinegrainError(f"seeds must be >= 1, got {self.seeds}")
        observations = [check_observation(o) for o in self.observations]
        names = [name for name, _ in self.axes]
        combos = [
            tuple(zip(names, c, strict=True)) for c in itertools.product(*(v for _, v in self.axes))
        ]
        seen: set[RunSpec] = set()
        specs: list[RunSpec] = []
        for seed in range(self.seeds):
            for obs in observations:
                for method, tau in self.cells:
                    for settings in combos:
                        spec = RunSpec(obs, method, tau, seed, settings)
                        if spec not in seen:
                            seen.add(spec)
                            specs.append(spec)
        return specs


def grid_for(
    selections: Iterable[str],
    *,
    observations: Sequence[str],
    seeds: int,
    tau: float | None = None,
    taus: Sequence[float] | None = None,
    methods: Sequence[str] | None = None,
    axes: Mapping[str, Sequence[Any]] | None = None,
) -> list[RunSpec]:
    """All runs needed by ``selections`` (``all`` = every registered one), for each observation,
    seeds ``0..seeds-1`` and every combination of the extra ``axes`` (``{"iterations": [300,
    600]}``), in a stable order without duplicates.

    ``methods`` (if given) replaces the methods of the tables; ``tau`` sets their τ (``None``:
    each method's own); ``taus`` replaces a sweep's τ.
    """
    cells: list[tuple[str, float | None]] = []
    for selection in get_selections(selections):
        for found in selection.cells(tau=tau, methods=methods, taus=taus):
            if found not in cells:
                cells.append(found)
    return Grid(tuple(observations), tuple(cells), seeds, check_axes(axes)).specs()


def train_config(spec: RunSpec, preset: Preset, data: Any, run_dir: Path | str | None, **extra):
    """The :class:`~finegrain.train.config.TrainConfig` of one run of the grid: the preset's
    training template, then ``extra`` (non-``None`` runtime choices such as ``device``), then
    the run's cell and axes (:meth:`RunSpec.config_values`), data and directory (``None``:
    not known yet; what the run's identity does not depend on). ``data`` has the ``index``
    and ``cache`` paths (:class:`~finegrain.experiment.runner.BenchmarkData`)."""
    from finegrain.train.config import TrainConfig

    values = {**preset.train, **{k: v for k, v in extra.items() if v is not None}}
    values.update(spec.config_values())
    values.update(
        data_paths(data),
        out=str(run_dir) if run_dir is not None else "",
        eval_splits=("validate", "test"),
    )
    try:
        return TrainConfig(**values)
    except TypeError as exc:  # an unknown keyword in extra
        raise FinegrainError(f"not a TrainConfig field: {exc}") from None


def data_paths(data: Any) -> dict[str, str]:
    """A run's ``index`` and ``cache`` from ``data`` (its ``index`` and ``cache`` paths, made
    absolute so that the run's record works from anywhere; empty when not known yet)."""
    if data is None:
        return {"index": "", "cache": ""}
    return {"index": str(Path(data.index).resolve()), "cache": str(Path(data.cache).resolve())}


def run_directory(spec: RunSpec, preset: Preset, runs_root: str | Path) -> Path:
    """Where ``spec``'s run lives under ``runs_root``: its readable key under the hash of every
    other setting of the run (:meth:`RunSpec.directory`)."""
    config = train_config(spec, preset, None, None)
    return spec.directory(runs_root, config.identity_hash(exclude=spec.readable_fields()))


def migrate_runs(out: str | Path) -> list[tuple[Path, Path]]:
    """Move the runs of a benchmark or study folder written by finegrain 0.2
    (``runs/<observation>/<variant>/seed<k>``, under ``out/runs`` and ``out/conditions/*/runs``)
    into their settings group (:meth:`RunSpec.directory`), once; returns ``(old, new)`` pairs.
    A run whose new folder already exists is left where it is (and not listed)."""
    import os

    from finegrain.train.config import TrainConfig

    out = Path(out)
    moved = []
    for runs_root in [out / "runs", *sorted(out.glob("conditions/*/runs"))]:
        for config_path in sorted(runs_root.glob("*/*/seed*/config.json")):
            run = config_path.parent
            config = TrainConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
            tau = config.training_method().tau
            spec = RunSpec(config.observation, config.method, tau, config.seed)
            if run != runs_root / spec.observation / spec.variant / f"seed{spec.seed}":
                continue  # not a 0.2 run folder
            target = spec.directory(runs_root, config.identity_hash(spec.readable_fields()))
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(run, target)
            moved.append((run, target))
            for empty in (run.parent, run.parent.parent):
                if not any(empty.iterdir()):
                    empty.rmdir()
    return moved


def axes_of(specs: Sequence[RunSpec]) -> list[str]:
    """The extra axes' fields the runs set, in order."""
    return list(dict.fromkeys(k for s in specs for k, _ in s.settings))


def settings_text(settings: Sequence[tuple[str, Any]]) -> str:
    """``iterations=600, lr=0.001`` (a results-table column); ``""`` without extra axes."""
    return ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in settings)
