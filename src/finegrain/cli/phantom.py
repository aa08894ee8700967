"""``finegrain phantom``: write the MIMIC-shaped procedural chest-radiograph phantom."""

from __future__ import annotations

import argparse

from finegrain.errors import FinegrainError

HELP = "write a procedural chest X-ray phantom in the exact MIMIC-CXR-JPG layout"

DESCRIPTION = """\
Write a procedural chest-radiograph phantom in the exact MIMIC-CXR-JPG layout, so that the
built-in dataset runs through the same code path as MIMIC (`finegrain index --mimic OUT`):

  OUT/files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg     grayscale JPEGs (AP/PA frontal, some lateral)
  OUT/files/pXX/pSUBJECT/sSTUDY.txt              free-text reports (FINDINGS / IMPRESSION)
  OUT/mimic-cxr-2.0.0-{chexpert,negbio,metadata,split}.csv.gz
  OUT/phantom-truth.csv                          true severity, image truth, cues, subcategory
                                                 per study and observation
  OUT/phantom-images.csv                         each image's acquisition geometry (lesion masks)
  OUT/phantom.json                               the settings (knobs, profile, seed)

Consolidation, Edema, Pleural Effusion, Cardiomegaly and Atelectasis are drawn with a continuous
severity: the truth file keeps each finding's number beside its slight / significant side (cut
at 0.5), each lesion varies in extent, density and position so that neighbouring severities
overlap on the image, and a reader whose cut-points vary from report to report writes the
degree words, agreeing with the image about as often as two radiologists agree. The default
phantom is calibrated to real label statistics (CheXpert frontal images; cues from OpenI
reports): the label shares, AP share, images per study and the shares of positives that are
atypical and that carry no cue are real ones. What labels cannot tell is a knob
(docs/phantom.md). `--design bands` draws the phantom of finegrain 0.2-0.3 (two severity bands
that never meet, reports that follow the image), byte for byte. The same seed gives the same
bytes. OUT must not exist or be an empty folder.

example:
  finegrain phantom phantom --studies 2000 --size 128 --seed 0
  finegrain phantom big --studies 1200 --eval-studies 30000 --size 64
  finegrain phantom mimic-sized --studies 227835 --size 16 --mimic-counts
  finegrain phantom sweep --uncertain-mixture absent=0.7,slight=0.2,other=0.1 --visibility 0.5
  finegrain phantom harder --visibility Consolidation=0.5,Edema=2
  finegrain phantom graded --slight-share Consolidation=0.2 --spread 0.6
  finegrain phantom v03 --design bands --nocue-severity 0.2
  finegrain index --mimic phantom -o phantom/index.csv
"""


def _weights(text: str) -> dict[str, float]:
    """``name=value,name=value`` -> dict (argparse type)."""
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected name=value, got {part!r}")
        if name.strip() in out:
            raise argparse.ArgumentTypeError(f"{name.strip()} given twice in {text!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number in {part!r}") from None
    return out


def uncertain_mixture(text: str) -> dict[str, float]:
    """``absent=A,slight=B,significant=C,other=D`` -> dict (argparse type): every part named,
    so that none is set to 0 unsaid (the weights are normalised to sum 1)."""
    from finegrain.data.phantom.knobs import UNCERTAIN_TRUTHS

    weights = _weights(text)
    missing = [k for k in UNCERTAIN_TRUTHS if k not in weights]
    unknown = [k for k in weights if k not in UNCERTAIN_TRUTHS]
    if unknown or missing:
        what = f"unknown part {unknown[0]!r}" if unknown else f"no {', '.join(missing)}"
        raise argparse.ArgumentTypeError(
            f"{what} in {text!r}: give every part, {'=W,'.join(UNCERTAIN_TRUTHS)}=W (0 for a "
            "part left out; the weights are normalised to sum 1)"
        )
    return weights


