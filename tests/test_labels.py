"""One validation of coarse labels and subcategories, used by every reader."""

from __future__ import annotations

import pandas as pd
import pytest

from finegrain.data.index import normalise_index
from finegrain.data.sources import load_labels_csv
from finegrain.evaluate import read_labels
from finegrain.labels import check_labels, check_subcategories, csv_line
from finegrain.observations import OBSERVATIONS
from finegrain.predict.tiers import fit_thresholds


def test_check_labels_accepts_the_convention_and_keeps_the_index():
    values = pd.Series(["1", "0", "-1", "1.0", "-1.0", " 0 ", "", None], index=list("abcdefgh"))
    out = check_labels(values, source="s", column="Edema")
    assert out.dtype == "Int8"
    assert list(out.index) == list("abcdefgh")
    assert out.tolist() == [1, 0, -1, 1, -1, 0, pd.NA, pd.NA]


@pytest.mark.parametrize("bad", ["2", "yes", "0.5", 3])
def test_check_labels_names_source_column_place_and_value(bad):
    values = pd.Series([1, 0, bad], dtype=object)
    with pytest.raises(ValueError) as error:
        check_labels(values, source="t.csv", column="Edema", where=csv_line())
    assert str(error.value) == (
        f"t.csv: label {bad!r} in column 'Edema' at line 4 is not one of 1, 0, -1 or empty"
    )


def test_check_subcategories_normalises_case_and_space():
    out = check_subcategories(pd.Series([" Typical", "atypical", "", None]), source="s", column="c")
    assert out.tolist() == ["typical", "atypical", pd.NA, pd.NA]
    with pytest.raises(ValueError, match=r"s: unknown subcategory 'mild' in column 'c' at row 1"):
        check_subcategories(pd.Series(["typical", "mild"]), source="s", column="c")


def test_every_reader_uses_the_one_rule(tmp_path):
    """The index, a labels CSV, evaluate and the tier thresholds reject the same value with the
    same words."""
    phrase = r"label '2' in column 'Edema' at (line|row) \d+ is not one of 1, 0, -1 or empty"
    row = {c: "x" for c in ("image_id", "path", "subject_id", "study_id", "view")}
    frame = pd.DataFrame([{**row, "split": "train", **{o: "" for o in OBSERVATIONS}}])
    frame.loc[0, "Edema"] = "2"
    with pytest.raises(ValueError, match=phrase):
        normalise_index(frame)
    labels = tmp_path / "labels.csv"
    table = pd.DataFrame({"id": ["1", "2"], **{o: ["", ""] for o in OBSERVATIONS}})
    table.loc[1, "Edema"] = "2"
    table.to_csv(labels, index=False)
    with pytest.raises(ValueError, match=phrase):
        load_labels_csv(labels)
    with pytest.raises(ValueError, match=phrase):
        read_labels(table.assign(**{"Edema subcategory": ""}), "Edema")
    with pytest.raises(ValueError, match=r"label 2 in column 'label' at row 1 is not one of"):
        fit_thresholds([1, 2], ["typical", ""], [0.5, 0.6])
    with pytest.raises(ValueError, match=r"unknown subcategory 'severe'"):
        fit_thresholds([1], ["severe"], [0.5])
