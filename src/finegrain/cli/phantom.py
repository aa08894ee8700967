"""``finegrain phantom``: write the MIMIC-shaped procedural chest-radiograph phantom."""

from __future__ import annotations

import argparse

HELP = "write a procedural chest X-ray phantom in the exact MIMIC-CXR-JPG layout"

DESCRIPTION = """\
Write a procedural chest-radiograph phantom in the exact MIMIC-CXR-JPG layout, so that the
built-in dataset runs through the same code path as MIMIC (`finegrain index --mimic OUT`):

  OUT/files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg     grayscale JPEGs (AP/PA frontal, some lateral)
  OUT/files/pXX/pSUBJECT/sSTUDY.txt              free-text reports (FINDINGS / IMPRESSION)
  OUT/mimic-cxr-2.0.0-{chexpert,negbio,metadata,split}.csv.gz
  OUT/phantom-truth.csv                          true severity, change, status, subcategory
                                                 per study and observation

Consolidation, Edema, Pleural Effusion and Cardiomegaly are drawn with a continuous severity;
atypical positives (slight or improving) are drawn subtle, typical ones clearly (docs/phantom.md).
The same seed gives the same bytes. OUT must not exist or be an empty folder.

example:
  finegrain phantom phantom --studies 2000 --size 128 --seed 0
  finegrain index --mimic phantom -o phantom/index.csv
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="output folder (new or empty)")
    parser.add_argument("--studies", type=int, default=2000, help="number of studies (2000)")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (128)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import errno
    import os

    from finegrain.cli import CLIError
    from finegrain.data.phantom import make_phantom

    if args.studies < 1:
        raise CLIError(f"--studies must be >= 1, got {args.studies}")
    if args.size < 16:
        raise CLIError(f"--size must be >= 16, got {args.size}")
    try:
        summary = make_phantom(
            args.out,
            studies=args.studies,
            size=args.size,
            seed=args.seed,
            progress=not args.no_progress,
        )
    except FileExistsError as exc:
        if exc.errno is not None:  # the file system's own error: reported by finegrain.cli
            raise
        if os.path.isfile(args.out):  # reported like every other path in the way (exit 1)
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), args.out) from exc
        raise ValueError(f"{exc}; choose a new or empty folder") from exc
    print(summary.format())
    return 0
