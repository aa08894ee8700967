"""``finegrain benchmark``: the paper's experiments end to end (phantom by default)."""

from __future__ import annotations

import argparse
import dataclasses

HELP = "run the paper's experiments end to end (Table 2/3, τ ablation) and write a report"

DESCRIPTION = """\
Run the paper's experiments end to end: data -> index table -> image cache -> a grid of
training runs (observation x method x seed, and τ for Figure 4) -> for each run the checkpoint
with the best validation AUC^FG -> tables (mean ± std over seeds), figures and an HTML report.

Data (one of): the built-in phantom (default), a MIMIC-CXR-JPG root (--mimic), OpenI as
published (--openi; no credentials needed, see docs/data.md), or an existing index table and
image cache (--index/--cache). With OpenI (or an index made by `finegrain index --openi`) the
report adds AUC^FG against OpenI's human MeSH fine labels next to the text-mined ones.

Presets: `demo` (the default) trains a tiny network on a small phantom and finishes in a few
minutes on a 2-core CPU; `paper` is the paper's protocol (DenseNet121 from ImageNet weights,
224 px, Adam 1e-4, batch 32, 50k iterations, checkpoints every 10k, 3 seeds, τ = 0.3,
Consolidation and Edema). Options below override single preset fields.

Selections: table2 (U-Ignore, U-Zeros, U-Ones, PU-RM), table3 (U-Ignore, U-Ignore + P-RM,
PU-RM), figure4 (PU-RM for τ = 0.1..0.9 with the U-Ones/U-Ignore baselines), all; and study
(not in all): the pre-registered PU-RM vs U-Ones study on the calibrated phantom, sweeping the
phantom's knobs and τ (docs/study.md; hours of CPU, resumable).

Outputs in --out: runs/<settings hash>/<observation>/<method>[-tau<τ>][-<axis><value>]/seed<k>/
(one run directory each; runs that differ in any setting never share one),
results.csv (every run x checkpoint x split, with the selected flag), summary.md, summary.tex,
figures/*.png|svg, report.html (self-contained), benchmark.json (the configuration).
Beyond the paper, the test split is scored at the checkpoint chosen on validation, with a
bootstrap 95% CI and a paired DeLong p-value against U-Ones, and every method's paired
difference against U-Ones (same seeds, same cases) is printed with its 95% CI.

Finished runs are skipped and unfinished ones resume from their last checkpoint, so running
the same command again after an interruption completes the rest. One --out holds one
benchmark: other settings into it stop before anything trains, naming what differs (give
them their own --out, or make them an --axis).

Where runs train (--launcher; see docs/benchmark.md): `local` (default) trains --jobs runs at
once in worker processes on this machine; with --device cuda each worker gets its own GPU(s)
through CUDA_VISIBLE_DEVICES (--jobs defaults to the number of visible GPUs / --gpus-per-run).
`ray` hands every run to Ray (a local Ray cluster, or --address for an existing one); `slurm`
submits one Slurm job per run through submitit (--partition, --time, ...). Everywhere: a
finished run is skipped, an interrupted or retried run resumes from its last checkpoint, and
--report-only builds the report from the shared --out folder. Workers of the local launcher
stop when the benchmark is stopped (Ctrl-C, SIGTERM, even SIGKILL on Linux).

Tracking (off by default; each run directory's metrics.jsonl stays the source of truth):
--tensorboard writes event files to runs/.../tensorboard (`tensorboard --logdir OUT/runs`);
--mlflow [URI] logs each run to MLflow (default URI: sqlite:///OUT/mlflow.db).

Examples:
  finegrain benchmark                                   # demo on the phantom, prints Table 2
  finegrain benchmark --preset paper --mimic /data/mimic-cxr-jpg --selection all \\
      --device cuda --out mimic-benchmark
  finegrain benchmark --out finegrain-benchmark --report-only   # rebuild tables and report
  finegrain benchmark --selection study --out study     # the study (docs/study.md)
  finegrain benchmark --visibility Consolidation=0.5 --out harder-consolidation
  finegrain benchmark --preset paper --mimic /data/mimic-cxr-jpg --device cuda --out paper-run
  finegrain benchmark --preset paper --mimic /data/mimic-cxr-jpg --device cuda \\
      --launcher slurm --partition gpu --gpus-per-run 2 --time 1440 --out /shared/bench
"""


