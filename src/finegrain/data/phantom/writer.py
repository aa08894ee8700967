"""The MIMIC-CXR-JPG layout writer: folders, JPEGs, reports, the label/metadata/split CSVs, truth."""

from __future__ import annotations

import gzip
import inspect
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from finegrain.data.cache import check_image_size
from finegrain.data.phantom.calibration import CALIBRATED, DEFAULT_PROFILE, load_calibration
from finegrain.data.phantom.course import LabelPlan, study_findings
from finegrain.data.phantom.finding import DEFAULT_DESIGN, DESIGNS
from finegrain.data.phantom.knobs import PhantomKnobs
from finegrain.data.phantom.noise import MISSING_ROW, add_labeler_noise, negbio_from
from finegrain.data.phantom.painter import Painter
from finegrain.data.phantom.splits import counts_plan, scaled_counts, subject_plan
from finegrain.data.phantom.wording import report_text
from finegrain.errors import FinegrainError, option
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
    "image_truth",
    "where",
)
#: Truth columns the continuum design adds: each lesion's own appearance and the severity the
#: report's reader saw (empty where no reader graded it).
LESION_COLUMNS: tuple[str, ...] = (
    "extent",
    "density",
    "offset_x",
    "offset_y",
    "reader_severity",
)
IMAGES_FILE = "phantom-images.csv"
IMAGE_COLUMNS: tuple[str, ...] = (
    "dicom_id",
    "subject_id",
    "study_id",
    "split",
    "view",
    "angle",
    "scale",
    "shift_x",
    "shift_y",
    "jitter",
)
SETTINGS_FILE = "phantom.json"
#: The format ``make_phantom`` writes by default (the continuum design's; bands: 2).
FORMAT_VERSION = DESIGNS[DEFAULT_DESIGN]
#: With ``mimic_counts``: the share of a study's images after its first (frontal) one that are
#: lateral, so that about 64 % of all images are frontal (AP or PA), as in MIMIC-CXR-JPG.
EXTRA_LATERAL_SHARE = 0.9


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
    eval_studies: int | None = None,
    profile: str = DEFAULT_PROFILE,
    uncertain_mixture: Mapping[str, float] | None = None,
    nocue_severity: float | Mapping[str, float] | None = None,
    visibility: float | Mapping[str, float] = 1.0,
    prevalence: float | Mapping[str, float] = 1.0,
    conspicuity: float | Mapping[str, float] = 1.0,
    workers: int | None = None,
    mimic_counts: bool = False,
    design: str = DEFAULT_DESIGN,
    slight_share: float | Mapping[str, float] | None = None,
    spread: float | Mapping[str, float] | None = None,
    reader_agreement: float | None = None,
) -> PhantomSummary:
    """Write a MIMIC-CXR-JPG-shaped phantom with ``size`` px JPEGs; calibrated to ``profile``.

    ``studies``: number of studies, split by subject about 70 / 15 / 15 % into train / validate /
    test; with ``eval_studies``, ``studies`` is the number of *training* studies and validate and
    test get ``eval_studies`` studies each (see :func:`~finegrain.data.phantom.splits.required_eval_studies`).
    ``design``: ``continuum`` (severity a number, lesions that vary, a reader with noisy
    cut-points; format 3) or ``bands`` (finegrain 0.2-0.3's two severity bands and faithful
    reports, byte for byte; format 2): :mod:`finegrain.data.phantom.finding`.
    The knobs (``uncertain_mixture``, ``visibility``, ``prevalence``, ``conspicuity``; the
    continuum's ``slight_share``, ``spread``, ``reader_agreement``; the bands' ``nocue_severity``)
    are described in :mod:`finegrain.data.phantom.knobs`; their defaults are the calibrated point.

    Deterministic for a given ``seed`` and settings (same bytes for CSVs, reports and images),
    whatever the number of ``workers`` (processes; default: the available CPUs, at most 8).

    ``mimic_counts``: MIMIC-CXR-JPG's shape at ``studies`` studies (``eval_studies`` must be
    ``None``): subjects, images and each split's images in MIMIC's ratios (exactly MIMIC's 65,379
    patients, 377,110 images and 368,960 / 2,991 / 5,159 split images at 227,835 studies; see
    :func:`~finegrain.data.phantom.splits.counts_plan`). A study's first image is frontal, each
    further one lateral with probability :data:`EXTRA_LATERAL_SHARE`. For dry runs at full row
    count (``benchmarks/mimic_scale.py``); the labels keep the calibration's statistics.
    Besides the MIMIC files it writes ``phantom-truth.csv`` (true severity, image truth, cues and
    subcategory per study and observation), ``phantom-images.csv`` (each image's acquisition
    geometry, for lesion masks: :func:`finegrain.data.phantom.truth.read_truth`) and
    ``phantom.json`` (the settings). Returns a :class:`PhantomSummary`.
    """
    if studies < 1:
        raise FinegrainError(f"studies must be >= 1, got {studies}")
    if eval_studies is not None and eval_studies < 1:
        raise FinegrainError(
            f"{option('eval_studies', '--eval-studies')} must be >= 1, got {eval_studies}"
        )
    if size < 16:
        raise FinegrainError(f"size must be >= 16 px, got {size}")
    check_image_size(size)  # the cache's upper bound, before any image is allocated
    if mimic_counts and eval_studies is not None:
        raise FinegrainError(
            f"{option('mimic_counts', '--mimic-counts')} sets the split sizes: "
            f"{option('eval_studies must be None', '--eval-studies does not apply')}"
        )
    knobs = _knobs(
        design, uncertain_mixture, nocue_severity, visibility, prevalence, conspicuity,
        slight_share, spread, reader_agreement,
    )  # fmt: skip
    calibration = load_calibration(profile)
    plan = LabelPlan.build(calibration, knobs)  # errors before anything is written
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
        settings = _settings(studies, eval_studies, size, seed, profile, knobs, mimic_counts)
        if knobs.design == "continuum":  # what the knobs made of the reader (for reading only)
            settings["reader"] = plan.reader()
        summary = _write_phantom(
            root,
            settings,
            calibration=calibration,
            plan=plan,
            knobs=knobs,
            progress=progress,
            workers=workers,
        )
        if final.exists():
            final.rmdir()
        os.replace(root, final)
    except OSError as exc:  # named at the user's path, not the staging folder's
        shutil.rmtree(root, ignore_errors=True)
        raise _at_final_path(exc, root, final) from exc
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    summary.root = final
    summary.seconds = time.perf_counter() - start
    return summary


