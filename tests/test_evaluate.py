"""finegrain.evaluate.score_predictions: which cases enter AUC^FG and AUC, and empty classes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from finegrain.evaluate import SCORE_KEYS, score_predictions


def _frame(seed=0, n=200):
    rng = np.random.default_rng(seed)
    label = rng.choice([1, 0, -1], size=n, p=[0.4, 0.45, 0.15]).astype(object)
    label[rng.random(n) < 0.05] = None  # blank: not mentioned
    sub = np.where(rng.random(n) < 0.5, "atypical", "typical").astype(object)
    sub[~np.isin(label, [1, -1])] = None
    sub[(label == 1) & (rng.random(n) < 0.05)] = None  # a positive without subcategory
    score = rng.random(n)
    return pd.DataFrame(
        {"label": pd.array(label, dtype="Int8"), "subcategory": sub, "score": score}
    )


def test_populations_follow_the_documented_rule():
    frame = _frame()
    result = score_predictions(frame)
    assert tuple(result) == SCORE_KEYS
    label = frame["label"].to_numpy(dtype=float, na_value=np.nan)
    used = (label == 1) | (label == 0)
    assert result["auc"] == pytest.approx(
        roc_auc_score(label[used] == 1, frame["score"][used]), abs=1e-12
    )
    fg = (label == 1) & frame["subcategory"].notna().to_numpy()
    y_fg = frame["subcategory"][fg] == "typical"
    assert result["auc_fg"] == pytest.approx(roc_auc_score(y_fg, frame["score"][fg]), abs=1e-12)
    assert result["n_typical"] == int(y_fg.sum())
    assert result["n_atypical"] == int((~y_fg).sum())
    assert result["n_positive"] == int((label == 1).sum())
    assert result["n_negative"] == int((label == 0).sum())


def test_include_uncertain_counts_uncertain_as_positive():
    frame = _frame(seed=1)
    plain, with_u = score_predictions(frame), score_predictions(frame, include_uncertain=True)
    n_uncertain = int((frame["label"] == -1).sum())
    assert n_uncertain > 0
    assert with_u["n_positive"] == plain["n_positive"] + n_uncertain
    assert with_u["n_negative"] == plain["n_negative"]
    extra = frame[(frame["label"] == -1) & frame["subcategory"].notna()]
    assert with_u["n_atypical"] + with_u["n_typical"] == (
        plain["n_atypical"] + plain["n_typical"] + len(extra)
    )


def test_empty_classes_give_none_not_an_error():
    frame = pd.DataFrame(
        {"label": [1, 1, 0], "subcategory": ["typical", "typical", ""], "score": [0.9, 0.8, 0.1]}
    )
    result = score_predictions(frame)
    assert result["auc_fg"] is None and result["n_atypical"] == 0 and result["n_typical"] == 2
    assert result["auc"] == 1.0
    only_negatives = frame.assign(label=[0, 0, 0], subcategory=[None, None, None])
    result = score_predictions(only_negatives)
    assert result["auc"] is None and result["auc_fg"] is None and result["n_negative"] == 3
    empty = score_predictions(frame.iloc[:0])
    assert empty == dict.fromkeys(SCORE_KEYS, None) | {
        "n_atypical": 0,
        "n_typical": 0,
        "n_positive": 0,
        "n_negative": 0,
    }


def test_string_labels_from_a_csv_are_accepted():
    frame = pd.DataFrame(
        {
            "label": ["1", "1", "0", "", "-1"],
            "subcategory": ["atypical", " Typical", "", "", "typical"],
            "score": ["0.2", "0.7", "0.1", "0.5", "0.3"],
        }
    )
    result = score_predictions(frame)
    assert (result["auc_fg"], result["auc"]) == (1.0, 1.0)
    assert (result["n_positive"], result["n_negative"]) == (2, 1)


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("label", 2, r"label 2 in column 'label' at row 1"),
        ("label", "yes", r"label 'yes' in column 'label' at row 1"),
        ("subcategory", "mild", r"subcategory 'mild' in column 'subcategory' at row 1"),
        ("score", np.nan, r"score nan in column 'score' at row 1"),
    ],
)
def test_bad_values_are_named(column, value, match):
    frame = pd.DataFrame(
        {"label": [1, 1, 0], "subcategory": ["typical", "atypical", None], "score": [0.9, 0.8, 0.1]}
    ).astype(object)
    frame.loc[1, column] = value
    with pytest.raises(ValueError, match=match):
        score_predictions(frame)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"missing column\(s\) 'subcategory'"):
        score_predictions(pd.DataFrame({"label": [1], "score": [0.5]}))