def benchmark_owned() -> frozenset[str]:
    """TrainConfig fields the benchmark sets itself, not training options of the command: the
    grid's (``train.config.GRID_FIELDS``: cells, data, each run's folder) and the methods' options."""
    from finegrain.train.config import GRID_FIELDS

    return GRID_FIELDS | {"method_options"}


def _names(text: str) -> list[str]:
    """``u-ones,pu-rm`` -> ``["u-ones", "pu-rm"]`` (one name stays one)."""
    return [n.strip() for n in text.split(",") if n.strip()]


def _slurm_option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _axis(text: str) -> tuple[str, tuple]:
    """``iterations=300,600`` -> ``("iterations", (300, 600))`` (values parsed as JSON when
    they are JSON, else kept as text)."""
    import json

    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise argparse.ArgumentTypeError(f"expected FIELD=V1,V2,..., got {text!r}")

    def parse(value: str):
        try:
            return json.loads(value)
        except ValueError:
            return value

    return key.strip().replace("-", "_"), tuple(parse(v.strip()) for v in values.split(","))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _tau(text: str) -> float:
    """A τ by the methods' rule (``TAU_RULE``)."""
    from finegrain.constraints import violation
    from finegrain.train.methods import TAU_RULE

    value = float(text)
    wanted = violation(value, [TAU_RULE])
    if wanted is not None:
        raise argparse.ArgumentTypeError(f"τ must be {wanted}, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data (one of)")
    data.add_argument(
        "--data", choices=["phantom"], default=None, help="the built-in phantom (default)"
    )
    data.add_argument("--mimic", metavar="ROOT", help="a MIMIC-CXR-JPG root folder")
    data.add_argument(
        "--openi",
        metavar="ROOT",
        help="OpenI as published (NLMCXR_reports.tgz + NLMCXR_png/ or NLMCXR_dcm/; PNG views "
        "from ROOT/nlmcxr_dicom_metadata.csv.gz or --openi-views); adds AUC^FG against the "
        "human MeSH fine labels",
    )
    data.add_argument(
        "--openi-views", metavar="TABLE", help="view table of OpenI's PNGs (imageid, View Position)"
    )
    data.add_argument("--index", metavar="INDEX", help="an existing index table (with --cache)")
    data.add_argument("--cache", metavar="CACHE", help="an existing image cache (with --index)")
    from finegrain.cli.phantom import multipliers

    phantom = parser.add_argument_group(
        "the phantom's condition (built-in phantom only; docs/phantom.md)"
    )
    phantom.add_argument(
        "--visibility",
        type=multipliers,
        metavar="X or OBS=X,...",
        help="contrast multiplier of slight findings, for all drawn observations or per "
        "observation, e.g. Consolidation=0.5 (default 1)",
    )
    phantom.add_argument(
        "--conspicuity",
        type=multipliers,
        metavar="X or OBS=X,...",
        help="contrast multiplier of every finding at every severity, for all drawn "
        "observations or per observation, e.g. Consolidation=2 (default 1; the preset "
        "real-difficulty sets it)",
    )
    phantom.add_argument(
        "--prevalence",
        type=multipliers,
        metavar="X or OBS=X,...",
        help="multiplier on the positive share, for all calibrated observations or per "
        "observation (default 1)",
    )
    phantom.add_argument(
        "--phantom-eval-studies",
        type=_positive,
        metavar="N",
        help="studies in each of the phantom's validate and test splits (--phantom-studies then "
        "counts training studies; default: the preset's)",
    )
    from finegrain.experiment.grid import SELECTIONS
    from finegrain.experiment.launchers import LAUNCHERS
    from finegrain.experiment.presets import PRESETS
    from finegrain.train.methods import TAU

    grid = parser.add_argument_group("grid")
    grid.add_argument(
        "--preset",
        choices=list(PRESETS),
        default=None,
        help="the settings of the grid (default: demo; with --selection study: demo-v0.3, the "
        "phantom the study was pre-registered on)",
    )
    grid.add_argument(
        "--selection",
        nargs="+",
        choices=[*SELECTIONS, "all", "study"],
        help="which results to reproduce (default: the preset's, table2); study: the "
        "pre-registered PU-RM vs U-Ones study over the phantom's knobs (docs/study.md)",
    )
    grid.add_argument(
        "--axis",
        type=_axis,
        action="append",
        metavar="FIELD=V1,V2",
        help="another axis of the grid over a training setting, e.g. iterations=300,600 or "
        "model=densenet-tiny,resnet18 (repeat for several; every combination is trained and "
        "each gets its own row in the tables)",
    )
    grid.add_argument("--observations", nargs="+", metavar="OBS")
    grid.add_argument(
        "--methods",
        nargs="+",
        type=_names,
        metavar="METHOD",
        help="replace the methods of the tables (space- or comma-separated, e.g. "
        "u-ones,pu-rm,graded,ordinal,three-class)",
    )
    grid.add_argument("--seeds", type=int, help="number of seeds (0..N-1)")
    grid.add_argument(
        "--tau",
        type=_tau,
        help=f"τ of the risk-modulated methods in the tables (default: the methods' own, {TAU})",
    )
    grid.add_argument("--taus", type=_tau, nargs="+", help="τ values of the Figure 4 sweep")
    from finegrain.cli.options import add_config_arguments

    train = parser.add_argument_group(
        "training (every run; generated from TrainConfig as finegrain train's options, "
        "default: the preset's)"
    )
    add_config_arguments(train, exclude=benchmark_owned(), defaults=False)
    train.add_argument("--image-size", type=_positive, help="pixels of the image cache")
    train.add_argument("--phantom-studies", type=_positive, help="the phantom's training studies")
    where = parser.add_argument_group("where runs train (launcher)")
    where.add_argument(
        "--launcher",
        choices=list(LAUNCHERS),
        default="local",
        help="local worker processes (default), Ray tasks, or Slurm jobs via submitit",
    )
    where.add_argument(
        "--jobs",
        type=_positive,
        help="local: runs trained at once (default: the preset's on CPU, one per GPU group on "
        "CUDA)",
    )
    where.add_argument(
        "--gpus-per-run",
        type=_positive,
        default=1,
        help="GPUs per run (default 1); > 1 runs each run through torch.distributed.run with "
        "one process per GPU (the paper's 2 x 16 batch: 2); on CPU: processes per run",
    )
    where.add_argument(
        "--address", help="ray: address of an existing Ray cluster (default: start a local one)"
    )
    where.add_argument("--partition", help="slurm: partition to submit to")
    where.add_argument(
        "--gpus-per-node",
        type=_positive,
        help="slurm: GPUs per job (one job = one run on one node; same as --gpus-per-run)",
    )
    where.add_argument(
        "--time",
        type=_positive,
        metavar="MINUTES",
        help="slurm: time limit per job in minutes (default 1440); a job reaching it is "
        "requeued and resumes from its last checkpoint",
    )
    where.add_argument(
        "--cpus-per-run", type=_positive, help="ray/slurm: CPUs per run (default: ray 1, slurm 4)"
    )
    where.add_argument("--mem-gb", type=float, help="slurm: memory per job in GB")
    where.add_argument(
        "--slurm-option",
        type=_slurm_option,
        action="append",
        metavar="KEY=VALUE",
        help="slurm: extra sbatch option, e.g. account=myproj or qos=high (repeat for several)",
    )
    where.add_argument(
        "--retries",
        type=int,
        default=3,
        help="ray/slurm: times a run whose worker or job died is retried (default 3); it "
        "resumes from its last checkpoint",
    )
    track = parser.add_argument_group("experiment tracking (off by default)")
    track.add_argument(
        "--tensorboard",
        action="store_true",
        help="TensorBoard event files in each run directory (needs finegrain[tensorboard])",
    )
    track.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="URI",
        help="log each run to MLflow at URI (default: sqlite:///OUT/mlflow.db; needs "
        "finegrain[mlflow])",
    )
    parser.add_argument(
        "--out", "-o", default="finegrain-benchmark", help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: rebuild results, tables, figures and report from the finished runs "
        "of the request recorded in OUT/benchmark.json",
    )
    parser.add_argument(
        "--migrate-runs",
        action="store_true",
        help="move the runs of a benchmark or study folder written by finegrain 0.2 "
        "(runs/<observation>/<variant>/seed<k>) into this version's layout, then stop",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_study_cli(args: argparse.Namespace, preset) -> int:
    """``--selection study``: train (or resume) the study and print its map as a table."""
    import dataclasses
    from pathlib import Path

    from finegrain.experiment.study import default_plan, run_study, study_summary_table
    from finegrain.experiment.tables import to_markdown

    plan = default_plan()
    changes = {
        "observations": tuple(args.observations) if args.observations else None,
        "seeds": args.seeds,
        "tau": args.tau,
        "taus": tuple(args.taus) if args.taus else None,
    }
    plan = dataclasses.replace(plan, **{k: v for k, v in changes.items() if v is not None})
    result = run_study(
        args.out,
        preset,
        plan,
        jobs=args.jobs,
        device=args.device,
        progress=not args.no_progress,
        report_only=args.report_only,
    )
    print()
    print(to_markdown(study_summary_table(result.table, plan.observations)))
    print(
        f"{result.trained} runs trained, {result.skipped} already finished; wall time "
        f"{result.seconds:.0f} s, CPU {result.cpu_seconds:.0f} s"
    )
    print(f"outputs: {Path(args.out) / 'report.html'}, study.md, study.csv")
    return 0


def print_paired(paired) -> None:
    """The paired differences against the reference method, one line each (validation, then
    test)."""
    from finegrain.experiment.grid import display_name
    from finegrain.experiment.tables import paired_line

    if paired is None or paired.empty:
        return
    references = ", ".join(display_name(r) for r in dict.fromkeys(paired["reference"]))
    print(f"Paired difference against {references} (AUC^FG, same seeds and cases; see summary.md):")
    for split in ("validate", "test"):
        for _, row in paired[paired["split"] == split].iterrows():
            print("  " + paired_line(row.to_dict()))
    print()


def training_options(args: argparse.Namespace) -> dict:
    """The TrainConfig fields given as options (each checked against its field's rule); a
    field given both as an option and as an ``--axis`` is a :class:`CLIError` naming both."""
    from finegrain.cli import CLIError
    from finegrain.cli.options import config_values, flag_of
    from finegrain.train.config import TrainConfig

    fields = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in benchmark_owned()]
    values = config_values(args, fields)
    for name, axis in args.axis or []:
        if name in values:
            given = ",".join(map(str, axis))
            raise CLIError(
                f"{flag_of(name)} {values[name]} and --axis {name}={given} both set {name}: "
                "give one of them"
            )
    if values.get("weights") is not None and values.get("pretrained") is False:
        raise CLIError("--weights and --no-pretrained exclude each other")
    return values


