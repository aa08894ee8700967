"""The MIMIC-CXR-JPG layout writer: folders, JPEGs, reports, the label/metadata/split CSVs, truth."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from finegrain.data.phantom.course import study_findings
from finegrain.data.phantom.finding import DRAWN
from finegrain.data.phantom.painter import Painter
from finegrain.data.phantom.wording import report_text
from finegrain.observations import OBSERVATIONS

#: Official MIMIC-CXR-JPG CSV names (gzipped) and their columns.
CSV_PREFIX = "mimic-cxr-2.0.0"
METADATA_COLUMNS: tuple[str, ...] = (
    "dicom_id",
    "subject_id",
    "study_id",
    "PerformedProcedureStepDescription",
    "ViewPosition",
    "Rows",
    "Columns",
    "StudyDate",
    "StudyTime",
    "ProcedureCodeSequence_CodeMeaning",
    "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
)
SPLIT_COLUMNS: tuple[str, ...] = ("dicom_id", "study_id", "subject_id", "split")
LABEL_CSV_COLUMNS: tuple[str, ...] = ("subject_id", "study_id", *OBSERVATIONS)
TRUTH_FILE = "phantom-truth.csv"
TRUTH_COLUMNS: tuple[str, ...] = (
    "subject_id",
    "study_id",
    "observation",
    "severity",
    "prior_severity",
    "change",
    "status",
    "severity_term",
    "change_term",
    "subcategory",
    "drawn",
)


def _folder_mode() -> int:
    """Permissions a plain ``mkdir()`` would give a new folder (0o777 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


@dataclass
class PhantomSummary:
    """What ``make_phantom`` wrote."""

    root: Path
    subjects: int = 0
    studies: int = 0
    images: int = 0
    frontal: int = 0
    lateral: int = 0
    views: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)  # images per split
    label_rows_missing: int = 0  # studies left out of the chexpert/negbio CSVs
    blank_label_rows: int = 0  # studies whose chexpert row has every label blank
    seconds: float = 0.0

    def format(self) -> str:
        return (
            f"phantom at {self.root}: {self.subjects} subjects, {self.studies} studies, "
            f"{self.images} images ({self.frontal} frontal, {self.lateral} lateral); "
            f"views {self.views}; splits {self.splits}; "
            f"{self.label_rows_missing} studies without a label row, "
            f"{self.blank_label_rows} with all labels blank; {self.seconds:.1f} s"
        )


def _dicom_id(rng: np.random.Generator) -> str:
    return "-".join(f"{int(v):08x}" for v in rng.integers(0, 2**32, 5, dtype=np.uint64))


def _coarse(status: int | None) -> float:
    return np.nan if status is None else float(status)


