"""Sources -> index table: MIMIC (on the phantom), the plain CSV source and shared helpers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finegrain.data.csvsource import index_csv
from finegrain.data.index import CUE_COLUMNS, INDEX_COLUMNS
from finegrain.data.mimic import index_mimic
from finegrain.data.sources import (
    existing_files,
    load_labels_csv,
    patient_split,
    rebase_paths,
)
from finegrain.errors import FinegrainError
from finegrain.observations import OBSERVATIONS, subcategory_column
from finegrain.reports import ObservationLabel
from helpers import patch_labeler

VIEW_KEPT = ("AP", "PA")


def _csv_path(root: Path, name: str) -> Path:
    return root / f"mimic-cxr-2.0.0-{name}.csv.gz"


def _read(root: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(_csv_path(root, name), dtype=str, keep_default_na=False)


def _write(root: Path, name: str, frame: pd.DataFrame) -> None:
    frame.to_csv(_csv_path(root, name), index=False)


@pytest.fixture()
def mimic_copy(phantom_root: Path, tmp_path: Path) -> Path:
    """A private copy of the session phantom that a test may damage."""
    return Path(shutil.copytree(phantom_root, tmp_path / "mimic"))


def _stub_labeler(text: str, **_: object) -> dict[str, ObservationLabel]:
    """Every observation positive and atypical: shows which rows receive a subcategory."""
    return {obs: ObservationLabel(1, "mild", None, "atypical") for obs in OBSERVATIONS}


def test_counts_per_drop_reason_match_what_the_phantom_wrote(phantom_root: Path) -> None:
    frame, summary = index_mimic(phantom_root, progress=False)
    meta = _read(phantom_root, "metadata")
    labeled = set(_read(phantom_root, "chexpert")["study_id"])
    frontal = meta[meta["ViewPosition"].isin(VIEW_KEPT)]
    other = meta.loc[~meta["ViewPosition"].isin(VIEW_KEPT), "ViewPosition"].replace("", "missing")
    for view, n in other.value_counts().items():
        assert summary.dropped[f"view not kept ({view})"] == n
    no_row = int((~frontal["study_id"].isin(labeled)).sum())
    assert summary.dropped.get("label row missing", 0) == no_row
    assert summary.kept == len(frame) == len(frontal) - no_row
    # the contract's columns, then the labeler's cue flags (optional columns)
    assert list(frame.columns) == [*INDEX_COLUMNS, *CUE_COLUMNS]
    assert set(frame["view"]) <= set(VIEW_KEPT)
    assert (frame["image_id"] == frame["path"].str.extract(r"/([^/]+)\.jpg$")[0]).all()
    for p, s, t in zip(frame["path"], frame["subject_id"], frame["study_id"], strict=True):
        assert p.startswith(f"files/p{s[:2]}/p{s}/s{t}/")
        assert (phantom_root / p).is_file()


def test_official_split_and_labels_are_used(phantom_root: Path) -> None:
    frame, _ = index_mimic(phantom_root, progress=False)
    split = _read(phantom_root, "split").set_index("dicom_id")["split"]
    assert (frame["split"].to_numpy() == split.loc[frame["image_id"]].to_numpy()).all()
    chexpert = _read(phantom_root, "chexpert").set_index("study_id")
    for obs in ("Pleural Effusion", "Edema", "No Finding"):
        expected = pd.to_numeric(chexpert.loc[frame["study_id"], obs].replace("", np.nan))
        got = frame[obs].astype("float").to_numpy()
        assert np.array_equal(np.nan_to_num(got, nan=9), np.nan_to_num(expected, nan=9))
    negbio, _ = index_mimic(phantom_root, labels="negbio", progress=False)
    assert len(negbio) == len(frame)


def test_view_filter(phantom_root: Path) -> None:
    everything, summary = index_mimic(phantom_root, views=None, progress=False)
    assert not any(r.startswith("view") for r in summary.dropped)
    assert {"LATERAL"} <= set(everything["view"].dropna())
    lateral, summary = index_mimic(phantom_root, views=["lateral"], progress=False)
    assert set(lateral["view"]) == {"LATERAL"}
    assert summary.dropped["view not kept (AP)"] > 0


def test_missing_image_is_an_error_naming_the_file_or_skipped(mimic_copy: Path) -> None:
    frame, _ = index_mimic(mimic_copy, progress=False)
    victim = mimic_copy / frame["path"].iloc[3]
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=victim.name) as err:
        index_mimic(mimic_copy, progress=False)
    assert "metadata" in str(err.value) and "line" in str(err.value)
    skipped, summary = index_mimic(mimic_copy, skip_missing=True, progress=False)
    assert summary.skipped_files == [str(victim)]
    assert summary.dropped["image file missing"] == 1
    assert len(skipped) == len(frame) - 1


def test_missing_column_and_unknown_label_are_named(mimic_copy: Path) -> None:
    meta = _read(mimic_copy, "metadata")
    _write(mimic_copy, "metadata", meta.drop(columns=["ViewPosition"]))
    with pytest.raises(ValueError, match=r"metadata\.csv\.gz.*'ViewPosition'"):
        index_mimic(mimic_copy, progress=False)
    _write(mimic_copy, "metadata", meta)
    labels = _read(mimic_copy, "chexpert")
    labels.loc[5, "Edema"] = "2.0"
    _write(mimic_copy, "chexpert", labels)
    with pytest.raises(
        ValueError, match=r"chexpert\.csv\.gz: label '2\.0' in column 'Edema' at line 7"
    ):
        index_mimic(mimic_copy, progress=False)
    _csv_path(mimic_copy, "negbio").unlink()
    with pytest.raises(FileNotFoundError, match="negbio"):
        index_mimic(mimic_copy, labels="negbio", progress=False)


def test_no_split_and_bad_split_value(mimic_copy: Path) -> None:
    split = _read(mimic_copy, "split")
    meta = _read(mimic_copy, "metadata")
    frontal = meta.loc[meta["ViewPosition"].isin(VIEW_KEPT), "dicom_id"]
    _write(mimic_copy, "split", split[split["dicom_id"] != frontal.iloc[0]])
    _, summary = index_mimic(mimic_copy, progress=False)
    assert summary.dropped["no split"] == 1
    split.loc[2, "split"] = "holdout"
    _write(mimic_copy, "split", split)
    with pytest.raises(ValueError, match=r"split\.csv\.gz: line 4.*'holdout'"):
        index_mimic(mimic_copy, progress=False)


def test_labels_csv_gives_coarse_labels_and_subcategories(phantom_root, tmp_path) -> None:
    truth = pd.read_csv(phantom_root / "phantom-truth.csv", dtype=str, keep_default_na=False)
    rows = []
    for study, group in truth.groupby("study_id"):
        row = {"id": f"s{study}" if int(study) % 2 else study}  # both id spellings
        for r in group.itertuples():
            row[r.observation] = r.status
            row[subcategory_column(r.observation)] = r.subcategory
        rows.append(row)
    labels_csv = tmp_path / "labels.csv"
    pd.DataFrame(rows).to_csv(labels_csv, index=False)
    frame, summary = index_mimic(phantom_root, labels=labels_csv, progress=False)
    assert "label row missing" not in summary.dropped  # every study is in the truth
    wide = truth.pivot(index="study_id", columns="observation", values="subcategory")
    for obs in ("Consolidation", "Pleural Effusion"):
        got = frame[subcategory_column(obs)].fillna("").to_numpy()
        assert (got == wide.loc[frame["study_id"], obs].to_numpy()).all()
    bad = tmp_path / "bad.csv"
    pd.DataFrame(rows).assign(Edema="maybe").to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"bad\.csv: label .* in column 'Edema' at line 2"):
        load_labels_csv(bad)


def test_subcategories_only_where_the_coarse_label_is_positive_or_uncertain(
    phantom_root: Path, monkeypatch
) -> None:
    calls = patch_labeler(monkeypatch, _stub_labeler)
    frame, summary = index_mimic(phantom_root, progress=False)
    assert calls  # the stub labelled the reports
    for obs in OBSERVATIONS:
        positive = frame[obs].isin([1, -1]).fillna(False)
        sub = frame[subcategory_column(obs)]
        assert (sub[positive] == "atypical").all()
        assert sub[~positive].isna().all()


def test_missing_report_is_counted(mimic_copy: Path, monkeypatch) -> None:
    calls = patch_labeler(monkeypatch, _stub_labeler)
    frame, _ = index_mimic(mimic_copy, progress=False)
    assert calls  # the stub labelled the reports
    s, t = frame["subject_id"].iloc[0], frame["study_id"].iloc[0]
    (mimic_copy / f"files/p{s[:2]}/p{s}/s{t}.txt").unlink()
    again, summary = index_mimic(mimic_copy, progress=False)
    n = int((frame["study_id"] == t).sum())
    assert summary.notes["rows whose report is missing: subcategories left empty"] == n
    assert len(again) == len(frame)
    assert again.loc[again["study_id"] == t, list(frame.columns[7::2])].isna().all().all()


def test_reports_root_elsewhere(mimic_copy: Path, tmp_path: Path, monkeypatch) -> None:
    calls = patch_labeler(monkeypatch, _stub_labeler)
    reports = tmp_path / "reports"
    for txt in (mimic_copy / "files").rglob("*.txt"):
        dest = reports / txt.relative_to(mimic_copy)
        dest.parent.mkdir(parents=True, exist_ok=True)
        txt.rename(dest)
    _, summary = index_mimic(mimic_copy, progress=False)
    assert any(r.startswith("rows whose report is missing") for r in summary.notes)
    again, summary = index_mimic(mimic_copy, reports_root=reports, progress=False)
    # the reason is a note (rows kept, subcategories empty), never a drop
    assert not any(r.startswith("rows whose report is missing") for r in summary.notes)
    assert calls and again[subcategory_column("Edema")].notna().any()  # the stub labelled them


def test_patient_split_is_deterministic_and_patient_level() -> None:
    patients = [f"p{i % 300}" for i in range(3000)]
    a = patient_split(patients, seed=1)
    assert (a == patient_split(list(reversed(patients)), seed=1)[::-1]).all()
    assert not (a == patient_split(patients, seed=2)).all()
    frame = pd.DataFrame({"p": patients, "s": a})
    assert frame.groupby("p")["s"].nunique().max() == 1
    share = frame.drop_duplicates("p")["s"].value_counts(normalize=True)
    assert 0.55 < share["train"] < 0.85 and share["test"] > 0.1 and share["validate"] > 0.03


def test_existing_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"1")
    paths = [str(tmp_path / "a" / "x.jpg"), str(tmp_path / "a" / "y.jpg"), str(tmp_path / "b/z")]
    assert existing_files(paths).tolist() == [True, False, False]
    for i in range(8):  # many files per folder: the one-scandir-per-folder path
        (tmp_path / "a" / f"{i}.jpg").write_bytes(b"1")
    many = [str(tmp_path / "a" / f"{i}.jpg") for i in range(10)] + [str(tmp_path / "b/z")]
    assert existing_files(many).tolist() == [True] * 8 + [False] * 3


def test_index_csv_with_label_columns_and_reports(tmp_path: Path, monkeypatch) -> None:
    for i in range(6):
        (tmp_path / f"img{i}.png").write_bytes(b"x")
    base = pd.DataFrame({"path": [f"img{i}.png" for i in range(6)], "patient_id": list("aabbcc")})
    with_labels = base.assign(**{obs: ["1", "0", "", "-1", "1.0", "0"] for obs in OBSERVATIONS})
    with_labels.to_csv(tmp_path / "labels.csv", index=False)
    frame, summary = index_csv(tmp_path / "labels.csv", progress=False)
    assert summary.kept == 6 and frame["Edema"].tolist()[:2] == [1, 0]
    assert frame.groupby("subject_id")["split"].nunique().max() == 1
    with_labels.assign(split=["train", "valid", "test", "train", "val", "test"]).to_csv(
        tmp_path / "split.csv", index=False
    )
    frame, _ = index_csv(tmp_path / "split.csv", progress=False)
    assert frame["split"].tolist()[:2] == ["train", "validate"]
    calls = patch_labeler(monkeypatch, _stub_labeler)
    # the real labeler finds no edema here: only the stub makes every row atypical
    base.assign(report="No acute findings.").to_csv(tmp_path / "reports.csv", index=False)
    frame, _ = index_csv(tmp_path / "reports.csv", progress=False)
    assert len(calls) == 6 and (frame[subcategory_column("Edema")] == "atypical").all()
    base.assign(path=["img0.png", "nope.png", *base["path"][2:]], report="x").to_csv(
        tmp_path / "missing.csv", index=False
    )
    with pytest.raises(FileNotFoundError, match="nope.png.*missing.csv line 3"):
        index_csv(tmp_path / "missing.csv", progress=False)
    frame, summary = index_csv(tmp_path / "missing.csv", skip_missing=True, progress=False)
    assert summary.dropped["image file missing"] == 1 and len(frame) == 5
    base.to_csv(tmp_path / "nolabels.csv", index=False)
    with pytest.raises(ValueError, match="nolabels.csv: needs"):
        index_csv(tmp_path / "nolabels.csv", progress=False)


def test_rebase_paths(tmp_path: Path) -> None:
    frame = pd.DataFrame({"path": ["files/a.jpg", "/abs/b.jpg"]})
    out = rebase_paths(frame, tmp_path / "root", tmp_path / "elsewhere" / "index.csv")
    assert out["path"].tolist() == ["../root/files/a.jpg", "/abs/b.jpg"]
    same = rebase_paths(frame, tmp_path, tmp_path / "index.csv")
    assert same["path"].tolist() == ["files/a.jpg", "/abs/b.jpg"]


def test_index_subcategories_agree_with_the_phantom_truth(phantom_root: Path) -> None:
    """With the real report labeler: subcategories in the index match the truth the phantom
    drew (agreement measured over rows where both give one)."""
    frame, summary = index_mimic(phantom_root, progress=False)
    truth = pd.read_csv(phantom_root / "phantom-truth.csv", dtype=str, keep_default_na=False)
    wide = truth.pivot(index="study_id", columns="observation", values="subcategory")
    got, want = [], []
    for obs in OBSERVATIONS:
        ours = frame[subcategory_column(obs)].fillna("").to_numpy()
        theirs = wide.loc[frame["study_id"], obs].to_numpy()
        both = (ours != "") & (theirs != "")
        got.extend(ours[both])
        want.extend(theirs[both])
    assert len(got) >= 30
    assert np.mean(np.array(got) == np.array(want)) >= 0.9


def test_errors_of_a_built_index_name_the_image_not_a_csv_line():
    """A source's table is built and has rows dropped: its positions are no CSV lines."""
    from finegrain.data.index import IndexSummary
    from finegrain.data.sources import finish_index

    rows = [
        {"image_id": f"img{k}", "path": f"p{k}.jpg", "subject_id": "s", "study_id": f"t{k}",
         "split": "train", "view": "PA", "Edema": "1"}
        for k in range(5)
    ]  # fmt: skip
    frame = pd.DataFrame(rows).iloc[[0, 2, 4]]  # two rows dropped before validation
    frame.loc[4, "split"] = "training"
    with pytest.raises(FinegrainError, match=r"split 'training' at image 'img4' is not one"):
        finish_index(frame.copy(), IndexSummary(), "mimic")
    frame.loc[4, "split"] = "train"
    frame.loc[2, "Edema"] = "7"
    with pytest.raises(FinegrainError, match=r"label '7' in column 'Edema' at image 'img2'"):
        finish_index(frame.copy(), IndexSummary(), "mimic")
    frame.loc[2, "Edema"] = "0"
    frame.loc[2, "image_id"] = ""
    with pytest.raises(FinegrainError, match=r"empty 'image_id' at the row of 'p2.jpg'"):
        finish_index(frame.copy(), IndexSummary(), "mimic")
    frame.loc[2, "image_id"] = "img2"
    assert list(finish_index(frame.copy(), IndexSummary(), "mimic")["image_id"]) == [
        "img0",
        "img2",
        "img4",
    ]
