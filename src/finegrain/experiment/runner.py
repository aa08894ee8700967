"""Run the benchmark: data (phantom / MIMIC / an existing index and cache) -> the grid of
training runs -> selection, tables, figures and the HTML report.

Every step skips work already done, so a killed benchmark resumes where it stopped: the data
steps are skipped when their outputs exist, finished runs (``done`` marker) are skipped, and an
unfinished run resumes from its last checkpoint (``train(config, resume=True)``).
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from finegrain.experiment.grid import RunSpec, grid_for
from finegrain.experiment.presets import Preset
from finegrain.experiment.selection import DONE_MARKER
from finegrain.io import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSource:
    """Where the images come from: exactly one of ``phantom``, ``mimic`` or ``index``+``cache``."""

    phantom: bool = False
    mimic: Path | None = None
    index: Path | None = None
    cache: Path | None = None

    def __post_init__(self) -> None:
        chosen = sum([self.phantom, self.mimic is not None, self.index is not None])
        if chosen != 1:
            raise ValueError("choose exactly one data source: phantom, mimic root, or index+cache")
        if (self.index is None) != (self.cache is None):
            raise ValueError("--index and --cache go together")

    def describe(self) -> str:
        if self.phantom:
            return "phantom"
        if self.mimic is not None:
            return f"mimic:{self.mimic}"
        return f"index:{self.index} cache:{self.cache}"


@dataclass
class BenchmarkData:
    index: Path
    cache: Path
    seconds: dict[str, float] = field(default_factory=dict)


def prepare_data(
    source: DataSource, out: str | Path, preset: Preset, *, progress: bool = True
) -> BenchmarkData:
    """Make (or reuse) the index table and image cache of ``source`` under ``out/data``."""
    out = Path(out)
    if source.index is not None:
        return BenchmarkData(Path(source.index), Path(source.cache))
    data = out / "data"
    seconds: dict[str, float] = {}
    if source.phantom:
        from finegrain.data.phantom import make_phantom

        root = data / "phantom"
        marker = data / "phantom.done"
        if not marker.exists():
            t0 = time.perf_counter()
            log.info(
                "making the phantom: %d studies at %d px",
                preset.phantom_studies,
                preset.phantom_size,
            )
            make_phantom(
                root,
                studies=preset.phantom_studies,
                size=preset.phantom_size,
                seed=0,
                progress=progress,
            )
            atomic_write_text(marker, "")
            seconds["phantom"] = time.perf_counter() - t0
    else:
        root = Path(source.mimic)
    index_path = data / "index.csv"
    if not index_path.exists():
        from finegrain.data.index import write_index
        from finegrain.data.mimic import index_mimic

        t0 = time.perf_counter()
        frame, summary = index_mimic(root, views=tuple(preset.views), progress=progress)
        log.info("index: %s", summary.format().replace("\n", "; "))
        write_index(frame, index_path)
        seconds["index"] = time.perf_counter() - t0
    cache_dir = data / f"cache-{preset.image_size}"
    if not (cache_dir / "cache.json").exists():
        from finegrain.data.cache import prepare

        t0 = time.perf_counter()
        prepare(index_path, cache_dir, size=preset.image_size, progress=progress)
        seconds["prepare"] = time.perf_counter() - t0
    return BenchmarkData(index_path, cache_dir, seconds)


def train_config(spec: RunSpec, preset: Preset, data: BenchmarkData, run_dir: Path, **extra):
    """The :class:`~finegrain.train.config.TrainConfig` of one run of the grid."""
    from finegrain.train.config import TrainConfig

    values = dict(
        index=str(data.index),
        cache=str(data.cache),
        observation=spec.observation,
        method=spec.method,
        tau=spec.tau if spec.tau is not None else preset.tau,
        seed=spec.seed,
        iterations=preset.iterations,
        batch_size=preset.batch_size,
        checkpoint_every=preset.checkpoint_every,
        lr=preset.lr,
        model=preset.model,
        pretrained=preset.pretrained,
        out=str(run_dir),
        eval_splits=("validate", "test"),
        augment=preset.augment,
    )
    optional = dict(num_workers=preset.num_workers, **extra)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    for key, value in optional.items():
        if value is None:
            continue
        if key not in names:
            raise ValueError(f"TrainConfig has no field {key!r} (got {key}={value!r})")
        values[key] = value
    return TrainConfig(**values)


class StopBenchmark(Exception):
    """Raised by a ``before_run`` hook to stop the grid (the runs done so far are kept)."""


@dataclass
class GridOutcome:
    trained: list[RunSpec] = field(default_factory=list)
    skipped: list[RunSpec] = field(default_factory=list)
    seconds: float = 0.0


def run_grid(
    specs: Sequence[RunSpec],
    runs_root: str | Path,
    preset: Preset,
    data: BenchmarkData,
    *,
    device: str | None = None,
    progress: bool = True,
    max_runs: int | None = None,
    before_run: Callable[[RunSpec, Path], None] | None = None,
) -> GridOutcome:
    """Train every run of ``specs`` that is not finished yet.

    ``max_runs`` stops after that many runs were trained in this call; ``before_run(spec,
    run_dir)`` is called before each run that will be trained.
    """
    from tqdm.auto import tqdm

    from finegrain.train.loop import train

    outcome = GridOutcome()
    t0 = time.perf_counter()
    bar = tqdm(specs, desc="benchmark runs", unit="run", disable=not progress)
    for spec in bar:
        run_dir = spec.directory(runs_root)
        if (run_dir / DONE_MARKER).exists():
            outcome.skipped.append(spec)
            continue
        if max_runs is not None and len(outcome.trained) >= max_runs:
            break
        bar.set_postfix_str(spec.label)
        if before_run is not None:
            before_run(spec, run_dir)
        extra = {"device": device} if device else {}
        config = train_config(spec, preset, data, run_dir, **extra)
        resume = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir())
        log.info("%s run %s", "resuming" if resume else "starting", spec.label)
        train(config, resume=resume, progress=False)
        if not (run_dir / DONE_MARKER).exists():
            raise RuntimeError(f"{run_dir}: train() returned but wrote no {DONE_MARKER!r} marker")
        outcome.trained.append(spec)
    bar.close()
    outcome.seconds = time.perf_counter() - t0
    return outcome


def versions() -> dict[str, str]:
    """Python, torch, torchvision, numpy, pandas, matplotlib and finegrain versions."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in (
        "finegrain",
        "torch",
        "torchvision",
        "numpy",
        "pandas",
        "scikit-learn",
        "matplotlib",
    ):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class BenchmarkResult:
    out: Path
    grid: GridOutcome
    outputs: object  # finegrain.experiment.outputs.Outputs
    seconds: dict[str, float]


