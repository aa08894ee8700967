"""``finegrain cam``: class activation maps (the paper's Figure 5)."""

from __future__ import annotations

import argparse

HELP = "class activation maps for images, one or two checkpoints side by side"
DESCRIPTION = """\
Class activation maps as in the paper's Figure 5: the last convolutional feature map weighted
by the linear head's positive-minus-negative class weights, upsampled bilinearly and overlaid on
the image, with the predicted probability (and tier, when the checkpoint is calibrated) in the
title. Give two checkpoints (e.g. u-ones and pu-rm) to get them side by side. One PNG per image
in DIR, named after the image. Works for models ending in global average pooling and a linear
head (the densenet and resnet models); others get an error.

Arguments ending in .pt/.pth are checkpoints (one or two, first); the rest are images or folders.

Example:
  finegrain cam runs/cons-u-ones-s0/checkpoints/iter-0050000.pt \\
      runs/cons-pu-rm-s0/checkpoints/iter-0050000.pt covid/images/ -o cams/
"""

CHECKPOINT_SUFFIXES = (".pt", ".pth")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "items",
        nargs="+",
        metavar="CHECKPOINT_OR_IMAGE",
        help="one or two checkpoints (.pt/.pth) first, then images or folders",
    )
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--batch-size", type=int, default=16, help="images per batch (16)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def split_items(items: list[str]) -> tuple[list[str], list[str]]:
    """Leading ``.pt``/``.pth`` arguments are checkpoints, the rest images/folders."""
    k = 0
    while k < len(items) and items[k].lower().endswith(CHECKPOINT_SUFFIXES):
        k += 1
    return items[:k], items[k:]


def run(args: argparse.Namespace) -> int:
    from finegrain.cli import CLIError
    from finegrain.predict.cam import cam_images

    checkpoints, images = split_items(args.items)
    if not 1 <= len(checkpoints) <= 2:
        raise CLIError(f"give one or two checkpoints (.pt/.pth) first; got {len(checkpoints)}")
    if not images:
        raise CLIError("give at least one image or folder after the checkpoint(s)")
    frame = cam_images(
        checkpoints, images, args.out, batch_size=args.batch_size, progress=not args.no_progress
    )
    bad = frame[frame["error"] != ""]
    for _, row in bad.iterrows():
        print(f"skipped {row['path']}: {row['error']}")
    print(f"{len(frame) - len(bad)} CAM figure(s) -> {args.out}; {len(bad)} unreadable")
    from finegrain.cli import exit_status

    return exit_status(ok=len(frame) - len(bad), failed=len(bad))  # 3: some unreadable, 1: all
