"""The plan of a benchmark: every run of its grid as a record (spec, folder, configuration) and
what its tables compare, made once and handed on.

The benchmark flows one way, each stage entered once and given the records of the one before:

* **plan** (:func:`plan_benchmark`, :func:`plan_runs`): each run's folder and
  :class:`~finegrain.train.config.TrainConfig`, from its :class:`RunSpec`;
* **train** (:func:`finegrain.experiment.runner.run_grid`): the planned runs not finished yet;
* **select** (:func:`finegrain.experiment.selection.select_runs`): each finished run's
  checkpoint chosen on validation (:class:`~finegrain.experiment.selection.RunSelection`: the
  record with its configuration, method and selection);
* **aggregate** and **write** (:mod:`finegrain.experiment.outputs`).

>>> from finegrain.experiment.presets import PAPER
>>> plan = plan_benchmark(PAPER.replace(observations=("Edema",), seeds=1), "runs")
>>> [r.spec.variant for r in plan.runs]
['u-ignore', 'u-zeros', 'u-ones', 'pu-rm-tau0.3']
>>> plan.table_cells(plan.selections[0])[-1], plan.reference_cell(plan.selections[0])
(('pu-rm', 0.3), ('u-ones', None))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finegrain.experiment.grid import (
    RunSpec,
    Selection,
    data_paths,
    get_selections,
    grid_for,
    run_directory,
    train_config,
)

if TYPE_CHECKING:  # pragma: no cover
    from finegrain.experiment.presets import Preset
    from finegrain.train.config import TrainConfig

Cell = tuple[str, float | None]


@dataclass(frozen=True)
class PlannedRun:
    """One run of the plan: its spec, its folder and its configuration (with the data's paths
    once they are known)."""

    spec: RunSpec
    directory: Path
    config: TrainConfig

    @property
    def label(self) -> str:
        return self.spec.label


def plan_runs(
    specs: Sequence[RunSpec],
    runs_root: str | Path,
    preset: Preset,
    data: Any = None,
    *,
    device: str | None = None,
) -> list[PlannedRun]:
    """Each spec's folder under ``runs_root`` and its configuration (``data``: the index and
    cache paths, ``None`` when only the folders are needed, as for a report)."""
    extra = {"device": device} if device else {}
    planned = []
    for spec in specs:
        directory = run_directory(spec, preset, runs_root)
        config = train_config(spec, preset, data, directory, **extra)
        planned.append(PlannedRun(spec, directory, config))
    return planned


@dataclass(frozen=True)
class Plan:
    """A benchmark's planned runs and what its tables compare: ``selections`` (each with its
    methods and reference), the request's ``tau`` (``None``: each method's own), ``methods``
    (replacing the tables' methods) and ``taus`` (replacing a sweep's)."""

    runs: tuple[PlannedRun, ...]
    observations: tuple[str, ...]
    selections: tuple[Selection, ...] = ()
    tau: float | None = None
    methods: tuple[str, ...] | None = None
    taus: tuple[float, ...] | None = None

    def with_data(self, data: Any) -> Plan:
        """The plan with the data's ``index`` and ``cache`` in every run's configuration (the
        folders do not depend on where the data lie)."""
        paths = data_paths(data)
        runs = tuple(
            dataclasses.replace(r, config=dataclasses.replace(r.config, **paths)) for r in self.runs
        )
        return dataclasses.replace(self, runs=runs)

    @property
    def specs(self) -> list[RunSpec]:
        return [r.spec for r in self.runs]

    @property
    def settings(self) -> list[tuple]:
        """The combinations of the grid's extra axes, in order (``[()]`` without axes)."""
        return list(dict.fromkeys(r.spec.settings for r in self.runs)) or [()]

    def table_cells(self, selection: Selection) -> list[Cell]:
        """The rows of ``selection``'s table (a sweep's: its baselines)."""
        return selection.table_cells(tau=self.tau, methods=self.methods)

    def sweep_cells(self, selection: Selection) -> list[Cell]:
        """The swept method's cells of a sweep (none for a table)."""
        return selection.sweep_cells(self.taus)

    def reference_cell(self, selection: Selection) -> Cell:
        """The cell ``selection`` compares its others with."""
        return selection.reference_cell(self.tau)

    def compared_cells(self) -> list[Cell]:
        """Every table's cells, once each, in order (the figures' variants)."""
        cells = [c for s in self.selections if not s.is_sweep for c in self.table_cells(s)]
        return list(dict.fromkeys(cells))


def plan_benchmark(
    preset: Preset,
    runs_root: str | Path,
    data: Any = None,
    *,
    methods: Sequence[str] | None = None,
    tau: float | None = None,
    taus: Sequence[float] | None = None,
    axes: Mapping[str, Sequence] | None = None,
    device: str | None = None,
) -> Plan:
    """The plan of the preset's selections: every run (:func:`grid_for`, then
    :func:`plan_runs`) and what the tables compare."""
    specs = grid_for(
        preset.selections,
        observations=preset.observations,
        seeds=preset.seeds,
        tau=tau,
        taus=taus,
        methods=methods,
        axes=axes,
    )
    return Plan(
        tuple(plan_runs(specs, runs_root, preset, data, device=device)),
        tuple(preset.observations),
        tuple(get_selections(preset.selections)),
        tau=tau,
        methods=tuple(methods) if methods else None,
        taus=tuple(taus) if taus else None,
    )
