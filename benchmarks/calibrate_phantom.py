"""Measure the phantom's calibration table from real label statistics and write it as package data.

    python benchmarks/calibrate_phantom.py [--chexpert FILE] [--openi REPORTS_CSV] [--out DIR]

Two real sources, both public and free of credentials:

1. **CheXpert training labels** (``chexpert_train.csv.gz``, the CheXpert labeler's output for the
   223,414 CheXpert training radiographs), shipped inside the ``torchxrayvision`` wheel
   (``pip install torchxrayvision``; the file is found under the installed package). Among the
   frontal images (``AP/PA`` in {AP, PA}) it gives, per observation, the shares of positive /
   uncertain / negative / blank labels; per study the AP share, the share of studies with a second
   frontal image and with a lateral image (by view); per patient the number of studies.
2. **OpenI reports** (the development half in ``../shared/data/openi/reports.csv``), labelled with
   ``finegrain``'s own report labeler: per observation, among positives, the share whose subcategory
   is *atypical* and the share with **no cue** at all (neither a severity nor a change word, which
   the paper's rule calls typical).

Output (checked into the package, read by ``finegrain.data.phantom.calibration``):
``OUT/chexpert-frontal.csv`` (one row per observation) and ``OUT/chexpert-frontal.json`` (views,
images per study, studies per subject, sources, date, filters, and the file's SHA-256).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import math
import sys
import tempfile
from pathlib import Path

import pandas as pd

from finegrain.io import atomic_write_csv, atomic_write_text
from finegrain.observations import OBSERVATIONS

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "src" / "finegrain" / "data" / "phantom" / "calibration"
DEFAULT_OPENI = HERE.parent.parent / "shared" / "data" / "openi" / "reports.csv"
PROFILE = "chexpert-frontal"
MAX_STUDIES_PER_SUBJECT = 20  # longer histories are pooled into the last bin


def find_chexpert_labels() -> Path:
    """``chexpert_train.csv.gz`` inside the installed torchxrayvision package (not imported)."""
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "torchxrayvision is not installed: `pip install torchxrayvision` ships "
            "data/chexpert_train.csv.gz (CheXpert's training labels), or pass --chexpert FILE"
        )
    for folder in spec.submodule_search_locations:
        hits = sorted(Path(folder).rglob("chexpert_train.csv*"))
        if hits:
            return hits[0]
    raise SystemExit(
        f"chexpert_train.csv.gz not found under {list(spec.submodule_search_locations)}; "
        "pass --chexpert FILE"
    )


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95% interval of a share ``k / n``."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def chexpert_statistics(path: Path) -> tuple[pd.DataFrame, dict]:
    frame = pd.read_csv(path)
    missing = [c for c in ("Path", "Frontal/Lateral", "AP/PA", *OBSERVATIONS) if c not in frame]
    if missing:
        raise SystemExit(f"{path}: columns {missing} missing")
    ids = frame["Path"].str.extract(r"(patient\d+)/(study\d+)")
    if ids.isna().any().any():
        row = int(ids.isna().any(axis=1).to_numpy().argmax())
        raise SystemExit(f"{path}: line {row + 2}: no patient/study in Path")
    frame["patient"] = ids[0]
    frame["study"] = ids[0] + "/" + ids[1]
    frontal = frame[frame["AP/PA"].isin(["AP", "PA"])]
    rows = []
    for obs in OBSERVATIONS:
        values = frontal[obs]
        rows.append(
            {
                "observation": obs,
                "positive": (values == 1).mean(),
                "uncertain": (values == -1).mean(),
                "negative": (values == 0).mean(),
                "blank": values.isna().mean(),
                "images": len(values),
            }
        )
    shares = pd.DataFrame(rows)
    per_study = (
        frame.assign(
            ap=frame["AP/PA"].eq("AP"),
            pa=frame["AP/PA"].eq("PA"),
            lateral=frame["Frontal/Lateral"].eq("Lateral"),
        )
        .groupby("study")[["ap", "pa", "lateral"]]
        .sum()
    )
    with_frontal = per_study[(per_study.ap + per_study.pa) > 0]
    ap, pa = with_frontal[with_frontal.ap > 0], with_frontal[with_frontal.pa > 0]
    studies = frame.groupby("patient")["study"].nunique().clip(upper=MAX_STUDIES_PER_SUBJECT)
    per_subject = studies.value_counts(normalize=True).sort_index()
    meta = {
        "images": len(frame),
        "frontal_images": len(frontal),
        "frontal_ap_share_of_images": round(float((frontal["AP/PA"] == "AP").mean()), 4),
        "studies": int(frame["study"].nunique()),
        "studies_with_frontal": len(with_frontal),
        "subjects": int(frame["patient"].nunique()),
        "ap_share_of_studies": round(float((with_frontal.ap > 0).mean()), 4),
        "second_frontal": {
            "AP": round(float((ap.ap > 1).mean()), 4),
            "PA": round(float((pa.pa > 1).mean()), 4),
        },
        "lateral": {
            "AP": round(float((ap.lateral > 0).mean()), 4),
            "PA": round(float((pa.lateral > 0).mean()), 4),
        },
        "frontal_images_per_study": round(float((with_frontal.ap + with_frontal.pa).mean()), 4),
        "images_per_study": {
            str(k): round(float(v), 4)
            for k, v in frame.groupby("study")
            .size()
            .value_counts(normalize=True)
            .sort_index()
            .items()
        },
        "studies_per_subject": {str(k): round(float(v), 5) for k, v in per_subject.items()},
    }
    return shares, meta


def openi_cues(reports: Path) -> pd.DataFrame:
    """Atypical and no-cue shares among positives, as ``finegrain label`` reads the reports."""
    from finegrain.reports import label_reports

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "labels.csv"
        label_reports(reports, out)
        labels = pd.read_csv(out, dtype=str, keep_default_na=False)
    rows = []
    for obs in OBSERVATIONS:
        positive = labels[labels[obs] == "1"]
        n = len(positive)
        no_cue = int(
            ((positive[f"{obs} severity"] == "") & (positive[f"{obs} change"] == "")).sum()
        )
        atypical = int((positive[f"{obs} subcategory"] == "atypical").sum())
        lo_a, hi_a = wilson(atypical, n)
        lo_c, hi_c = wilson(no_cue, n)
        rows.append(
            {
                "observation": obs,
                "atypical": atypical / n if n else math.nan,
                "no_cue": no_cue / n if n else math.nan,
                "reports_positive": n,
                "atypical_ci": f"{lo_a:.3f}-{hi_a:.3f}" if n else "",
                "no_cue_ci": f"{lo_c:.3f}-{hi_c:.3f}" if n else "",
            }
        )
    return pd.DataFrame(rows), len(labels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chexpert", type=Path, help="chexpert_train.csv(.gz) (default: found)")
    parser.add_argument("--openi", type=Path, default=DEFAULT_OPENI, help="OpenI reports.csv")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="calibration folder")
    args = parser.parse_args(argv)
    chexpert = args.chexpert or find_chexpert_labels()
    if not args.openi.is_file():
        raise SystemExit(f"OpenI reports not found at {args.openi} (pass --openi)")
    shares, meta = chexpert_statistics(chexpert)
    cues, n_reports = openi_cues(args.openi)
    table = shares.merge(cues, on="observation")
    for col in ("positive", "uncertain", "negative", "blank", "atypical", "no_cue"):
        table[col] = table[col].round(4)
    version = None
    try:
        from importlib.metadata import version as _version

        version = _version("torchxrayvision")
    except Exception:  # noqa: BLE001 - the version is informative only
        version = None
    meta = {
        "profile": PROFILE,
        "created": dt.date.today().isoformat(),
        "labels_source": {
            "file": chexpert.name,
            "package": f"torchxrayvision {version}" if version else "torchxrayvision",
            "sha256": hashlib.sha256(chexpert.read_bytes()).hexdigest(),
            "what": "CheXpert-v1.0 training labels (CheXpert labeler), 223,414 radiographs",
            "filter": "frontal images: AP/PA column in {AP, PA}",
        },
        "cue_source": {
            "file": "openi/reports.csv (development half, odd report ids)",
            "reports": n_reports,
            "labeler": "finegrain label (default lexicon, precedence=severity)",
            "what": "among positives: atypical share; no-cue share (severity and change empty)",
        },
        **meta,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_csv(args.out / f"{PROFILE}.csv", table)
    atomic_write_text(args.out / f"{PROFILE}.json", json.dumps(meta, indent=2) + "\n")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.to_string(index=False))
    print(json.dumps({k: v for k, v in meta.items() if k != "studies_per_subject"}, indent=1))
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