def _knobs(
    design, uncertain_mixture, nocue_severity, visibility, prevalence, conspicuity,
    slight_share, spread, reader_agreement,
) -> PhantomKnobs:  # fmt: skip
    return PhantomKnobs(
        **({} if uncertain_mixture is None else {"uncertain_mixture": uncertain_mixture}),
        nocue_severity=nocue_severity,
        visibility=visibility,
        prevalence=prevalence,
        conspicuity=conspicuity,
        slight_share=slight_share,
        spread=spread,
        reader_agreement=reader_agreement,
        design=design,
    )


def _settings(studies, eval_studies, size, seed, profile, knobs, mimic_counts) -> dict:
    """What ``phantom.json`` records: its format (the design's), the design (continuum only,
    so a bands phantom keeps finegrain 0.3's bytes), the sizes and the knobs."""
    settings = {"format": DESIGNS[knobs.design]}
    if knobs.design != "bands":
        settings["design"] = knobs.design
    settings |= {
        "studies": studies,
        "eval_studies": eval_studies,
        "size": size,
        "seed": seed,
        "profile": profile,
        "knobs": knobs.as_dict(),
    }
    if mimic_counts:  # only then: the default phantom's bytes stay as they were
        settings["mimic_counts"] = True
    return settings


def phantom_differences(root: str | Path, **options: Any) -> list[str]:
    """How the phantom at ``root`` differs from the one :func:`make_phantom` would write with
    ``options`` (its keywords; its defaults for those left out): ``"field: recorded ->
    requested"`` per differing setting of its ``phantom.json`` (knobs compared one by one in
    their normalised form, so defaults given or left out compare equal; ``workers`` and
    ``progress`` do not change the phantom). Empty: the same."""
    call = inspect.signature(make_phantom).bind(root, **options)  # an unknown one: TypeError
    call.apply_defaults()
    a = call.arguments
    knobs = _knobs(
        a["design"], a["uncertain_mixture"], a["nocue_severity"], a["visibility"],
        a["prevalence"], a["conspicuity"], a["slight_share"], a["spread"], a["reader_agreement"],
    )  # fmt: skip
    wanted = _settings(
        a["studies"], a["eval_studies"], a["size"], a["seed"], a["profile"], knobs,
        a["mimic_counts"],
    )  # fmt: skip
    path = Path(root) / SETTINGS_FILE
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise FinegrainError(f"{path}: not valid JSON ({exc})") from exc
    recorded_knobs = recorded.get("knobs") or {}
    pairs = [("design", recorded.get("design", "bands"), knobs.design)]
    if pairs[0][1] != pairs[0][2]:  # other designs have other knobs: the design says it all
        return [f"design: {pairs[0][1]} -> {pairs[0][2]}"]
    pairs += [
        (key, recorded.get(key), wanted.get(key))
        for key in ("studies", "eval_studies", "size", "seed", "profile", "mimic_counts")
    ]
    defaults = {"conspicuity": 1.0}  # bands: written only when not 1
    names = list(wanted["knobs"]) + [k for k in recorded_knobs if k not in wanted["knobs"]]
    pairs += [
        (
            f"knobs.{k}",
            recorded_knobs.get(k, defaults.get(k)),
            wanted["knobs"].get(k, defaults.get(k)),
        )
        for k in names
    ]
    return [f"{key}: {old} -> {new}" for key, old, new in pairs if old != new]