def multipliers(text: str) -> float | dict[str, float]:
    """``1.5`` (all calibrated observations) or ``Consolidation=2,Edema=0.5`` (argparse type of
    the per-observation knobs, ``--visibility``, ``--conspicuity`` and ``--prevalence``; also
    ``finegrain benchmark``'s)."""
    try:
        return float(text)
    except ValueError:
        return _weights(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="output folder (new or empty)")
    parser.add_argument("--studies", type=int, default=2000, help="number of studies (2000)")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (128)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument(
        "--eval-studies",
        type=int,
        default=None,
        metavar="N",
        help="write N studies in each of validate and test; --studies then counts training "
        "studies (default: one 70/15/15 split of --studies)",
    )
    parser.add_argument(
        "--mimic-counts",
        action="store_true",
        help="MIMIC-CXR-JPG's shape at --studies studies: subjects, images and split sizes in "
        "MIMIC's ratios (exactly MIMIC's counts at --studies 227835; for dry runs at full size)",
    )
    parser.add_argument(
        "--profile", default="chexpert-frontal", help="calibration profile (chexpert-frontal)"
    )
    parser.add_argument(
        "--design",
        choices=("continuum", "bands"),
        default="continuum",
        help="how severity is drawn: continuum (a number; lesions vary; a noisy reader words the "
        "report) or bands (finegrain 0.2-0.3's phantom, byte for byte) (continuum)",
    )
    knobs = parser.add_argument_group("knobs (docs/phantom.md; defaults are the calibrated point)")
    knobs.add_argument(
        "--uncertain-mixture",
        type=uncertain_mixture,
        default=None,
        metavar="absent=A,slight=B,significant=C,other=D",
        help="image truth behind an uncertain label: every part, weights normalised to sum 1 "
        "(default absent=0.4,slight=0.35,significant=0.1,other=0.15)",
    )
    knobs.add_argument(
        "--nocue-severity",
        type=float,
        default=None,
        metavar="SHARE",
        help="bands design: share of slight image truth behind a positive without a cue (0.5)",
    )
    knobs.add_argument(
        "--slight-share",
        type=multipliers,
        default=None,
        metavar="X or OBS=X,...",
        help="continuum design: share of new positives whose true severity is slight (below "
        "the cut), for all drawn observations or per observation (default per observation: the "
        "real atypical share plus half the no-cue share)",
    )
    knobs.add_argument(
        "--spread",
        type=multipliers,
        default=None,
        metavar="X or OBS=X,...",
        help="continuum design: how much lesions of one severity differ (log-sd of their extent "
        "and density), for all drawn observations or per observation (0.35)",
    )
    knobs.add_argument(
        "--reader-agreement",
        type=float,
        default=None,
        metavar="SHARE",
        help="continuum design: share of positives graded with a degree word whose word agrees "
        "with the image's slight / significant (0.865: two radiologists' agreement)",
    )
    knobs.add_argument(
        "--visibility",
        type=multipliers,
        default=1.0,
        metavar="X or OBS=X,...",
        help="contrast multiplier of slight findings relative to the noise, for all drawn "
        "observations or per observation (1.0)",
    )
    knobs.add_argument(
        "--conspicuity",
        type=multipliers,
        default=1.0,
        metavar="X or OBS=X,...",
        help="contrast multiplier of every finding, at every severity (slight stays as much "
        "fainter than significant), for all drawn observations or per observation (1.0)",
    )
    knobs.add_argument(
        "--prevalence",
        type=multipliers,
        default=1.0,
        metavar="X or OBS=X,...",
        help="multiplier on the positive share, for all calibrated observations or per "
        "observation (1.0)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes drawing the phantom (default: available CPUs, at most 8); the output "
        "does not depend on it",
    )
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
            eval_studies=args.eval_studies,
            profile=args.profile,
            uncertain_mixture=args.uncertain_mixture,
            design=args.design,
            nocue_severity=args.nocue_severity,
            slight_share=args.slight_share,
            spread=args.spread,
            reader_agreement=args.reader_agreement,
            visibility=args.visibility,
            conspicuity=args.conspicuity,
            prevalence=args.prevalence,
            workers=args.workers,
            mimic_counts=args.mimic_counts,
        )
    except FileExistsError as exc:
        if exc.errno is not None:  # the file system's own error: reported by finegrain.cli
            raise
        if os.path.isfile(args.out):  # reported like every other path in the way (exit 1)
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), args.out) from exc
        raise FinegrainError(f"{exc}; choose a new or empty folder") from exc
    print(summary.format())
    return 0