def run(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from finegrain.cli import CLIError, check_device
    from finegrain.cli.options import tracking_spec
    from finegrain.errors import FinegrainError
    from finegrain.experiment.grid import SELECTIONS
    from finegrain.experiment.launchers import launcher_for, uses_gpus
    from finegrain.experiment.presets import get_preset
    from finegrain.experiment.runner import DataSource, run_benchmark
    from finegrain.experiment.tables import to_markdown

    if args.migrate_runs:
        from finegrain.experiment.grid import migrate_runs

        moved = migrate_runs(args.out)
        for old, new in moved:
            print(f"{old} -> {new}")
        print(f"{len(moved)} run(s) moved under {args.out}")
        return 0
    check_device(args.device)
    if sum(map(bool, (args.mimic, args.index, args.openi))) > 1:
        raise CLIError(
            "choose one data source: --data phantom, --mimic ROOT, --openi ROOT or --index/--cache"
        )
    if args.openi_views and not args.openi:
        raise CLIError("--openi-views only applies to --openi")
    if (args.index is None) != (args.cache is None):
        raise CLIError("--index and --cache go together")
    if args.seeds is not None and args.seeds < 1:
        raise CLIError(f"--seeds must be at least 1, got {args.seeds}")
    if args.weights and not Path(args.weights).is_file():  # before any run is handed out
        raise FinegrainError(f"weights file not found: {args.weights}")
    if args.data and (args.mimic or args.index or args.openi):
        raise CLIError("--data phantom cannot be combined with --mimic, --openi or --index")
    knobs = {
        k: v
        for k, v in (
            ("visibility", args.visibility),
            ("conspicuity", args.conspicuity),
            ("prevalence", args.prevalence),
        )
        if v is not None
    }
    sizes = args.phantom_eval_studies is not None or args.phantom_studies is not None
    if (knobs or sizes) and (args.mimic or args.index or args.openi):
        raise CLIError(
            "--visibility, --conspicuity, --prevalence, --phantom-studies and "
            "--phantom-eval-studies apply to the built-in phantom only"
        )
    if not args.verbose:  # the grid's progress bar and final tables say it; -v shows each run
        logging.getLogger("finegrain.train").setLevel(logging.WARNING)
    source = DataSource(
        phantom=not (args.mimic or args.index or args.openi),
        mimic=Path(args.mimic) if args.mimic else None,
        index=Path(args.index) if args.index else None,
        cache=Path(args.cache) if args.cache else None,
        openi=Path(args.openi) if args.openi else None,
        openi_views=Path(args.openi_views) if args.openi_views else None,
    )
    training = training_options(args)
    training.pop("device", None)  # where the runs train: the launcher's (run_benchmark below)
    from finegrain.experiment.study import STUDY_PRESET

    study = bool(args.selection) and "study" in args.selection
    preset = get_preset(args.preset or (STUDY_PRESET if study else "demo")).replace(
        selections=tuple(args.selection) if args.selection else None,
        observations=tuple(args.observations) if args.observations else None,
        seeds=args.seeds,
        image_size=args.image_size,
        phantom_studies=args.phantom_studies,
        phantom_eval_studies=args.phantom_eval_studies,
        **training,
    )
    if knobs:
        preset = preset.replace(phantom={**preset.phantom, **knobs})
    if args.preset is None and not source.phantom:  # the default preset on other data: its
        preset = preset.replace(phantom={})  # phantom was not asked for (nothing to warn about)
    if source.phantom and args.image_size is not None:
        preset = preset.replace(phantom_size=max(args.image_size, preset.phantom_size))
    if args.selection and "study" in args.selection:
        if len(args.selection) > 1 or not source.phantom:
            raise CLIError("--selection study runs alone, on the built-in phantom")
        if knobs:
            raise CLIError(
                "--selection study sets the phantom's knobs of each condition itself "
                "(docs/study.md): no --visibility, --conspicuity or --prevalence"
            )
        if args.launcher != "local" or args.gpus_per_run != 1:
            raise CLIError("--selection study trains with the local launcher on one device")
        if args.tensorboard or args.mlflow is not None:
            raise CLIError("--selection study does not log to TensorBoard or MLflow")
        return run_study_cli(args, preset)
    gpus_per_run = args.gpus_per_run
    if args.gpus_per_node is not None:
        if args.launcher != "slurm":
            raise CLIError("--gpus-per-node is a slurm option; use --gpus-per-run")
        if args.gpus_per_run not in (1, args.gpus_per_node):
            raise CLIError("--gpus-per-node and --gpus-per-run differ: give one of them")
        gpus_per_run = args.gpus_per_node
    launcher = None  # local on CPU: the preset's --jobs, capped at the CPU count
    if not args.report_only and (
        args.launcher != "local" or gpus_per_run > 1 or uses_gpus(args.device)
    ):
        launcher = launcher_for(
            args.launcher,
            out=args.out,
            device=args.device,
            jobs=args.jobs,
            gpus_per_run=gpus_per_run,
            address=args.address,
            partition=args.partition,
            time_min=args.time,
            cpus_per_run=args.cpus_per_run,
            mem_gb=args.mem_gb,
            slurm_options=dict(args.slurm_option or []),
            retries=args.retries,
        )
    fields = [name for name, _ in args.axis or ()]
    repeated = sorted({name for name in fields if fields.count(name) > 1})
    if repeated:
        raise CLIError(
            f"--axis {repeated[0]} given more than once; give all its values in one "
            f"(--axis {repeated[0]}=V1,V2,...)"
        )
    result = run_benchmark(
        args.out,
        preset,
        source,
        methods=[m for names in args.methods for m in names] if args.methods else None,
        tau=args.tau,
        taus=args.taus,
        axes=dict(args.axis) if args.axis else None,
        device=args.device,
        jobs=args.jobs,
        progress=not args.no_progress,
        report_only=args.report_only,
        launcher=launcher,
        tracking=tracking_spec(args, Path(args.out)),
    )
    outputs = result.outputs
    print()
    shown = {k for name in preset.selections for k in (name, f"{name}-test")}
    shown |= {
        k for name in SELECTIONS for k in (name, f"{name}-test") if "all" in preset.selections
    }
    for table in outputs.tables:
        if table.key in shown:
            print(to_markdown(table))
    print_paired(outputs.paired)
    for note in outputs.notes:
        print(f"note: {note}")
    grid = result.grid
    print(
        f"{len(grid.trained)} runs trained, {len(grid.skipped)} already finished; "
        f"wall time {result.seconds['total']:.0f} s "
        + "("
        + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items() if k != "total")
        + ")"
    )
    print(f"outputs: {Path(args.out) / 'report.html'}, summary.md, results.csv")
    return 0