def run_benchmark(
    out: str | Path,
    preset: Preset,
    source: DataSource,
    *,
    methods: Sequence[str] | None = None,
    taus: Sequence[float] | None = None,
    device: str | None = None,
    progress: bool = True,
    max_runs: int | None = None,
    before_run: Callable[[RunSpec, Path], None] | None = None,
) -> BenchmarkResult:
    """The whole benchmark; see the module docstring. Returns what was done and written."""
    from finegrain.experiment.outputs import write_outputs

    out = Path(out)
    t_start = time.perf_counter()
    specs = grid_for(
        preset.selections,
        observations=preset.observations,
        seeds=preset.seeds,
        tau=preset.tau,
        taus=taus,
        methods=methods,
    )
    config = {
        "preset": preset.to_dict(),
        "data": source.describe(),
        "methods": list(methods) if methods else None,
        "taus": list(taus) if taus else None,
        "device": device,
        "runs": [s.label for s in specs],
        "versions": versions(),
    }
    atomic_write_json(out / "benchmark.json", config)
    data = prepare_data(source, out, preset, progress=progress)
    grid = run_grid(
        specs,
        out / "runs",
        preset,
        data,
        device=device,
        progress=progress,
        max_runs=max_runs,
        before_run=before_run,
    )
    t_report = time.perf_counter()
    outputs = write_outputs(out, specs, preset=preset, methods=methods, taus=taus, config=config)
    seconds = dict(data.seconds)
    seconds["runs"] = grid.seconds
    seconds["report"] = time.perf_counter() - t_report
    seconds["total"] = time.perf_counter() - t_start
    return BenchmarkResult(out, grid, outputs, seconds)
