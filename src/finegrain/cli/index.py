"""``finegrain index``: turn a data source into the index table."""

from __future__ import annotations

import argparse

from finegrain.cli.options import add_overwrite_argument, check_output

HELP = "build the index table from MIMIC-CXR-JPG (or the phantom), CheXpert, OpenI or a CSV"

DESCRIPTION = """\
Build the index table (one row per image: image_id, path, subject_id, study_id, split, view,
then per observation the coarse label 1/0/-1/empty and the atypical/typical subcategory) from
one source, and print what was kept and what was dropped by reason.

sources (exactly one):
  --mimic ROOT     MIMIC-CXR-JPG tree (or a `finegrain phantom` folder): files/pXX/pSUBJECT/
                   sSTUDY/DICOM.jpg and the four mimic-cxr-2.0.0-*.csv(.gz); official split;
                   labels from the chexpert CSV (--labels negbio or a `finegrain label` CSV);
                   subcategories from the report labeler on files/pXX/pSUBJECT/sSTUDY.txt
                   (--reports ROOT when the reports live elsewhere)
  --chexpert ROOT  CheXpert-v1.0(-small): train.csv / valid.csv; valid -> validate, test carved
                   out of train by patient (--split-seed); no subcategories unless --labels CSV
  --openi ROOT     OpenI as published: ROOT/NLMCXR_reports.tgz (or ecgen-radiology/) and
                   ROOT/NLMCXR_png/ or NLMCXR_dcm/ (or their .tgz, unpacked safely); views from
                   the DICOM headers, or for PNGs from --views TABLE (torchxrayvision's
                   nlmcxr_dicom_metadata.csv.gz: imageid, View Position); split by a SHA-1 hash
                   of the report id (--split-seed; OpenI has no split and no patient ids);
                   MeSH severity modifiers -> '<Obs> subcategory mesh' (human fine labels).
                   Also reads the CSV export: ROOT/reports.csv (id, report) + ROOT/images.csv
                   (id, path) or ROOT/images/<id>.png
  --chexpert-plus CSV  CheXpert Plus reports (df_chexpert_plus_240401.csv) joined to the
                   CheXpert images under --images ROOT (.jpg or .png); official train/valid
                   split, test carved out of train by patient (--split-seed)
  --csv FILE       columns path + report (labeled by the labeler) or path + the 14 labels;
                   optional image_id, patient_id, study_id, view, split. Paths are relative
                   to FILE's folder or absolute, and kept so; each must be a regular file;
                   --root DIR refuses any path outside DIR (naming its row)

A missing column, an unknown label value or a missing image file stops with an error naming the
file and row; --skip-missing continues and writes the skipped files to INDEX.skipped.txt
(exit status 3 when it skipped any).
Paths in INDEX are written relative to INDEX's folder.

example:
  finegrain index --mimic /data/mimic-cxr-jpg/2.0.0 --reports /data/mimic-cxr-reports -o index.csv
  finegrain index --mimic phantom -o phantom/index.csv --views AP PA
  finegrain index --openi openi --views openi/nlmcxr_dicom_metadata.csv.gz -o openi/index.csv
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--mimic", metavar="ROOT", help="MIMIC-CXR-JPG root (or a phantom)")
    src.add_argument("--chexpert", metavar="ROOT", help="CheXpert-v1.0 root")
    src.add_argument("--openi", metavar="ROOT", help="OpenI folder (as published, or a CSV export)")
    src.add_argument(
        "--chexpert-plus", metavar="CSV", help="CheXpert Plus report table (with --images ROOT)"
    )
    src.add_argument("--csv", metavar="FILE", help="plain CSV of image paths and reports/labels")
    parser.add_argument("-o", "--out", required=True, metavar="INDEX", help="index table to write")
    add_overwrite_argument(parser, "the index table")
    parser.add_argument("--reports", metavar="ROOT", help="MIMIC reports root (default: --mimic)")
    parser.add_argument(
        "--views",
        nargs="+",
        default=["AP", "PA"],
        help="views kept (AP PA); 'all' keeps every view; with --openi and PNG images, a "
        "TABLE of view positions (imageid, View Position), frontal views kept",
    )
    parser.add_argument("--images", metavar="ROOT", help="CheXpert images root for --chexpert-plus")
    parser.add_argument(
        "--root", metavar="DIR", help="with --csv: every image path must lie inside DIR"
    )
    parser.add_argument(
        "--labels", default=None, help="chexpert | negbio | LABELS.csv from `finegrain label`"
    )
    parser.add_argument(
        "--skip-missing", action="store_true", help="skip missing images (listed in a file)"
    )
    parser.add_argument(
        "--split-seed", type=int, default=0, help="seed of patient splits where none is given (0)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from finegrain.cli import CLIError
    from finegrain.data.csvsource import index_csv
    from finegrain.data.index import write_index
    from finegrain.data.sources import rebase_paths
    from finegrain.io import atomic_write_text

    check_output(args.out, args.overwrite)
    views_table = None
    if args.openi and len(args.views) == 1 and Path(args.views[0]).is_file():
        views_table, args.views = args.views[0], ["AP", "PA"]
    views = None if [v.lower() for v in args.views] == ["all"] else tuple(args.views)
    if args.root and not args.csv:
        raise CLIError("--root only applies to --csv")
    if args.images and not args.chexpert_plus:
        raise CLIError("--images only applies to --chexpert-plus")
    if args.chexpert_plus and not args.images:
        raise CLIError("--chexpert-plus needs --images ROOT (the CheXpert image folder)")
    progress = not args.no_progress
    out = Path(args.out)
    if args.labels in ("chexpert", "negbio") and not args.mimic:
        raise CLIError(f"--labels {args.labels} only applies to --mimic")
    if args.reports and not args.mimic:
        raise CLIError("--reports only applies to --mimic")
    if args.mimic:
        from finegrain.data.mimic import index_mimic

        root = Path(args.mimic)
        frame, summary = index_mimic(
            root,
            reports_root=args.reports,
            views=views,
            labels=args.labels or "chexpert",
            skip_missing=args.skip_missing,
            progress=progress,
        )
    elif args.chexpert:
        from finegrain.data.chexpert import index_chexpert

        root = Path(args.chexpert)
        frame, summary = index_chexpert(
            root,
            views=views,
            labels=args.labels,
            skip_missing=args.skip_missing,
            seed=args.split_seed,
        )
    elif args.openi:
        from finegrain.data.openi import index_openi

        root = Path(args.openi)
        frame, summary = index_openi(
            root,
            views=views,
            views_table=views_table,
            labels=args.labels,
            skip_missing=args.skip_missing,
            seed=args.split_seed,
            progress=progress,
        )
    elif args.chexpert_plus:
        from finegrain.data.chexpert_plus import index_chexpert_plus

        root = Path(args.images)
        frame, summary = index_chexpert_plus(
            args.chexpert_plus,
            root,
            views=views,
            labels=args.labels,
            skip_missing=args.skip_missing,
            seed=args.split_seed,
            progress=progress,
        )
    else:
        root = Path(args.csv).parent
        frame, summary = index_csv(
            args.csv,
            labels=args.labels,
            skip_missing=args.skip_missing,
            seed=args.split_seed,
            progress=progress,
            root=args.root,
        )
    write_index(rebase_paths(frame, root, out), out)
    print(summary.format())
    if summary.skipped_files:
        listing = out.with_name(out.name + ".skipped.txt")
        atomic_write_text(listing, "\n".join(summary.skipped_files) + "\n")
        print(f"{len(summary.skipped_files)} skipped files listed in {listing}")
    print(f"wrote {out}")
    from finegrain.cli import exit_status

    return exit_status(ok=summary.kept, failed=len(summary.skipped_files))  # 3: files skipped
