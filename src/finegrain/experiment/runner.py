"""Run the benchmark: data (phantom / MIMIC / an existing index and cache) -> the grid of
training runs -> selection, tables, figures and the HTML report.

Every step skips work already done, so a killed benchmark resumes where it stopped: the data
steps are skipped when their outputs exist, finished runs (``done`` marker) are skipped, and an
unfinished run resumes from its last checkpoint (``train(config, resume=True)``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from finegrain.cpu_kernels import call_pinned, machine
from finegrain.environment import versions
from finegrain.errors import FinegrainError, option
from finegrain.experiment.grid import RunSpec
from finegrain.experiment.launchers import (
    Launcher,
    LocalLauncher,
    RunsFailed,
    RunTask,
    execute,
)
from finegrain.experiment.plan import PlannedRun, plan_benchmark
from finegrain.experiment.presets import Preset, phantom_condition
from finegrain.io import atomic_write_json, atomic_write_text
from finegrain.train.rundir import RunDirectory

log = logging.getLogger(__name__)

#: The benchmark's request (preset, data, methods, versions), written before training.
BENCHMARK_FILE = "benchmark.json"


class DataMismatch(FinegrainError):
    """Data already under the output folder was made with other settings than requested."""


@dataclass(frozen=True)
class DataSource:
    """Where the images come from: exactly one of ``phantom``, ``mimic``, ``openi`` or
    ``index``+``cache``. ``openi_views``: the view table of OpenI's PNG images (default:
    ``nlmcxr_dicom_metadata.csv.gz`` in the OpenI root when it is there)."""

    phantom: bool = False
    mimic: Path | None = None
    index: Path | None = None
    cache: Path | None = None
    openi: Path | None = None
    openi_views: Path | None = None
    #: ``make_phantom`` keywords over the preset's (a study's condition: its knobs)
    phantom_options: dict = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        chosen = sum(
            [self.phantom, self.mimic is not None, self.index is not None, self.openi is not None]
        )
        if chosen != 1:
            raise FinegrainError(
                "choose exactly one data source: phantom, mimic root, openi root, or index+cache"
            )
        if (self.index is None) != (self.cache is None):
            raise FinegrainError("--index and --cache go together")

    def describe(self) -> str:
        if self.phantom:
            return "phantom"
        if self.mimic is not None:
            return f"mimic:{self.mimic}"
        if self.openi is not None:
            return f"openi:{self.openi}"
        return f"index:{self.index} cache:{self.cache}"

    def option(self) -> str:
        """The source as its user gave it: ``--mimic`` on the command line, ``mimic=...`` in
        Python (:func:`~finegrain.errors.option`)."""
        if self.phantom:
            return option("phantom=True", "--data phantom")
        if self.mimic is not None:
            return option("mimic=...", "--mimic")
        if self.openi is not None:
            return option("openi=...", "--openi")
        return option("index=... and cache=...", "--index/--cache")


@dataclass
class BenchmarkData:
    index: Path
    cache: Path
    seconds: dict[str, float] = field(default_factory=dict)


def prepare_data(
    source: DataSource, out: str | Path, preset: Preset, *, progress: bool = True
) -> BenchmarkData:
    """Make (or reuse) the index table and image cache of ``source`` under ``out/data``.

    The phantom (``source.phantom``) is made with :func:`phantom_options`; one already there is
    reused only when it was made with those settings (:func:`check_phantom`)."""
    out = Path(out)
    if source.index is not None:
        return BenchmarkData(Path(source.index), Path(source.cache))
    data = out / "data"
    seconds: dict[str, float] = {}
    if source.phantom:
        from finegrain.data.phantom import make_phantom

        root = data / "phantom"
        marker = data / "phantom.done"
        options = phantom_options(preset, source)
        kernels = preset.setting("cpu_kernels")  # numpy's too: they draw the phantom
        if marker.exists():
            check_phantom(root, options)
            drawn = marker.read_text(encoding="utf-8").strip() or "native"
            if drawn != kernels:
                log.warning("%s was drawn with the %s CPU kernels, not %s", root, drawn, kernels)
        else:
            t0 = time.perf_counter()
            overrides = {**preset.phantom, **source.phantom_options}
            log.info(
                "making the phantom: %d studies at %d px%s",
                options["studies"],
                options["size"],
                f" ({overrides})" if overrides else "",
            )
            call_pinned(kernels, make_phantom, root, progress=progress, **options)
            atomic_write_text(marker, kernels)
            seconds["phantom"] = time.perf_counter() - t0
    elif source.openi is not None:
        root = Path(source.openi)
    else:
        root = Path(source.mimic)
    index_path = data / "index.csv"
    if not index_path.exists():
        from finegrain.data.index import write_index
        from finegrain.data.mimic import index_mimic

        t0 = time.perf_counter()
        if source.openi is not None:
            frame, summary = _index_openi(source, tuple(preset.views), progress)
        else:
            frame, summary = index_mimic(root, views=tuple(preset.views), progress=progress)
        log.info("index: %s", summary.format().replace("\n", "; "))
        # index_mimic gives paths relative to the MIMIC root; the index table's contract is
        # relative to the index file's folder (or absolute)
        frame["path"] = [
            p if Path(p).is_absolute() else os.path.relpath(root / p, index_path.parent)
            for p in frame["path"].astype(str)
        ]
        write_index(frame, index_path)
        seconds["index"] = time.perf_counter() - t0
    cache_dir = data / f"cache-{preset.image_size}"
    from finegrain.data.cache import is_finished_cache

    if not is_finished_cache(cache_dir):
        from finegrain.data.cache import prepare

        t0 = time.perf_counter()
        prepare(index_path, cache_dir, size=preset.image_size, progress=progress)
        seconds["prepare"] = time.perf_counter() - t0
    return BenchmarkData(index_path, cache_dir, seconds)


def phantom_options(preset: Preset, source: DataSource) -> dict:
    """The ``make_phantom`` keywords of a benchmark's phantom: the preset's sizes, its phantom
    condition (``preset.phantom``), then the source's options (a study's condition), each over
    the one before."""
    return {
        "studies": preset.phantom_studies,
        "size": preset.phantom_size,
        "seed": 0,
        "eval_studies": preset.phantom_eval_studies,
        **preset.phantom,
        **source.phantom_options,
    }


def check_phantom(root: Path, options: Mapping) -> None:
    """Refuse to reuse the phantom at ``root`` when its ``phantom.json`` records other settings
    than ``make_phantom(**options)`` would write (a :class:`DataMismatch` names them)."""
    from finegrain.data.phantom.writer import SETTINGS_FILE, phantom_differences

    if not (root / SETTINGS_FILE).is_file():  # finegrain < 0.2 wrote none: nothing to compare
        log.warning("%s has no %s: its settings cannot be checked", root, SETTINGS_FILE)
        return
    differences = phantom_differences(root, **options)
    if differences:
        hint = ""
        if differences[0].startswith("design: bands"):  # a folder of finegrain 0.2-0.3
            hint = (
                " (a phantom of finegrain 0.2-0.3: --preset demo-v0.3 reproduces that demo, "
                "--preset control and real-difficulty run on it as before)"
            )
        raise DataMismatch(
            f"the phantom at {root} was made with other settings than requested "
            f"({'; '.join(differences)}): choose a new --out, or request the settings it was "
            f"made with{hint}"
        )


def _index_openi(source: DataSource, views: tuple[str, ...], progress: bool):
    """The OpenI index (as published) with its view table (given, or found in the root)."""
    from finegrain.data.openi import index_openi

    table = source.openi_views
    default = Path(source.openi) / "nlmcxr_dicom_metadata.csv.gz"
    if table is None and default.is_file():
        table = default
    return index_openi(source.openi, views=views, views_table=table, progress=progress)


@dataclass
class GridOutcome:
    trained: list[RunSpec] = field(default_factory=list)
    skipped: list[RunSpec] = field(default_factory=list)
    seconds: float = 0.0
    #: the runs that failed (every other one finished), when the grid was asked not to raise
    failure: RunsFailed | None = None


def _train_one(config, resume: bool, threads: int | None) -> str:
    """Train one run in this process with ``threads`` torch threads (see
    :func:`finegrain.experiment.launchers.execute`; ``resume`` is decided from the run
    directory: a run with checkpoints resumes)."""
    return execute(RunTask(config, Path(config.out).name, threads=threads))


def check_recorded(runs: Sequence[PlannedRun]) -> tuple[list[PlannedRun], list[PlannedRun]]:
    """``(to train, finished)``: the planned runs still to train and those already done.

    A finished run is reused, and an unfinished one resumed, only when its recorded
    configuration equals the planned one (fields in
    :data:`~finegrain.train.config.RUNTIME_FIELDS` aside); otherwise a ``FinegrainError`` names
    each such run and its differing fields (old -> new).
    """
    from finegrain.train.config import format_differences

    todo, finished, conflicts = [], [], []
    for planned in runs:
        run = RunDirectory(planned.directory)
        done = run.is_done()
        if done or (run.has_config() and run.checkpoints()):
            changed = planned.config.differences(run.read_config())
            if changed:
                conflicts.append(f"{run.path} ({format_differences(changed)})")
        (finished if done else todo).append(planned)
    if conflicts:
        shown = "; ".join(conflicts[:5]) + (
            f"; and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
        )
        root = Path(os.path.commonpath([str(r.directory) for r in runs])) if runs else Path()
        raise FinegrainError(
            f"{len(conflicts)} run(s) under {root} were trained with other settings than "
            f"requested: {shown}. Rerun with the settings they were trained with, or choose a "
            "new --out"
        )
    return todo, finished


def run_grid(
    runs: Sequence[PlannedRun],
    *,
    threads: int | None = None,
    jobs: int = 1,
    progress: bool = True,
    max_runs: int | None = None,
    before_run: Callable[[RunSpec, Path], None] | None = None,
    launcher: Launcher | None = None,
    tracking=None,
    raise_failures: bool = True,
) -> GridOutcome:
    """The *train* stage: train every planned run that is not finished yet (see
    :func:`check_recorded`, which refuses runs recorded with other settings).

    A failed run never stops the others (the launchers' failure policy); at the end a
    :class:`~finegrain.experiment.launchers.RunsFailed` names each failed run, raised, or kept
    in the outcome's ``failure`` with ``raise_failures=False``.

    An unfinished run with checkpoints resumes from the last one. ``launcher`` decides where
    runs execute (default: :class:`~finegrain.experiment.launchers.LocalLauncher` with
    ``jobs`` worker processes, each with ``threads`` torch threads: the preset's). ``max_runs``
    stops after that many runs; ``before_run(spec, run_dir)`` is called before each run is
    handed to the launcher (in this process; raising
    :class:`~finegrain.experiment.launchers.StopBenchmark` stops the grid, keeping finished
    runs). ``tracking`` (a :class:`~finegrain.train.tracking.TrackingSpec`) is passed to every
    run.
    """
    from tqdm.auto import tqdm

    outcome = GridOutcome()
    t0 = time.perf_counter()
    todo, finished = check_recorded(runs)
    outcome.skipped = [r.spec for r in finished]
    if max_runs is not None:
        todo = todo[:max_runs]
    if launcher is None:
        launcher = LocalLauncher(jobs=min(jobs, max(1, len(todo))))
    by_label = {run.label: run.spec for run in todo}

    def tasks():
        for run in todo:
            if before_run is not None:
                before_run(run.spec, run.directory)
            yield RunTask(
                run.config,
                run.label,
                threads=threads,
                processes=max(1, launcher.gpus_per_run),
                tracking=tracking,
            )

    bar = tqdm(total=len(todo), desc="benchmark runs", unit="run", disable=not progress)

    def on_done(task: RunTask) -> None:
        outcome.trained.append(by_label[task.label])
        bar.set_postfix_str(task.label)
        bar.update()

    try:
        launcher.run(tasks(), on_done)
    except RunsFailed as exc:
        if raise_failures:
            raise
        outcome.failure = exc
    finally:
        bar.close()
        outcome.seconds = time.perf_counter() - t0
    return outcome


def _recorded_request(out: Path) -> dict | None:
    """The request recorded in ``out/benchmark.json`` by the run that trained the grid."""
    import json

    path = out / BENCHMARK_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise FinegrainError(f"{path}: not valid JSON ({exc})") from exc


def require_benchmark(out: Path, *markers: str) -> None:
    """Refuse to rebuild a report where there is no benchmark: ``out`` holds none of
    ``markers`` (a missing or mistyped folder is neither made nor given an empty report)."""
    if any((out / marker).exists() for marker in markers):
        return
    found = "the folder does not exist" if not out.is_dir() else f"no {' or '.join(markers)} in it"
    raise FinegrainError(
        f"no benchmark in {out} ({found}): check {option('out', '--out')}, or run the benchmark "
        f"without {option('report_only=True', '--report-only')} first"
    )


#: Preset fields that say where and how fast the runs train, not what they are
_RUNTIME_PRESET_FIELDS = ("description", "threads", "jobs")
#: Preset fields of the built-in phantom only (compared when the data is the phantom)
_PHANTOM_PRESET_FIELDS = ("phantom_studies", "phantom_eval_studies", "phantom_size", "phantom")
#: How a difference is named: the option that sets it (:func:`~finegrain.errors.option`)
_REQUEST_OPTIONS = {
    "name": ("preset", "--preset"),
    "selections": ("selections", "--selection"),
    "observations": ("observations", "--observations"),
    "seeds": ("seeds", "--seeds"),
    "image_size": ("image_size", "--image-size"),
    "phantom_studies": ("phantom_studies", "--phantom-studies"),
    "phantom_eval_studies": ("phantom_eval_studies", "--phantom-eval-studies"),
    "phantom_size": ("phantom_size", "the phantom's size"),
    "views": ("views", "the views"),
    "data": ("source", "the data (--data phantom, --mimic, --openi or --index/--cache)"),
    "methods": ("methods", "--methods"),
    "tau": ("tau", "--tau"),
    "taus": ("taus", "--taus"),
    "axes": ("axes", "--axis"),
}


def _show(value) -> str:
    if value is None:
        return "default"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return ",".join(f"{k}={_show(v)}" for k, v in value.items())
    return str(value)


def request_differences(recorded: Mapping, request: Mapping) -> list[str]:
    """What a benchmark ``request`` (``benchmark.json``'s preset, data, methods, τ, taus and
    axes) changes from the ``recorded`` one, each ``name old -> new`` with the option that sets
    it; empty when it is the same grid (where and how fast it trains aside: device, jobs,
    launcher, worker counts)."""
    import json

    from finegrain.train.config import RUNTIME_FIELDS

    def plain(value):
        return json.loads(json.dumps(value))

    old_preset = Preset.from_dict(recorded["preset"])
    new_preset = Preset.from_dict(plain(request["preset"]))
    old = {
        "data": recorded.get("data"),
        "methods": recorded.get("methods"),
        "tau": recorded.get("tau", recorded["preset"].get("tau")),  # before 0.3.0: the preset's
        "taus": recorded.get("taus"),
        "axes": recorded.get("axes"),
    }
    new = {k: plain(request.get(k)) for k in old}
    if None in (old["tau"], new["tau"]) and old["tau"] != new["tau"]:
        from finegrain.train.methods import TAU  # no τ: the methods' own

        old["tau"], new["tau"] = (TAU if t is None else t for t in (old["tau"], new["tau"]))
    phantom = "phantom" in (old["data"], new["data"])
    found = []
    for name in (f.name for f in dataclasses.fields(Preset)):  # name first: --preset
        if name in _RUNTIME_PRESET_FIELDS or name == "train":
            continue
        if name in _PHANTOM_PRESET_FIELDS and not phantom:
            continue
        before, after = plain(getattr(old_preset, name)), plain(getattr(new_preset, name))
        if name == "phantom":
            for knob in sorted(set(before) | set(after)):
                if before.get(knob) != after.get(knob):
                    flag = (
                        f"--{knob}"
                        if knob in ("visibility", "conspicuity", "prevalence")
                        else (f"the phantom's {knob}")
                    )
                    shown = option(f"phantom {knob}", flag)
                    found.append(f"{shown} {_show(before.get(knob))} -> {_show(after.get(knob))}")
        elif before != after:
            python, cli = _REQUEST_OPTIONS.get(name, (name, name))
            found.append(f"{option(python, cli)} {_show(before)} -> {_show(after)}")
    fields = sorted((set(old_preset.train) | set(new_preset.train)) - RUNTIME_FIELDS)
    for name in fields:
        before, after = plain(old_preset.setting(name)), plain(new_preset.setting(name))
        if before != after:
            shown = option(name, "--" + name.replace("_", "-"))
            found.append(f"{shown} {_show(before)} -> {_show(after)}")
    for name in old:
        if old[name] != new[name]:
            python, cli = _REQUEST_OPTIONS[name]
            found.append(f"{option(python, cli)} {_show(old[name])} -> {_show(new[name])}")
    return found


def check_request(out: Path, request: Mapping) -> None:
    """Refuse a benchmark into ``out`` whose ``benchmark.json`` records another request
    (:func:`request_differences`): its report would be replaced by this one's, and
    ``--report-only`` could no longer rebuild it. One folder holds one benchmark."""
    recorded = _recorded_request(out)
    if recorded is None or "preset" not in recorded:
        return
    found = request_differences(recorded, request)
    if found:
        shown = "; ".join(found[:8]) + (f"; and {len(found) - 8} more" if len(found) > 8 else "")
        raise FinegrainError(
            f"{out} holds a benchmark of other settings ({BENCHMARK_FILE}: {shown}); its report "
            f"would be replaced. Give these settings their own {option('out', '--out')} (one "
            f"folder holds one benchmark, whose report {option('report_only=True', '--report-only')} "
            "rebuilds), or rerun with the recorded ones"
        )


#: Held (flock) by the benchmark training into a folder
LOCK_FILE = "benchmark.lock"


class BenchmarkLockedError(FinegrainError):
    """Another benchmark is training into this folder."""


@contextlib.contextmanager
def benchmark_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``out/benchmark.lock`` while a benchmark trains into
    ``out`` (data, runs and report); a second benchmark into it stops at once with
    :class:`BenchmarkLockedError`, one line naming the folder. The OS releases the lock when
    the holder exits or is killed, so a leftover lock file is harmless."""
    from finegrain.io import held_lock

    path = out / LOCK_FILE

    def busy(holder: str) -> BenchmarkLockedError:
        return BenchmarkLockedError(
            f"another benchmark{f' (process {holder})' if holder else ''} is training into "
            f"{out} (it holds {path}): wait for it to finish or stop it, or choose another "
            f"{option('out', '--out')}"
        )

    with held_lock(path, busy):
        yield


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
    tau: float | None = None,
    taus: Sequence[float] | None = None,
    axes: Mapping[str, Sequence] | None = None,
    device: str | None = None,
    jobs: int | None = None,
    progress: bool = True,
    max_runs: int | None = None,
    before_run: Callable[[RunSpec, Path], None] | None = None,
    report_only: bool = False,
    launcher: Launcher | None = None,
    tracking=None,
) -> BenchmarkResult:
    """The whole benchmark: data, then plan -> train -> select -> aggregate -> write (see
    :mod:`finegrain.experiment.plan`). Returns what was done and written.

    ``tau`` is the τ of the tables' risk-modulated methods (``None``: each method's own,
    :data:`~finegrain.train.methods.TAU`); ``taus`` replaces a sweep's. ``report_only`` trains
    nothing and rebuilds the outputs from the finished runs of the request recorded in
    ``out/benchmark.json`` (preset, methods, τ, axes; the given ones when there is none); a
    folder without a benchmark (:func:`require_benchmark`) is an error.
    ``jobs`` (default: the preset's) is capped at the CPU count. ``launcher`` (default: local
    worker processes, ``jobs`` at once) decides where the runs train; ``tracking`` (a
    :class:`~finegrain.train.tracking.TrackingSpec`) logs every run to TensorBoard / MLflow.
    """
    jobs = max(1, min(jobs if jobs is not None else preset.jobs, os.cpu_count() or 1))
    from finegrain.experiment.outputs import write_outputs

    out = Path(out)
    with contextlib.ExitStack() as held:
        t_start = time.perf_counter()
        if report_only:
            require_benchmark(out, BENCHMARK_FILE, "runs/")
        recorded = _recorded_request(out) if report_only else None
        if recorded is not None:  # the report of the runs the recorded request trained
            preset = Preset.from_dict(recorded["preset"])
            methods, taus, axes = recorded["methods"], recorded["taus"], recorded.get("axes")
            # before 0.3.0 the request's τ was the preset's
            tau = recorded.get("tau", recorded["preset"].get("tau"))
        request = {
            "preset": preset.to_dict(),
            "data": source.describe(),
            "methods": list(methods) if methods else None,
            "tau": tau,
            "taus": list(taus) if taus else None,
            "axes": {k: list(v) for k, v in axes.items()} if axes else None,
        }
        plan = plan_benchmark(
            preset, out / "runs", methods=methods, tau=tau, taus=taus, axes=axes, device=device
        )
        if not report_only:  # the request checked (plan_benchmark), nothing made yet
            held.enter_context(benchmark_lock(out))  # one benchmark at a time trains into out
            check_request(out, request)  # and one folder holds one benchmark
        condition = [] if report_only or source.phantom else phantom_condition(preset)
        if condition:  # as the same knobs given as options are refused: said, never silent
            log.warning(
                "%s sets the phantom's %s, which applies to the built-in phantom only: with %s its "
                "runs train without it (the preset's training settings apply; summary.md says so)",
                option(f"preset {preset.name!r}", f"--preset {preset.name}"),
                ", ".join(condition),
                source.option(),
            )
        data = None if report_only else prepare_data(source, out, preset, progress=progress)
        if data is not None:
            plan = plan.with_data(data)
        config = {
            **request,
            "device": device,
            "jobs": jobs,
            "launcher": launcher.name if launcher is not None else "local",
            "runs": [r.label for r in plan.runs],
            "versions": versions(),
            "cpu": machine(),
        }
        if report_only:
            grid = GridOutcome()
            grid.skipped = [r.spec for r in plan.runs if RunDirectory(r.directory).is_done()]
            config = recorded or config
        else:
            # refuse runs recorded with other settings before benchmark.json claims the new ones
            check_recorded(plan.runs)
            atomic_write_json(out / BENCHMARK_FILE, config)
            grid = run_grid(
                plan.runs,
                threads=preset.threads,
                jobs=jobs,
                progress=progress,
                max_runs=max_runs,
                before_run=before_run,
                launcher=launcher,
                tracking=tracking,
                raise_failures=False,
            )
        t_report = time.perf_counter()
        outputs = write_outputs(out, plan, preset=preset, config=config)
        if grid.failure is not None:  # the report of the finished runs is written: now say it
            raise grid.failure
        seconds = dict(data.seconds) if data is not None else {}
        seconds["runs"] = grid.seconds
        seconds["report"] = time.perf_counter() - t_report
        seconds["total"] = time.perf_counter() - t_start
        return BenchmarkResult(out, grid, outputs, seconds)
