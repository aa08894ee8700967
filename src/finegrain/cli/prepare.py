"""``finegrain prepare``: decode every image of an index once into a uint8 memmap cache."""

from __future__ import annotations

import argparse

HELP = "decode and resize every image of an index table into a fast uint8 image cache"

DESCRIPTION = """\
Decode every image listed in an index table (from `finegrain index`) once, resize it to
SIZE x SIZE grayscale and store it in a cache folder that training reads at memory speed:

  CACHE/images.u8     uint8 array (N, SIZE, SIZE), row i = index row i
  CACHE/manifest.csv  image_id, row, status (ok|error), error
  CACHE/cache.json    size, crop, count, ok, failed (written last: the cache is complete)

One process prepares a cache at a time: a second `prepare` into the same folder while one
runs is refused (CACHE/prepare.lock is held while it works).

JPEGs are decoded with DCT-domain downscaling (a 2500x3000 JPEG is never fully decoded for a
224 px cache); 8/16-bit PNG and DICOM (with pydicom) work too. Work is spread over processes.
A killed run resumes where it stopped when run again with the same arguments; a corrupt or
unreadable image is listed with its error and left out, never fatal (exit status 3; 1 when
no image could be read).

--crop none (default) squashes the whole image to a square; --crop center scales the shorter
side to SIZE and keeps the centre square.

example:
  finegrain prepare index.csv -o cache-224 --size 224 --workers 8
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", help="index table (CSV, CSV.gz or Parquet)")
    parser.add_argument("-o", "--out", required=True, metavar="CACHE", help="cache folder")
    parser.add_argument("--size", type=int, default=224, help="image side in pixels (224)")
    parser.add_argument(
        "--crop", choices=("none", "center"), default="none", help="resize policy (none)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="decoding processes (default: all CPUs)"
    )
    parser.add_argument(
        "--chunk", type=int, default=64, help="images per unit of work and of resume (64)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="rebuild a cache made with other parameters"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--show-errors", type=int, default=5, metavar="K", help="print the first K errors (5)"
    )


def run(args: argparse.Namespace) -> int:
    from finegrain.cli import CLIError
    from finegrain.data.cache import prepare

    if args.size < 1:
        raise CLIError(f"--size must be positive, got {args.size}")
    if args.workers is not None and args.workers < 0:
        raise CLIError(f"--workers must be >= 0, got {args.workers}")
    summary = prepare(
        args.index,
        args.out,
        size=args.size,
        crop=args.crop,
        workers=args.workers,
        progress=not args.no_progress,
        chunk=args.chunk,
        overwrite=args.overwrite,
    )
    print(summary.format(max_errors=args.show_errors))
    from finegrain.cli import exit_status

    return exit_status(ok=summary.ok, failed=summary.failed)  # 3: some images failed