def make_phantom(
    out: str | Path,
    *,
    studies: int = 2000,
    size: int = 128,
    seed: int = 0,
    progress: bool = False,
) -> PhantomSummary:
    """Write a MIMIC-CXR-JPG-shaped phantom of ``studies`` studies with ``size`` px JPEGs.

    Deterministic for a given ``seed`` (same bytes for CSVs, reports and images).
    Returns a :class:`PhantomSummary`; ``phantom-truth.csv`` holds the true severity, change,
    status and subcategory per study and observation.
    """
    if studies < 1:
        raise ValueError(f"studies must be >= 1, got {studies}")
    if size < 16:
        raise ValueError(f"size must be >= 16 px, got {size}")
    start = time.perf_counter()
    final = Path(out)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise FileExistsError(f"phantom output {final} exists and is not an empty folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    # the whole tree is written in a hidden staging folder, then renamed into place: a killed
    # run leaves no half-written phantom (and no per-file fsync is needed)
    root = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        os.chmod(root, _folder_mode())  # mkdtemp makes 0700; the phantom must respect the umask
        summary = _write_phantom(root, studies=studies, size=size, seed=seed, progress=progress)
        if final.exists():
            final.rmdir()
        os.replace(root, final)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    summary.root = final
    summary.seconds = time.perf_counter() - start
    return summary


def _write_phantom(root: Path, *, studies: int, size: int, seed: int, progress: bool):
    import pandas as pd
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    painter = Painter(size, rng)

    # subjects with 1-5 studies each, in time order
    counts: list[int] = []
    while sum(counts) < studies:
        counts.append(int(rng.choice([1, 2, 3, 4, 5], p=[0.3, 0.25, 0.2, 0.15, 0.1])))
    counts[-1] -= sum(counts) - studies
    n_subj = len(counts)
    subject_ids = np.sort(rng.choice(10_000_000, n_subj, replace=False)) + 10_000_000
    study_ids = rng.choice(10_000_000, studies, replace=False) + 50_000_000
    split_of = [
        str(v) for v in rng.choice(["train", "validate", "test"], n_subj, p=[0.7, 0.15, 0.15])
    ]

    meta_rows, split_rows, label_rows, truth_rows = [], [], [], []
    summary = PhantomSummary(root=root, subjects=n_subj, studies=studies)
    bar = tqdm(total=studies, desc="phantom", unit="study", disable=not progress)
    k = 0
    for si, n in enumerate(counts):
        subj = str(subject_ids[si])
        date = 2110_01_01 + int(rng.integers(0, 70)) * 10000
        prev = None
        for _ in range(n):
            study = str(study_ids[k])
            k += 1
            view = "AP" if rng.random() < 0.45 else "PA"
            findings = study_findings(rng, prev, view)
            report = report_text(rng, findings, view, prev is not None)
            sdir = root / "files" / f"p{subj[:2]}" / f"p{subj}"
            (sdir / f"s{study}").mkdir(parents=True, exist_ok=True)
            (sdir / f"s{study}.txt").write_text(report, encoding="utf-8")
            date += int(rng.integers(1, 40))
            images = [(view, painter.frontal(findings, view))]
            if view == "PA" and rng.random() < 0.6 or view == "AP" and rng.random() < 0.05:
                images.append(
                    ("LL" if rng.random() < 0.1 else "LATERAL", painter.lateral(findings))
                )
            for img_view, pixels in images:
                dicom = _dicom_id(rng)
                buf = io.BytesIO()
                Image.fromarray(pixels, mode="L").save(buf, format="JPEG", quality=90)
                (sdir / f"s{study}" / f"{dicom}.jpg").write_bytes(buf.getvalue())
                recorded_view = img_view if rng.random() > 0.01 else ""  # MIMIC has blanks too
                frontal = img_view in ("AP", "PA")
                summary.frontal += frontal
                summary.lateral += not frontal
                summary.views[recorded_view or "missing"] = (
                    summary.views.get(recorded_view or "missing", 0) + 1
                )
                summary.splits[split_of[si]] = summary.splits.get(split_of[si], 0) + 1
                meta_rows.append(
                    (
                        dicom,
                        subj,
                        study,
                        "CHEST (PORTABLE AP)" if view == "AP" else "CHEST (PA AND LAT)",
                        recorded_view,
                        size,
                        size,
                        date,
                        f"{int(rng.integers(0, 24)):02d}{int(rng.integers(0, 60)):02d}"
                        f"{int(rng.integers(0, 60)):02d}.{int(rng.integers(0, 1000)):03d}",
                        "CHEST (PORTABLE AP)" if view == "AP" else "CHEST (PA AND LAT)",
                        {"AP": "antero-posterior", "PA": "postero-anterior"}.get(
                            img_view, "lateral" if img_view == "LATERAL" else "left lateral"
                        ),
                        "Recumbent" if view == "AP" else "Erect",
                    )
                )
                split_rows.append((dicom, study, subj, split_of[si]))
            row = [int(subj), int(study)] + [_coarse(findings[o].status) for o in OBSERVATIONS]
            label_rows.append(row)
            for obs in OBSERVATIONS:
                f = findings[obs]
                truth_rows.append(
                    (
                        subj,
                        study,
                        obs,
                        round(f.severity, 4),
                        round(f.prior, 4),
                        f.change,
                        "" if f.status is None else f.status,
                        f.severity_term,
                        f.change_term,
                        f.subcategory if f.status in (1, -1) else "",
                        obs in DRAWN,
                    )
                )
            prev = findings
            bar.update(1)
    bar.close()
    summary.images = len(meta_rows)

    # coarse labels as a labeler gives them: a little noise, NegBio disagreeing a little more
    chexpert = pd.DataFrame(label_rows, columns=list(LABEL_CSV_COLUMNS))
    values = chexpert[list(OBSERVATIONS)].to_numpy()
    flip = rng.random(values.shape) < 0.015
    values = np.where(flip & (values == -1), 1.0, np.where(flip & (values == 1), -1.0, values))
    missed = (rng.random(values.shape) < 0.01) & ~np.isnan(values)
    values = np.where(missed, np.nan, values)
    blank_rows = rng.random(len(values)) < 0.01
    values[blank_rows] = np.nan
    chexpert[list(OBSERVATIONS)] = values
    negbio = chexpert.copy()
    nv = negbio[list(OBSERVATIONS)].to_numpy()
    disagree = (rng.random(nv.shape) < 0.04) & ~np.isnan(nv)  # uncertain <-> positive,
    swapped = np.select([nv == -1, nv == 1], [1.0, -1.0], default=np.nan)  # negative -> blank
    nv = np.where(disagree, swapped, nv)
    negbio[list(OBSERVATIONS)] = nv
    no_row = rng.random(len(chexpert)) < 0.01
    summary.label_rows_missing = int(no_row.sum())
    summary.blank_label_rows = int((blank_rows & ~no_row).sum())
    order = np.argsort(chexpert["study_id"].to_numpy(), kind="stable")
    keep = order[~no_row[order]]

    def write_gz(name: str, frame) -> None:
        text = frame.to_csv(index=False, lineterminator="\n").encode()
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
            gz.write(text)
        (root / f"{CSV_PREFIX}-{name}.csv.gz").write_bytes(buf.getvalue())

    write_gz("chexpert", chexpert.iloc[keep])
    write_gz("negbio", negbio.iloc[keep])
    meta = pd.DataFrame(meta_rows, columns=list(METADATA_COLUMNS))
    write_gz("metadata", meta)
    write_gz("split", pd.DataFrame(split_rows, columns=list(SPLIT_COLUMNS)))
    truth = pd.DataFrame(truth_rows, columns=list(TRUTH_COLUMNS))
    (root / TRUTH_FILE).write_text(truth.to_csv(index=False, lineterminator="\n"), encoding="utf-8")
    return summary