def _at_final_path(exc: OSError, root: Path, final: Path) -> OSError:
    """``exc`` naming the place under ``final`` where the staging folder ``root`` had it."""
    if exc.errno is None or exc.filename is None:
        return exc
    name = str(exc.filename)
    if name != str(root) and not name.startswith(str(root) + os.sep):
        return exc
    return OSError(exc.errno, exc.strerror, str(final) + name[len(str(root)) :])


CHUNK_STUDIES = 256


@dataclass
class _Chunk:
    """Consecutive subjects drawn by one worker with their own random stream."""

    root: Path
    seed: int
    number: int
    subjects: list[tuple[str, str, list[str]]]  # (subject id, split, study ids)
    size: int
    calibration: object
    plan: object
    knobs: PhantomKnobs  # the drawn contrast of each finding
    #: images of each study of each subject (``mimic_counts``); None: drawn per study
    image_counts: list[list[int]] | None = None


@dataclass
class _ChunkRows:
    meta: list = field(default_factory=list)
    split: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    truth: list = field(default_factory=list)
    images: list = field(default_factory=list)
    frontal: int = 0
    lateral: int = 0
    views: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)


def _workers(requested: int | None) -> int:
    if requested is not None:
        return max(1, int(requested))
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


def _write_chunk(chunk: _Chunk) -> _ChunkRows:
    """Draw and write the studies of ``chunk`` (images and reports); return their table rows."""
    rng = np.random.default_rng(np.random.SeedSequence(chunk.seed, spawn_key=(chunk.number,)))
    calibration, plan, root, size = chunk.calibration, chunk.plan, chunk.root, chunk.size
    painter = Painter(size, rng, chunk.knobs)
    lesions = chunk.knobs.design == "continuum"  # the truth's lesion columns
    out = _ChunkRows()
    for number, (subj, split, study_list) in enumerate(chunk.subjects):
        date = 2110_01_01 + int(rng.integers(0, 70)) * 10000
        prev = None
        counts = None if chunk.image_counts is None else chunk.image_counts[number]
        for position, study in enumerate(study_list):
            view = "AP" if rng.random() < calibration.ap_share else "PA"
            findings = study_findings(rng, prev, view, plan)
            report = report_text(rng, findings, view, prev is not None)
            sdir = root / "files" / f"p{subj[:2]}" / f"p{subj}"
            (sdir / f"s{study}").mkdir(parents=True, exist_ok=True)
            (sdir / f"s{study}.txt").write_text(report, encoding="utf-8")
            date += int(rng.integers(1, 40))
            images = [(view, *painter.frontal(findings, view))]
            if counts is None:
                if rng.random() < calibration.second_frontal[view]:
                    images.append((view, *painter.frontal(findings, view)))
                if rng.random() < calibration.lateral[view]:
                    lateral_view = "LL" if rng.random() < 0.1 else "LATERAL"
                    images.append((lateral_view, painter.lateral(findings), None))
            else:
                for _ in range(counts[position] - 1):
                    if rng.random() < EXTRA_LATERAL_SHARE:
                        lateral_view = "LL" if rng.random() < 0.3 else "LATERAL"
                        images.append((lateral_view, painter.lateral(findings), None))
                    else:
                        images.append((view, *painter.frontal(findings, view)))
            for img_view, pixels, geometry in images:
                dicom = _dicom_id(rng)
                buf = io.BytesIO()
                Image.fromarray(pixels, mode="L").save(buf, format="JPEG", quality=90)
                (sdir / f"s{study}" / f"{dicom}.jpg").write_bytes(buf.getvalue())
                recorded_view = img_view if rng.random() > 0.01 else ""  # MIMIC has blanks too
                frontal = img_view in ("AP", "PA")
                out.frontal += frontal
                out.lateral += not frontal
                out.views[recorded_view or "missing"] = (
                    out.views.get(recorded_view or "missing", 0) + 1
                )
                out.splits[split] = out.splits.get(split, 0) + 1
                out.meta.append(
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
                out.split.append((dicom, study, subj, split))
                g = geometry
                out.images.append(
                    (dicom, subj, study, split, img_view)
                    + (
                        (round(g.angle, 5), round(g.scale, 6), round(g.shift_x, 6),
                         round(g.shift_y, 6), round(g.jitter, 6))
                        if g is not None
                        else ("", "", "", "", "")
                    )
                )  # fmt: skip
            row = [int(subj), int(study)] + [_coarse(findings[o].status) for o in OBSERVATIONS]
            out.labels.append(row)
            for obs in OBSERVATIONS:
                f = findings[obs]
                row = (
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
                    obs in CALIBRATED,
                    f.image_truth,
                    f.where,
                )
                if lesions:
                    seen = "" if np.isnan(f.reader_severity) else round(f.reader_severity, 4)
                    row += (
                        round(f.extent, 4),
                        round(f.density, 4),
                        round(f.offset_x, 4),
                        round(f.offset_y, 4),
                        seen,
                    )
                out.truth.append(row)
            prev = findings
    return out


def _write_phantom(
    root: Path, settings: dict, *, calibration, plan, knobs, progress: bool, workers: int | None
):
    import pandas as pd
    from tqdm import tqdm

    studies = settings["studies"]
    rng = np.random.default_rng(settings["seed"])
    image_plan: list[list[int]] | None = None
    if settings.get("mimic_counts"):
        shaped = counts_plan(rng, scaled_counts(studies))
        subjects = [(split, len(images)) for split, images in shaped]
        image_plan = [images for _, images in shaped]
    else:
        subjects = subject_plan(
            rng, calibration.studies_per_subject, studies, settings["eval_studies"]
        )
    total = sum(n for _, n in subjects)
    subject_ids = np.sort(rng.choice(10_000_000, len(subjects), replace=False)) + 10_000_000
    study_ids = rng.choice(40_000_000, total, replace=False) + 50_000_000

    # subjects are drawn in chunks of about CHUNK_STUDIES studies, each with its own random
    # stream (the seed and the chunk's number): the bytes do not depend on the worker count
    chunks: list[_Chunk] = []
    k = 0
    members: list[tuple[str, str, list[str]]] = []
    first = 0  # the chunk's first subject
    in_chunk = 0
    for si, (split, n) in enumerate(subjects):
        members.append((str(subject_ids[si]), split, [str(v) for v in study_ids[k : k + n]]))
        k += n
        in_chunk += n
        if in_chunk >= CHUNK_STUDIES or si == len(subjects) - 1:
            chunks.append(
                _Chunk(
                    root=root,
                    seed=settings["seed"],
                    number=len(chunks),
                    subjects=members,
                    size=settings["size"],
                    calibration=calibration,
                    plan=plan,
                    knobs=knobs,
                    image_counts=None if image_plan is None else image_plan[first : si + 1],
                )
            )
            members = []
            first, in_chunk = si + 1, 0
    workers = min(_workers(workers), len(chunks))
    summary = PhantomSummary(root=root, subjects=len(subjects), studies=total)
    meta_rows, split_rows, label_rows, truth_rows, image_rows = [], [], [], [], []
    bar = tqdm(total=total, desc="phantom", unit="study", disable=not progress)
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # the platform's default start method, as torch's DataLoader workers use (fork on
        # Linux; elsewhere spawn, which needs the usual `if __name__ == "__main__":` guard)
        context = multiprocessing.get_context()
        from finegrain.workers import die_with_parent

        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
        ) as pool:  # the workers end if this process is killed
            results = pool.map(_write_chunk, chunks)
            done = []
            for chunk, rows in zip(chunks, results, strict=True):
                done.append(rows)
                bar.update(sum(len(m[2]) for m in chunk.subjects))
    else:
        done = []
        for chunk in chunks:
            done.append(_write_chunk(chunk))
            bar.update(sum(len(m[2]) for m in chunk.subjects))
    bar.close()
    for rows in done:
        meta_rows += rows.meta
        split_rows += rows.split
        label_rows += rows.labels
        truth_rows += rows.truth
        image_rows += rows.images
        summary.frontal += rows.frontal
        summary.lateral += rows.lateral
        for key, value in rows.views.items():
            summary.views[key] = summary.views.get(key, 0) + value
        for key, value in rows.splits.items():
            summary.splits[key] = summary.splits.get(key, 0) + value
    summary.images = len(meta_rows)

    # coarse labels as a labeler gives them: a little noise, NegBio disagreeing a little more
    chexpert = pd.DataFrame(label_rows, columns=list(LABEL_CSV_COLUMNS))
    values, blank_rows = add_labeler_noise(chexpert[list(OBSERVATIONS)].to_numpy(), rng)
    chexpert[list(OBSERVATIONS)] = values
    negbio = chexpert.copy()
    negbio[list(OBSERVATIONS)] = negbio_from(values, rng)
    no_row = rng.random(len(chexpert)) < MISSING_ROW
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

    def write_csv(name: str, frame) -> None:
        (root / name).write_text(frame.to_csv(index=False, lineterminator="\n"), encoding="utf-8")

    write_gz("chexpert", chexpert.iloc[keep])
    write_gz("negbio", negbio.iloc[keep])
    write_gz("metadata", pd.DataFrame(meta_rows, columns=list(METADATA_COLUMNS)))
    write_gz("split", pd.DataFrame(split_rows, columns=list(SPLIT_COLUMNS)))
    columns = TRUTH_COLUMNS + (LESION_COLUMNS if knobs.design == "continuum" else ())
    write_csv(TRUTH_FILE, pd.DataFrame(truth_rows, columns=list(columns)))
    write_csv(IMAGES_FILE, pd.DataFrame(image_rows, columns=list(IMAGE_COLUMNS)))
    (root / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return summary
