"""``finegrain predict``: probability and three-tier reading for new radiographs."""

from __future__ import annotations

import argparse

from finegrain.cli.options import add_overwrite_argument, check_output

HELP = "apply a checkpoint to images: positive probability and negative/atypical/typical tier"
DESCRIPTION = """\
Apply a trained checkpoint to new chest radiographs and give, for each image, the positive
probability and a three-tier reading: negative, atypical positive (slight or improving) or
typical positive (significant or worsening).

Inputs are image files and/or folders (searched recursively for .jpg .jpeg .png .dcm):
JPEG, PNG 8/16-bit, and DICOM (needs pydicom: pip install 'finegrain[dicom]'; the modality LUT
and windowing are applied, MONOCHROME1 is inverted). Images are preprocessed exactly as the
training cache was (the checkpoint's image size and crop). An unreadable file gets a row with its
error; the rest goes on.

The tier thresholds are stored in the checkpoint by `finegrain calibrate` (fitted on the run's
validation predictions); predict refuses a checkpoint without them.

CHECKPOINT is a checkpoint file or a run folder (then its checkpoint chosen on validation
AUC^FG, as the benchmark chooses; the latest when none was chosen).

Output (-o): CSV or JSON by extension, columns path, probability, fine_score (what the typical
tier is decided by: the probability for the paper's methods), tier, error, warning, then what
the probability is of: the checkpoint's observation, method, iteration and file (checkpoint).
JSON writes null for a missing value. The warning column names what makes an image a poor
radiograph for the model (smaller than its input, an aspect ratio beyond 3:1, a constant
image): it still gets a tier, to be read with care.
With --cam DIR a class activation map overlay is written per image.

Example:
  finegrain calibrate runs/consolidation-pu-rm-s0/checkpoints/iter-0050000.pt
  finegrain predict runs/consolidation-pu-rm-s0/checkpoints/iter-0050000.pt scans/ -o out.csv
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        metavar="CHECKPOINT_OR_RUN_DIR",
        help="checkpoint file (.pt) with stored thresholds, or a run folder",
    )
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER", help="images or folders")
    parser.add_argument("-o", "--out", required=True, help="output table, .csv or .json")
    add_overwrite_argument(parser, "the output table")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (32)")
    parser.add_argument("--cam", metavar="DIR", help="also write CAM overlays (PNG) into DIR")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from finegrain.predict import predict, write_predictions

    if not str(args.out).lower().endswith((".csv", ".json")):
        from finegrain.cli import CLIError

        raise CLIError(f"-o {args.out}: must end in .csv or .json")
    check_output(args.out, args.overwrite)
    frame = predict(
        args.checkpoint,
        args.inputs,
        batch_size=args.batch_size,
        cam_dir=args.cam,
        progress=not args.no_progress,
    )
    write_predictions(frame, args.out)
    bad = int((frame["error"] != "").sum())
    counts = frame.loc[frame["error"] == "", "tier"].value_counts()
    parts = ", ".join(
        f"{counts.get(t, 0)} {t}" for t in ("negative", "atypical positive", "typical positive")
    )
    warned = int((frame["warning"] != "").sum())
    first = frame.iloc[0]
    print(
        f"{first['observation'] or 'positive'} probability ({first['method']}, iteration "
        f"{first['iteration']}) of {len(frame)} image(s): {parts}; {bad} unreadable"
        + (f"; {warned} with a warning" if warned else "")
        + f" -> {args.out}"
    )
    from finegrain.cli import exit_status

    return exit_status(ok=len(frame) - bad, failed=bad)  # 3: some unreadable, 1: all
