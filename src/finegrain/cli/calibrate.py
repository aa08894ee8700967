"""``finegrain calibrate``: fit the tier thresholds and store them in the checkpoint."""

from __future__ import annotations

import argparse

HELP = "fit the negative/atypical/typical thresholds on validation predictions"
DESCRIPTION = """\
Fit the two thresholds behind `finegrain predict`'s three tiers from a run's validation
predictions (predictions-validate.csv) at the checkpoint's iteration, and store them inside the
checkpoint (key "thresholds"; the file is rewritten atomically).

  positive threshold: the highest threshold that keeps --sensitivity (default 0.95) of the
                      validation positives at or above it (or, with --method youden, the one
                      maximising Youden's J between positives and negatives);
  typical threshold:  the one maximising Youden's J between typical and atypical validation
                      positives (the best ROC point of AUC^FG).

RUN_DIR_OR_CHECKPOINT is a checkpoint file (RUN/checkpoints/iter-N.pt; predictions are read
from RUN/predictions-validate.csv unless --predictions is given) or a run directory (every
checkpoint in it is calibrated at its own iteration).

Example:
  finegrain calibrate runs/consolidation-pu-rm-s0 --sensitivity 0.9
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    parser.add_argument("--predictions", help="validation predictions CSV (default: the run's)")
    parser.add_argument("--iteration", type=int, help="use predictions of this iteration")
    parser.add_argument("--sensitivity", type=float, default=0.95, help="target (0.95)")
    parser.add_argument(
        "--method",
        choices=("sensitivity", "youden"),
        default="sensitivity",
        help="how to place the positive threshold (sensitivity)",
    )
    parser.add_argument("--dry-run", action="store_true", help="fit and print, do not store")


def run(args: argparse.Namespace) -> int:
    from finegrain.predict import calibrate

    fitted = calibrate(
        args.target,
        predictions=args.predictions,
        iteration=args.iteration,
        sensitivity=args.sensitivity,
        method=args.method,
        write=not args.dry_run,
    )
    for path, th in fitted.items():
        spec = "n/a" if th.specificity is None else f"{th.specificity:.3f}"
        print(
            f"{path}: iteration {th.iteration}: positive >= {th.positive:.4f} "
            f"(sensitivity {th.achieved_sensitivity:.3f}, specificity {spec}; "
            f"{th.n_positive} pos / {th.n_negative} neg), typical >= {th.typical:.4f} "
            f"(Youden J {th.youden_j:.3f}; {th.n_atypical} atypical / {th.n_typical} typical)"
            + ("" if not args.dry_run else " [not stored]")
        )
    return 0
