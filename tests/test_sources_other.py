"""CheXpert and OpenI sources: same index contract, named errors, counted drops."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from finegrain.data.chexpert import index_chexpert
from finegrain.data.index import INDEX_COLUMNS
from finegrain.data.openi import index_openi
from finegrain.observations import OBSERVATIONS, subcategory_column
from finegrain.reports import ObservationLabel
from helpers import patch_labeler


def _edema_labeler(text: str, **_: object) -> dict[str, ObservationLabel]:
    """Edema positive (atypical if the text says 'mild'), everything else unmentioned."""
    out = {obs: ObservationLabel(None, None, None, None) for obs in OBSERVATIONS}
    if "edema" in text.lower():
        sub = "atypical" if "mild" in text.lower() else "typical"
        out["Edema"] = ObservationLabel(1, None, None, sub)
    return out


def _chexpert_tree(root: Path, patients: int = 30) -> Path:
    rows = {"train": [], "valid": []}
    for p in range(patients):
        split = "valid" if p >= patients - 4 else "train"
        for v, kind in ((1, "frontal"), (2, "lateral")):
            rel = f"{split}/patient{p:05d}/study1/view{v}_{kind}.jpg"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(b"jpg")
            row = {
                "Path": f"CheXpert-v1.0-small/{rel}",
                "Sex": "Female",
                "Age": "60",
                "Frontal/Lateral": kind.capitalize(),
                "AP/PA": ("AP" if p % 3 else "PA") if kind == "frontal" else "",
            }
            row.update(
                {obs: ["1.0", "0.0", "-1.0", ""][(p + i) % 4] for i, obs in enumerate(OBSERVATIONS)}
            )
            rows[split].append(row)
    for split, name in (("train", "train.csv"), ("valid", "valid.csv")):
        pd.DataFrame(rows[split]).to_csv(root / name, index=False)
    return root


def test_chexpert_index(tmp_path: Path) -> None:
    root = _chexpert_tree(tmp_path / "CheXpert-v1.0-small")
    frame, summary = index_chexpert(root)
    assert list(frame.columns) == list(INDEX_COLUMNS)
    assert summary.dropped["view not kept (LATERAL)"] == 30
    assert summary.kept == len(frame) == 30
    assert {"train", "validate"} <= set(frame["split"]) <= {"train", "validate", "test"}
    assert (frame["split"] == "validate").sum() == 4
    assert (frame.loc[frame["split"] == "validate", "subject_id"] >= "patient00026").all()
    assert frame.groupby("subject_id")["split"].nunique().max() == 1
    assert frame["path"].iloc[0] == "train/patient00000/study1/view1_frontal.jpg"
    assert frame["image_id"].iloc[0] == "patient00000/study1/view1_frontal"
    assert frame[[subcategory_column(o) for o in OBSERVATIONS]].isna().all().all()
    again, _ = index_chexpert(root)
    pd.testing.assert_frame_equal(frame, again)  # deterministic test carve-out
    wide, _ = index_chexpert(root, test_fraction=0.5, seed=1)
    assert (wide["split"] == "test").sum() > (frame["split"] == "test").sum()


def test_chexpert_labels_csv_and_errors(tmp_path: Path) -> None:
    root = _chexpert_tree(tmp_path / "CheXpert-v1.0")
    labels = pd.DataFrame(
        [
            {"id": f"patient{p:05d}/study1", "Edema": "1", "Edema subcategory": "atypical"}
            for p in range(20)
        ]
    ).assign(**{o: "" for o in OBSERVATIONS if o != "Edema"})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    frame, summary = index_chexpert(root, labels=tmp_path / "labels.csv")
    assert summary.dropped["label row missing"] == 10
    assert (frame[subcategory_column("Edema")] == "atypical").all()
    (root / "train/patient00003/study1/view1_frontal.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"patient00003.*train\.csv line 8"):
        index_chexpert(root)
    _, summary = index_chexpert(root, skip_missing=True)
    assert summary.dropped["image file missing"] == 1 and len(summary.skipped_files) == 1
    train = pd.read_csv(root / "train.csv", dtype=str, keep_default_na=False)
    train.loc[4, "Edema"] = "yes"
    train.to_csv(root / "train.csv", index=False)
    with pytest.raises(ValueError, match=r"train\.csv: label .* in column 'Edema' at line 6"):
        index_chexpert(root, skip_missing=True)
    train.drop(columns=["AP/PA"]).to_csv(root / "train.csv", index=False)
    with pytest.raises(ValueError, match=r"train\.csv: missing column\(s\) 'AP/PA'"):
        index_chexpert(root)


def test_openi_with_image_folder(tmp_path: Path, monkeypatch) -> None:
    calls = patch_labeler(monkeypatch, _edema_labeler)
    folder = tmp_path / "openi"
    (folder / "images").mkdir(parents=True)
    reports = pd.DataFrame(
        {
            "id": ["1", "2", "3", "4"],
            "report": ["FINDINGS: Mild edema.", "FINDINGS: Large edema.", "Normal.", "No image."],
        }
    )
    reports.to_csv(folder / "reports.csv", index=False)
    for name in ("CXR1_1_IM-0001-3001.png", "CXR1_1_IM-0001-4001.png", "2.png", "3_a.jpg", "9.png"):
        (folder / "images" / name).write_bytes(b"x")
    (folder / "images" / "notes.txt").write_text("ignored")
    frame, summary = index_openi(folder, progress=False)
    assert calls  # the stub labelled the reports
    assert summary.kept == 4
    assert summary.dropped == {"report without image": 1, "report missing": 1}
    edema = dict(zip(frame["image_id"], frame[subcategory_column("Edema")], strict=True))
    assert edema["CXR1_1_IM-0001-3001"] == "atypical" and edema["2"] == "typical"
    assert pd.isna(edema["3_a"])
    assert frame.groupby("study_id")["split"].nunique().max() == 1


def test_openi_with_mapping_and_missing_file(tmp_path: Path, monkeypatch) -> None:
    calls = patch_labeler(monkeypatch, _edema_labeler)
    folder = tmp_path / "openi"
    folder.mkdir()
    pd.DataFrame({"id": ["7"], "report": ["edema"]}).to_csv(folder / "reports.csv", index=False)
    (folder / "a.png").write_bytes(b"x")
    pd.DataFrame({"id": ["7", "7"], "path": ["a.png", "b.png"], "view": ["PA", "LATERAL"]}).to_csv(
        folder / "images.csv", index=False
    )
    with pytest.raises(FileNotFoundError, match=r"b\.png \(images\.csv line 3\)"):
        index_openi(folder, progress=False)
    frame, summary = index_openi(folder, skip_missing=True, progress=False)
    assert calls  # the stub labelled the report
    assert frame["view"].tolist() == ["PA"] and summary.skipped_files[0].endswith("b.png")


def test_openi_on_the_shared_reports(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    """Real OpenI report ids and texts, with stand-in image files for a few of them."""
    calls = patch_labeler(monkeypatch, _edema_labeler)
    reports = pd.read_csv(shared_data / "openi" / "reports.csv", dtype=str)
    folder = tmp_path / "openi"
    (folder / "images").mkdir(parents=True)
    reports.to_csv(folder / "reports.csv", index=False)
    ids = reports["id"].head(10).tolist()
    for i in ids:
        (folder / "images" / f"CXR{i}_IM-0000-1001.png").write_bytes(b"x")
    frame, summary = index_openi(folder, progress=False)
    assert calls  # the stub labelled the reports
    assert sorted(frame["study_id"]) == sorted(ids)
    assert summary.dropped["report without image"] == len(reports) - 10
