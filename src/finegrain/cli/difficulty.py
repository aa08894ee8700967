"""``finegrain difficulty``: coarse AUC measured the way the literature measures it."""

from __future__ import annotations

import argparse

HELP = "coarse AUC of trained runs with uncertain and blank labels counted negative"

DESCRIPTION = """\
Measure how hard the coarse task (positive vs the rest) is for trained runs, the way the papers
that report a DenseNet121's AUROC on MIMIC-CXR or CheXpert with labeler labels measure it: every
image of the split is scored, and a positive label counts against everything else (negative,
uncertain and blank alike). finegrain's own evaluation during training scores only the images
labelled positive or negative, so its recorded AUC is not comparable with those numbers.

For each run: the checkpoint with the highest coarse AUC on validate (ties: the earliest; also
with --split test, so a test number is never chosen on test) scores every image of --split
in the run's image cache;
  auc_all       positive vs negative + uncertain + blank (the literature's convention);
  auc_labelled  positive vs negative only, from the same scores (the run's recorded AUC);
and the counts of each label state, and of the images that could not be scored (not in the
cache or failed in it; a warning says how many). The real range is DenseNet121 on MIMIC-CXR,
uncertain and blank counted negative (CheXclusion, PSB 2021, five runs: about 0.84
Consolidation, 0.90 Edema), the range a phantom's coarse difficulty is calibrated to.

PATH is a benchmark folder (its finished runs, under runs/; writes PATH/difficulty.csv, one row
per run) or one or more run folders. Prints a markdown table per observation x method x settings:
the mean auc_all over seeds [min-max], auc_labelled, runs, image counts, real range, in range.
Only runs that differ in nothing but the seed are pooled; runs of other settings get rows of
their own, named by what differs ("u-ones (iterations=600)").

examples:
  finegrain difficulty finegrain-benchmark
  finegrain difficulty finegrain-benchmark --methods u-ones u-ignore
  finegrain difficulty runs/edema-u-ones-0 runs/edema-u-ones-1 --out-csv difficulty.csv
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="benchmark folder or run folders")
    parser.add_argument(
        "--split",
        choices=("validate", "test"),
        default="validate",
        help="split scored (validate); the checkpoint is always chosen on validate",
    )
    parser.add_argument(
        "--methods", nargs="+", metavar="METHOD", help="only runs of these methods (default: all)"
    )
    parser.add_argument(
        "--out-csv",
        metavar="FILE",
        help="one row per run (default: PATH/difficulty.csv for a benchmark folder, else none)",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per batch (256)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: auto)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from finegrain.cli import CLIError, check_device
    from finegrain.errors import FinegrainError
    from finegrain.experiment.difficulty import (
        difficulty_table,
        format_difficulty,
        is_benchmark_folder,
        runs_of,
        summarise_difficulty,
    )
    from finegrain.io import atomic_write_csv

    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be at least 1, got {args.batch_size}")
    check_device(args.device)
    runs = runs_of(args.paths, methods=args.methods)
    if not runs:
        which = f" of {', '.join(args.methods)}" if args.methods else ""
        raise FinegrainError(f"no finished run{which} in {', '.join(args.paths)}")
    out_csv = args.out_csv
    if out_csv is None and len(args.paths) == 1 and is_benchmark_folder(args.paths[0]):
        out_csv = Path(args.paths[0]) / "difficulty.csv"
    table = difficulty_table(
        runs,
        split=args.split,
        batch_size=args.batch_size,
        device=args.device,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    if out_csv is not None:
        atomic_write_csv(out_csv, table)
    print(format_difficulty(summarise_difficulty(table)), end="")
    if out_csv is not None:
        print(f"\n{len(table)} runs: {out_csv}")
    return 0
