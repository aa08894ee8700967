"""CheXpert Plus -> index table, on a fixture built from the release's documented columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from finegrain.cli import main
from finegrain.data.chexpert import index_chexpert
from finegrain.data.chexpert_plus import CHEXPERT_PLUS_COLUMNS, index_chexpert_plus
from finegrain.data.index import read_index
from finegrain.observations import OBSERVATIONS, subcategory_column

# (path_to_image, frontal_lateral, ap_pa, split, section_findings, section_impression)
ROWS = [
    ("train/patient00001/study1/view1_frontal.jpg", "Frontal", "AP", "train",
     "Large right pleural effusion.", "Large right pleural effusion."),
    ("train/patient00001/study1/view2_lateral.jpg", "Lateral", "", "train",
     "Large right pleural effusion.", "Large right pleural effusion."),
    ("train/patient00002/study1/view1_frontal.jpg", "Frontal", "PA", "train",
     None, "Mild pulmonary edema."),
    ("train/patient00003/study2/view1_frontal.jpg", "Frontal", "PA", "train",
     "No pneumothorax.", None),
    ("train/patient00004/study1/view1_frontal.jpg", "Frontal", "AP", "train", None, None),
    ("valid/patient64541/study1/view1_frontal.jpg", "Frontal", "AP", "valid",
     "Small left pleural effusion.", None),
]  # fmt: skip


@pytest.fixture()
def plus(tmp_path) -> tuple[Path, Path]:
    """``df_chexpert_plus_240401.csv`` with the documented columns (plus a few the source does
    not read) and the images: JPEGs, except one PNG as in the PNG release."""
    table = pd.DataFrame(ROWS, columns=list(CHEXPERT_PLUS_COLUMNS))
    table.insert(1, "path_to_dcm", table["path_to_image"].str.replace(".jpg", ".dcm"))
    table["deid_patient_id"] = table["path_to_image"].str.extract(r"(patient\d+)")[0]
    table["report"] = "(full report)"
    csv = tmp_path / "df_chexpert_plus_240401.csv"
    table.to_csv(csv, index=False)
    images = tmp_path / "CheXpert-v1.0"
    for i, path in enumerate(table["path_to_image"]):
        target = images / (path.replace(".jpg", ".png") if i == 2 else path)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), i * 30, np.uint8)).save(target)
    return csv, images


def test_index_chexpert_plus(plus):
    csv, images = plus
    frame, summary = index_chexpert_plus(csv, images, progress=False)
    assert list(frame["image_id"]) == [
        "patient00001/study1/view1_frontal",
        "patient00002/study1/view1_frontal",
        "patient00003/study2/view1_frontal",
        "patient64541/study1/view1_frontal",
    ]
    assert frame["path"].iloc[1] == "train/patient00002/study1/view1_frontal.png"  # PNG release
    assert all((images / p).is_file() for p in frame["path"])
    assert frame["split"].iloc[3] == "validate"
    assert set(frame["split"].iloc[:3]) <= {"train", "test"}
    assert summary.dropped == {
        "view not kept (LATERAL)": 1,
        "no report text (neither findings nor impression)": 1,
    }
    row = frame.set_index("image_id")
    effusion, edema = "Pleural Effusion", "Edema"
    assert row.loc["patient00001/study1/view1_frontal", effusion] == 1
    assert row.loc["patient00001/study1/view1_frontal", subcategory_column(effusion)] == "typical"
    assert row.loc["patient00002/study1/view1_frontal", edema] == 1
    assert row.loc["patient00002/study1/view1_frontal", subcategory_column(edema)] == "atypical"
    assert row.loc["patient00003/study2/view1_frontal", "Pneumothorax"] == 0
    assert row.loc["patient64541/study1/view1_frontal", subcategory_column(effusion)] == "atypical"


def test_same_ids_and_split_as_the_chexpert_source(plus, tmp_path):
    """An image gets the same ids and split from CheXpert Plus as from CheXpert itself."""
    csv, images = plus
    frame, _ = index_chexpert_plus(csv, images, seed=4, progress=False)
    rows = []
    for path in pd.read_csv(csv)["path_to_image"]:
        rows.append({"Path": f"CheXpert-v1.0/{path}", "Frontal/Lateral": "Frontal", "AP/PA": "AP"})
    table = pd.DataFrame(rows).assign(**{o: "" for o in OBSERVATIONS})
    train, valid = (
        table[table["Path"].str.contains("/train/")],
        table[~table["Path"].str.contains("/train/")],
    )
    train.to_csv(images / "train.csv", index=False)
    valid.to_csv(images / "valid.csv", index=False)
    chexpert, _ = index_chexpert(images, seed=4, skip_missing=True)
    merged = frame.merge(chexpert, on="image_id", suffixes=("", "_chexpert"))
    assert len(merged) == len(frame) - 1  # the CheXpert source has no PNG (patient00002)
    assert (merged["split"] == merged["split_chexpert"]).all()
    assert (merged["study_id"] == merged["study_id_chexpert"]).all()


def test_missing_column_and_bad_split_are_named(plus):
    csv, images = plus
    table = pd.read_csv(csv, dtype=str)
    table.drop(columns=["section_impression"]).to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"missing column\(s\) 'section_impression'"):
        index_chexpert_plus(csv, images, progress=False)
    table.loc[3, "split"] = "holdout"
    table.to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"line 5, column 'split': 'holdout'"):
        index_chexpert_plus(csv, images, progress=False)


def test_missing_image_is_named_or_skipped(plus):
    csv, images = plus
    (images / "train/patient00003/study2/view1_frontal.jpg").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"view1_frontal.jpg \(df_chexpert_plus_240401.csv line 5\)"
    ):
        index_chexpert_plus(csv, images, progress=False)
    frame, summary = index_chexpert_plus(csv, images, skip_missing=True, progress=False)
    assert summary.dropped["image file missing"] == 1
    assert len(frame) == 3


def test_cli_index_chexpert_plus(plus, tmp_path, capsys):
    csv, images = plus
    out = tmp_path / "out" / "index.csv"
    code = main(["index", "--chexpert-plus", str(csv), "--images", str(images), "-o", str(out),
                 "--no-progress"])  # fmt: skip
    assert code == 0
    assert "kept 4 images" in capsys.readouterr().out
    index = read_index(out)
    assert all(Path(p).is_file() for p in index["path"])
