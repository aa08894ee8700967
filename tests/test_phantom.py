"""The MIMIC-shaped phantom: exact layout, CSV names/columns, determinism, subtle atypicals."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from finegrain.data.phantom import (
    DRAWN,
    LABEL_CSV_COLUMNS,
    METADATA_COLUMNS,
    SEVERITY_CUT,
    SPLIT_COLUMNS,
    TRUTH_COLUMNS,
    Finding,
    Painter,
    make_phantom,
)
from finegrain.data.phantom.writer import LESION_COLUMNS
from finegrain.observations import OBSERVATIONS

JPG = re.compile(r"files/p(\d\d)/p(\d{8})/s(\d{8})/([0-9a-f]{8}(?:-[0-9a-f]{8}){4})\.jpg")
TXT = re.compile(r"files/p(\d\d)/p(\d{8})/s(\d{8})\.txt")


def _csv(root: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(root / f"mimic-cxr-2.0.0-{name}.csv.gz", dtype=str, keep_default_na=False)


def test_layout_and_csv_names_are_mimic(phantom_root: Path) -> None:
    top = sorted(p.name for p in phantom_root.iterdir())
    assert top == [
        "files",
        "mimic-cxr-2.0.0-chexpert.csv.gz",
        "mimic-cxr-2.0.0-metadata.csv.gz",
        "mimic-cxr-2.0.0-negbio.csv.gz",
        "mimic-cxr-2.0.0-split.csv.gz",
        "phantom-images.csv",
        "phantom-truth.csv",
        "phantom.json",
    ]
    files = [p.relative_to(phantom_root).as_posix() for p in phantom_root.rglob("*") if p.is_file()]
    jpgs = [f for f in files if f.endswith(".jpg")]
    txts = [f for f in files if f.endswith(".txt")]
    assert len(jpgs) + len(txts) + 7 == len(files)
    for f in jpgs:
        m = JPG.fullmatch(f)
        assert m, f
        assert m.group(2).startswith(m.group(1))
    for f in txts:
        m = TXT.fullmatch(f)
        assert m, f
        assert m.group(2).startswith(m.group(1))
    assert len(txts) == 48
    meta = _csv(phantom_root, "metadata")
    assert tuple(meta.columns) == METADATA_COLUMNS
    expected = {
        f"files/p{r.subject_id[:2]}/p{r.subject_id}/s{r.study_id}/{r.dicom_id}.jpg"
        for r in meta.itertuples()
    }
    assert expected == set(jpgs)
    assert tuple(_csv(phantom_root, "split").columns) == SPLIT_COLUMNS
    for name in ("chexpert", "negbio"):
        labels = _csv(phantom_root, name)
        assert tuple(labels.columns) == LABEL_CSV_COLUMNS
        values = set(np.unique(labels[list(OBSERVATIONS)].to_numpy()))
        assert values <= {"1.0", "0.0", "-1.0", ""}
    truth = pd.read_csv(phantom_root / "phantom-truth.csv")
    assert tuple(truth.columns) == TRUTH_COLUMNS + LESION_COLUMNS  # the continuum design
    assert len(truth) == 48 * len(OBSERVATIONS)


def test_metadata_split_and_reports(phantom_root: Path) -> None:
    meta = _csv(phantom_root, "metadata")
    split = _csv(phantom_root, "split")
    assert set(split["split"]) <= {"train", "validate", "test"}
    assert split.groupby("subject_id")["split"].nunique().max() == 1  # split by subject
    assert sorted(split["dicom_id"]) == sorted(meta["dicom_id"])
    assert {"AP", "PA"} <= set(meta["ViewPosition"])
    assert set(meta["ViewPosition"]) - {"AP", "PA", ""}, "some lateral views expected"
    assert (meta["Rows"] == "64").all() and (meta["Columns"] == "64").all()
    img = Image.open(next((phantom_root / "files").rglob("*.jpg")))
    assert img.mode == "L" and img.size == (64, 64)
    report = next((phantom_root / "files").rglob("*.txt")).read_text()
    for section in ("FINAL REPORT", "EXAMINATION:", "INDICATION:", "COMPARISON:", "FINDINGS:"):
        assert section in report
    assert "IMPRESSION:" in report


def test_label_csvs_follow_truth_with_a_little_noise(phantom_root: Path) -> None:
    chexpert = _csv(phantom_root, "chexpert").set_index("study_id")
    negbio = _csv(phantom_root, "negbio").set_index("study_id")
    truth = pd.read_csv(phantom_root / "phantom-truth.csv", dtype=str, keep_default_na=False)
    wide = truth.pivot(index="study_id", columns="observation", values="status")
    common = chexpert.index.intersection(wide.index)
    assert len(common) >= 40
    ours = chexpert.loc[common, list(OBSERVATIONS)].replace({"1.0": "1", "0.0": "0", "-1.0": "-1"})
    agree = (ours.to_numpy() == wide.loc[common, list(OBSERVATIONS)].to_numpy()).mean()
    assert 0.9 < agree <= 1.0
    assert (negbio.loc[common].to_numpy() != chexpert.loc[common].to_numpy()).any()


def test_bands_truth_subcategory_follows_the_cues_and_the_band(tmp_path: Path) -> None:
    """The bands design: with a cue the paper's rule gives atypical exactly for the slight band;
    without a cue it gives typical whatever the image shows (real reports mostly carry no cue)."""
    make_phantom(tmp_path / "bands", studies=300, size=16, seed=0, design="bands")
    truth = pd.read_csv(tmp_path / "bands" / "phantom-truth.csv", keep_default_na=False)
    assert tuple(truth.columns) == TRUTH_COLUMNS
    drawn = truth[truth["observation"].isin(DRAWN) & truth["subcategory"].ne("")]
    assert set(drawn["subcategory"]) <= {"atypical", "typical"}
    assert (drawn["status"].astype(str).isin(["1", "-1"])).all()
    cued = drawn[drawn["severity_term"].ne("") | drawn["change_term"].ne("")]
    atypical = cued.loc[cued["subcategory"] == "atypical", "severity"]
    typical = cued.loc[cued["subcategory"] == "typical", "severity"]
    assert len(atypical) and len(typical)
    assert atypical.max() < typical.min()
    no_cue = drawn.drop(cued.index)
    assert len(no_cue) and (no_cue["subcategory"] == "typical").all()


def test_continuum_truth_subcategory_is_the_rule_over_the_words_written(
    phantom_root: Path,
) -> None:
    """The continuum design: the subcategory is the paper's rule over the words the reader wrote
    (not the image), and the words do not sort the severities: a slight word may sit on a
    significant image."""
    from finegrain.division import divide

    truth = pd.read_csv(phantom_root / "phantom-truth.csv", keep_default_na=False)
    drawn = truth[truth["observation"].isin(DRAWN) & truth["status"].astype(str).isin(["1", "-1"])]
    expected = [divide(r.severity_term or None, r.change_term or None) for r in drawn.itertuples()]
    assert drawn["subcategory"].tolist() == expected
    positive = drawn[drawn["severity"] > 0]
    graded = positive[positive["severity_term"].ne("")]
    assert graded["reader_severity"].ne("").all()
    atypical = graded.loc[graded["subcategory"] == "atypical", "severity"]
    assert len(atypical) and atypical.min() < SEVERITY_CUT < positive["severity"].max()
    assert set(positive["image_truth"]) <= {"slight", "significant"}
    assert ((positive["severity"] < SEVERITY_CUT) == (positive["image_truth"] == "slight")).all()


def contents(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_deterministic_per_seed(tmp_path: Path) -> None:
    a = make_phantom(tmp_path / "a", studies=10, size=32, seed=3)
    make_phantom(tmp_path / "b", studies=10, size=32, seed=3)
    make_phantom(tmp_path / "c", studies=10, size=32, seed=4)
    assert a.studies == 10 and a.images >= 10

    assert contents(tmp_path / "a") == contents(tmp_path / "b")
    assert contents(tmp_path / "a") != contents(tmp_path / "c")


def test_same_bytes_whatever_the_number_of_workers(tmp_path: Path) -> None:
    """Chunks of subjects have their own random streams: 1 or 2 processes write the same."""
    make_phantom(tmp_path / "one", studies=600, size=16, seed=2, workers=1)
    make_phantom(tmp_path / "two", studies=600, size=16, seed=2, workers=2)

    one = contents(tmp_path / "one")
    assert len(one) > 1200 and one == contents(tmp_path / "two")


def test_refuses_a_non_empty_folder_and_leaves_no_partial_tree(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        make_phantom(out, studies=2, size=32)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with pytest.raises(ValueError, match="studies"):
        make_phantom(tmp_path / "x", studies=0)


@pytest.mark.parametrize("observation", DRAWN)
def test_slight_findings_are_subtle_and_significant_ones_clear(observation: str) -> None:
    """The same acquisition drawn with severity 0, slight and significant: the slight image is
    much closer to the negative than the significant one (atypical positives are subtle)."""

    def draw(severity: float) -> np.ndarray:
        painter = Painter(64, np.random.default_rng(0))
        findings = {obs: Finding() for obs in OBSERVATIONS}
        findings[observation].severity = severity
        findings["Consolidation"].where = "right lower lobe"
        findings["Pleural Effusion"].where = "left"
        return painter.frontal(findings, "PA")[0].astype(float)

    negative, slight, significant = draw(0.0), draw(0.15), draw(0.85)
    d_slight = np.abs(slight - negative).mean()
    d_significant = np.abs(significant - negative).mean()
    assert d_slight > 0
    assert d_significant > 3 * d_slight


def test_root_folder_and_files_respect_the_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        make_phantom(tmp_path / "p", studies=3, size=32, seed=0)
    finally:
        os.umask(old)
    root = tmp_path / "p"
    assert root.stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700
    for path in root.rglob("*"):
        expected = 0o755 if path.is_dir() else 0o644
        assert path.stat().st_mode & 0o777 == expected, path


def test_counts_plan_hits_every_count_exactly() -> None:
    from finegrain.data.phantom.splits import MIMIC_CXR_JPG, counts_plan, scaled_counts

    for counts in (MIMIC_CXR_JPG, scaled_counts(500)):
        plan = counts_plan(np.random.default_rng(1), counts)
        assert len(plan) == counts.subjects
        assert sum(len(images) for _, images in plan) == counts.studies
        assert all(images and min(images) >= 1 for _, images in plan)
        for split, n in counts.split_images.items():
            assert sum(sum(images) for s, images in plan if s == split) == n


def test_mimic_counts_writes_mimic_shaped_splits(tmp_path: Path) -> None:
    from finegrain.data.phantom.splits import scaled_counts

    summary = make_phantom(tmp_path / "p", studies=300, size=16, mimic_counts=True, workers=1)
    counts = scaled_counts(300)
    assert (summary.subjects, summary.studies, summary.images) == (
        counts.subjects,
        counts.studies,
        counts.images,
    )
    split = _csv(tmp_path / "p", "split")
    assert split["split"].value_counts().to_dict() == counts.split_images
    assert split.groupby("subject_id")["split"].nunique().max() == 1  # subjects never cross
    meta = _csv(tmp_path / "p", "metadata")
    frontal = meta["ViewPosition"].isin(["AP", "PA"]).mean()
    assert 0.55 < frontal < 0.75  # MIMIC-CXR-JPG: about 64 % of the images are AP or PA
    with pytest.raises(ValueError, match="eval_studies"):
        make_phantom(tmp_path / "q", studies=300, eval_studies=100, mimic_counts=True)
