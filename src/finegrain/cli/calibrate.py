"""``finegrain calibrate``: fit the probability's calibration and the tier thresholds, and store
them in the checkpoint."""

from __future__ import annotations

import argparse

from finegrain.recalibration import KINDS

HELP = "fit the probability's calibration and the tier thresholds on validation predictions"
DESCRIPTION = """\
Fit, from a run's validation predictions (predictions-validate.csv) at the checkpoint's
iteration, the calibration of the positive probability and the two thresholds behind `finegrain
predict`'s three tiers, and store them inside the checkpoint (keys "calibration" and
"thresholds"; the file is rewritten atomically). predict, cam and export then give the
calibrated probability.

  calibration:        --calibration temperature (default): p' = sigmoid(logit(p) / T), T fitted
                      by the validation log-loss of positives against negatives; isotonic:
                      scikit-learn's isotonic regression; none: the model's own probability.
  positive threshold: the highest threshold that keeps --sensitivity (default 0.95) of the
                      validation positives at or above it (or, with --method youden, the one
                      maximising Youden's J between positives and negatives);
  typical threshold:  the one maximising Youden's J between typical and atypical validation
                      positives (the best ROC point of AUC^FG).

The thresholds are those of the calibrated probability (fitted on the model's own and carried
through the map): temperature scaling keeps every order, so the tiers are the same as without
it; a map that ties probabilities (isotonic steps) is said to change N validation readings.

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
    parser.add_argument(
        "--calibration",
        choices=KINDS,
        default="temperature",
        help="how to calibrate the positive probability (temperature)",
    )
    parser.add_argument("--dry-run", action="store_true", help="fit and print, do not store")


def run(args: argparse.Namespace) -> int:
    from finegrain.predict import calibrate
    from finegrain.recalibration import describe

    fitted = calibrate(
        args.target,
        predictions=args.predictions,
        iteration=args.iteration,
        sensitivity=args.sensitivity,
        method=args.method,
        calibration=args.calibration,
        write=not args.dry_run,
    )
    for path, reading in fitted.items():
        th = reading.thresholds
        spec = "n/a" if th.specificity is None else f"{th.specificity:.3f}"
        changed = (
            f"; {reading.changed} validation readings changed by it" if reading.changed else ""
        )
        print(
            f"{path}: iteration {th.iteration}: calibration {describe(reading.recalibration)}"
            f"{changed}; positive >= {th.positive:.4f} "
            f"(sensitivity {th.achieved_sensitivity:.3f}, specificity {spec}; "
            f"{th.n_positive} pos / {th.n_negative} neg), typical >= {th.typical:.4f} "
            f"(Youden J {th.youden_j:.3f}; {th.n_atypical} atypical / {th.n_typical} typical)"
            + ("" if not args.dry_run else " [not stored]")
        )
    return 0
