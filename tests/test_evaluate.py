"""finegrain.evaluate and `finegrain evaluate`: which cases enter AUC^FG and AUC, joins, counts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from finegrain.cli import main
from finegrain.data.index import INDEX_COLUMNS
from finegrain.evaluate import SCORE_KEYS, evaluate_predictions, score_predictions
from finegrain.metrics import auc, auc_fg, bootstrap_ci


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


# ------------------------------------------------------------------ evaluate_predictions / CLI


def _run_predictions(tmp_path, n=120, seed=0):
    """A run's predictions-test.csv (two checkpoints) and a matching labels CSV."""
    rng = np.random.default_rng(seed)
    label = rng.choice(["1", "0", "-1", ""], size=n, p=[0.4, 0.4, 0.1, 0.1])
    sub = np.where(
        np.isin(label, ["1", "-1"]), np.where(rng.random(n) < 0.4, "atypical", "typical"), ""
    )
    ids = [f"img{k:03d}" for k in range(n)]
    early, late = rng.random(n), rng.random(n) + (label == "1") * 0.5 + (sub == "typical") * 0.3
    preds = pd.DataFrame(
        {
            "image_id": ids * 2,
            "iteration": [100] * n + [200] * n,
            "label": list(label) * 2,
            "subcategory": list(sub) * 2,
            "score": list(early) + list(late),
        }
    )
    path = tmp_path / "predictions-test.csv"
    preds.to_csv(path, index=False)
    return path, ids, label, sub, early, late


def test_run_predictions_without_labels_use_the_last_iteration(tmp_path):
    path, _, label, sub, early, late = _run_predictions(tmp_path)
    ev = evaluate_predictions(path, n_boot=200, seed=1)
    assert ev.iteration == 200
    fg = label == "1"
    assert ev.auc_fg == auc_fg(sub[fg], late[fg])
    used = np.isin(label, ["1", "0"])
    assert ev.auc == auc(label[used] == "1", late[used])
    assert ev.auc_fg_ci == bootstrap_ci(auc_fg, sub[fg], late[fg], n_boot=200, seed=1)
    assert ev.auc_fg_ci[0] < ev.auc_fg < ev.auc_fg_ci[1]
    assert ev.left_out == {
        "blank label": int((label == "").sum()),
        "uncertain label": int((label == "-1").sum()),
    }
    assert ev.n_positive + ev.n_negative + sum(ev.left_out.values()) == ev.n_predictions == 120
    first = evaluate_predictions(path, iteration=100, n_boot=200, seed=1)
    assert first.iteration == 100 and first.auc_fg == auc_fg(sub[fg], early[fg])
    with pytest.raises(ValueError, match=r"no predictions for iteration 150; it has \[100, 200\]"):
        evaluate_predictions(path, iteration=150)


def test_join_with_a_labels_csv_counts_what_is_left_out(tmp_path):
    path, ids, label, sub, _, late = _run_predictions(tmp_path)
    # labels for all but the first 10 ids, plus 4 labelled cases that were never predicted;
    # flip the labels so that a result computed from the predictions' own columns would differ
    flipped = np.where(label == "1", "0", np.where(label == "0", "1", label))
    flipped_sub = np.where(
        flipped == "1", np.where(np.arange(120) % 3 == 0, "atypical", "typical"), ""
    )
    labels = pd.DataFrame(
        {
            "id": ids[10:] + ["extra1", "extra2", "extra3", "extra4"],
            "Edema": list(flipped[10:]) + ["1"] * 4,
            "Edema severity": "",
            "Edema change": "",
            "Edema subcategory": list(flipped_sub[10:]) + ["typical"] * 4,
        }
    )
    labels_path = tmp_path / "labels.csv"
    labels.to_csv(labels_path, index=False)
    ev = evaluate_predictions(path, labels_path, "edema", n_boot=100)
    assert ev.observation == "Edema"
    keep = np.arange(120) >= 10
    fg = keep & (flipped == "1")
    assert ev.auc_fg == auc_fg(flipped_sub[fg], late[fg])
    used = keep & np.isin(flipped, ["1", "0"])
    assert ev.auc == auc(flipped[used] == "1", late[used])
    assert ev.left_out["id not in labels"] == 10
    assert ev.left_out["uncertain label"] == int((flipped[keep] == "-1").sum())
    assert ev.labels_without_prediction == 4
    text = ev.format()
    assert f"AUC^FG  {ev.auc_fg:.4f}" in text and "left out 10 (id not in labels)" in text


def test_index_table_as_labels_and_a_plain_scores_file(tmp_path):
    index = pd.DataFrame({c: [""] * 4 for c in INDEX_COLUMNS})
    index["image_id"] = ["a", "b", "c", "d"]
    index["Edema"] = ["1", "1", "0", "1"]
    index["Edema subcategory"] = ["atypical", "typical", "", "typical"]
    index.to_csv(tmp_path / "index.csv", index=False)
    pd.DataFrame({"id": ["d", "c", "b", "a"], "prob": [0.9, 0.1, 0.4, 0.6]}).to_csv(
        tmp_path / "scores.csv", index=False
    )
    ev = evaluate_predictions(
        tmp_path / "scores.csv", tmp_path / "index.csv", "Edema", score_column="prob", n_boot=50
    )
    assert ev.iteration is None
    assert ev.auc_fg == 0.5  # atypical 0.6 vs typical 0.4 and 0.9
    assert ev.auc == 1.0 and (ev.n_positive, ev.n_negative) == (3, 1)
    assert ev.left_out == {}


@pytest.mark.parametrize(
    ("scores", "labels", "kwargs", "match"),
    [
        ("id,score\na,0.1\na,0.2\n", None, {}, r"scores.csv: duplicate id 'a' at line 3"),
        ("id,score\na,0.1\nb,x\n", None, {}, r"score 'x' in column 'score' at line 3"),
        ("name,score\na,0.1\n", None, {}, r"no id column: expected 'image_id' or 'id'"),
        ("id,prob\na,0.1\n", None, {}, r"missing column\(s\) 'score'; it has 'id', 'prob'"),
        ("id,score\na,0.1\n", None, {}, r"missing column\(s\) 'label', 'subcategory'"),
        ("id,score\na,0.1\n", "id,Edema\na,1\n", {}, r"missing column\(s\) 'Edema subcategory'"),
        (
            "id,score\na,0.1\nb,0.2\n",
            "id,Edema,Edema subcategory\na,1,typical\nb,2,\n",
            {},
            r"labels.csv: label '2' in column 'Edema' at line 3",
        ),
        ("id,score\na,0.1\n", None, {"iteration": 3}, r"there is no 'iteration' column"),
    ],
)
def test_evaluate_errors_name_file_line_and_column(tmp_path, scores, labels, kwargs, match):
    (tmp_path / "scores.csv").write_text(scores)
    labels_path = None
    if labels is not None:
        labels_path = tmp_path / "labels.csv"
        labels_path.write_text(labels)
    with pytest.raises(ValueError, match=match):
        evaluate_predictions(tmp_path / "scores.csv", labels_path, "Edema", **kwargs)


def test_undefined_metric_is_reported_not_raised(tmp_path):
    (tmp_path / "p.csv").write_text(
        "id,label,subcategory,score\na,1,typical,0.9\nb,0,,0.2\nc,1,typical,0.7\n"
    )
    ev = evaluate_predictions(tmp_path / "p.csv", n_boot=20)
    assert ev.auc_fg is None and ev.auc_fg_ci is None and ev.auc == 1.0
    assert "AUC^FG  undefined" in ev.format()


def test_calibration_of_the_positive_probability_beside_auc(tmp_path, capsys):
    """ECE (15 equal-mass bins) and Brier on the AUC's cases, each with the bootstrap CI that
    bootstrap_ci gives; scores outside [0, 1] are not probabilities and say so."""
    from sklearn.metrics import brier_score_loss

    from finegrain.calibration import expected_calibration_error

    path, _, label, _, early, _ = _run_predictions(tmp_path, n=300)
    used = np.isin(label, ["1", "0"])
    y, p = (label[used] == "1").astype(int), early[used]
    ev = evaluate_predictions(path, iteration=100, n_boot=200, seed=1)
    assert ev.ece == pytest.approx(expected_calibration_error(y, p)) and ev.n_bins == 15
    assert ev.brier == pytest.approx(brier_score_loss(y, p))
    reference = bootstrap_ci(expected_calibration_error, y, p, n_boot=200, seed=1)
    assert ev.ece_ci == pytest.approx(reference)
    assert ev.ece_ci[0] < ev.ece < ev.ece_ci[1] + 1e-12 and ev.brier_ci[0] < ev.brier
    assert ev.ece > 0.1  # uniform scores against ~50 % positives: far from calibrated
    text = ev.format()
    assert f"ECE     {ev.ece:.4f}  95% CI {ev.ece_ci[0]:.4f}" in text
    assert f"Brier   {ev.brier:.4f}" in text
    assert main(["evaluate", str(path), "--iteration", "100", "--n-boot", "200", "--seed", "1",
                 "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["ece"] == ev.ece and result["ece_ci"] == list(ev.ece_ci)
    assert result["brier"] == ev.brier and result["brier_ci"] == list(ev.brier_ci)
    late = evaluate_predictions(path, n_boot=50)  # iteration 200: scores up to 1.8
    assert late.ece is None and late.brier is None and late.auc is not None
    assert "ECE     undefined (the scores are not probabilities" in late.format()


def test_cli_text_and_json(tmp_path, capsys):
    path, *_ = _run_predictions(tmp_path)
    assert main(["evaluate", str(path), "--n-boot", "100", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    ev = evaluate_predictions(path, n_boot=100)
    assert result["auc_fg"] == ev.auc_fg and result["auc_fg_ci"] == list(ev.auc_fg_ci)
    assert result["iteration"] == 200 and result["left_out"] == ev.left_out
    assert main(["evaluate", str(path), "--n-boot", "100", "--iteration", "100"]) == 0
    out = capsys.readouterr().out
    assert "iteration 100" in out and "95% CI" in out and "atypical" in out


def test_cli_errors(tmp_path, capsys):
    path, *_ = _run_predictions(tmp_path)
    assert main(["evaluate", str(tmp_path / "nope.csv")]) == 2
    assert "predictions file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(path), "--labels", str(path)])
    assert exc.value.code == 2
    assert "--labels needs --observation" in capsys.readouterr().err
    assert main(["evaluate", str(path), "--labels", str(path), "--observation", "Edemas"]) == 2
    assert "unknown observation 'Edemas'" in capsys.readouterr().err


def test_cli_names_the_file_and_line_of_empty_and_non_utf8_files(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert main(["evaluate", str(empty)]) == 2
    assert f"{empty}: empty file" in capsys.readouterr().err
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"image_id,label,subcategory,score\na,1,typical,0.9\nb\xe9,0,,0.1\n")
    assert main(["evaluate", str(latin)]) == 2
    assert f"{latin}: line 3, byte 2 (0xe9) is not UTF-8" in capsys.readouterr().err
    good = tmp_path / "good.csv"
    good.write_text("image_id,label,subcategory,score\na,1,typical,0.9\nb,0,,0.1\n")
    assert main(["evaluate", str(good), "--labels", str(latin), "--observation", "Edema"]) == 2
    assert f"{latin}: line 3, byte 2 (0xe9) is not UTF-8" in capsys.readouterr().err


def test_fine_labels_mesh_measures_against_the_human_subcategories():
    """AUC^FG against `<Obs> subcategory mesh`, with the agreement with the text-mined ones."""
    obs = "Pleural Effusion"
    index = pd.DataFrame(
        {
            "image_id": list("abcdefg"),
            obs: [1, 1, 1, 1, 0, 1, -1],
            f"{obs} subcategory": ["typical", "atypical", "typical", "typical", None, None, None],
            f"{obs} subcategory mesh": ["typical", "typical", "atypical", None, None, "atypical",
                                        "typical"],
        }
    )  # fmt: skip
    preds = pd.DataFrame({"id": list("abcdefg"), "score": [0.9, 0.8, 0.3, 0.6, 0.1, 0.2, 0.5]})
    text = evaluate_predictions(preds, index, obs, n_boot=10)
    mesh = evaluate_predictions(preds, index, obs, n_boot=10, fine_labels="mesh")
    # text: typical a(.9) c(.3) d(.6) vs atypical b(.8): 1 of 3 pairs ordered; f has none
    assert text.auc_fg == pytest.approx(1 / 3)
    assert (text.n_atypical, text.n_typical) == (1, 3)
    # mesh: typical a(.9) b(.8) vs atypical c(.3) f(.2): all 4 pairs ordered -> 1
    assert mesh.auc_fg == 1.0
    assert (mesh.n_atypical, mesh.n_typical) == (2, 2)
    assert text.agreement is None and text.fine_labels == "text"
    # positives with both: a (typical/typical), b (atypical/typical), c (typical/atypical)
    assert mesh.agreement["n"] == 3 and mesh.agreement["agree"] == 1
    assert mesh.agreement["table"]["typical"]["atypical"] == 1
    assert "agree on 1 of 3 positives" in mesh.format()
    assert "against the mesh subcategories" in mesh.format()
    with pytest.raises(ValueError, match="needs labels"):
        evaluate_predictions(preds.assign(label=1, subcategory=""), fine_labels="mesh")
    with pytest.raises(ValueError, match=r"missing column\(s\) 'Edema subcategory mesh'"):
        evaluate_predictions(preds, index.assign(Edema=1, **{"Edema subcategory": ""}), "Edema",
                             fine_labels="mesh")  # fmt: skip


def test_subcategory_agreement_kappa():
    from finegrain.evaluate import subcategory_agreement

    a = ["typical", "typical", "atypical", "atypical", None]
    result = subcategory_agreement(a, ["typical", "typical", "atypical", "atypical", "typical"])
    assert (result["n"], result["agree"], result["kappa"]) == (4, 4, 1.0)
    result = subcategory_agreement(a, ["atypical", "atypical", "typical", "typical", None])
    assert result["kappa"] == -1.0 and result["proportion"] == 0.0
    assert subcategory_agreement([None], ["typical"])["n"] == 0


def test_cli_fine_labels_mesh(tmp_path, capsys):
    from finegrain.cli import main

    obs = "Cardiomegaly"
    (tmp_path / "index.csv").write_text(
        f"image_id,{obs},{obs} subcategory,{obs} subcategory mesh\n"
        "a,1,typical,typical\nb,1,atypical,atypical\nc,0,,\nd,1,atypical,typical\n"
    )
    (tmp_path / "scores.csv").write_text("id,score\na,0.9\nb,0.2\nc,0.1\nd,0.5\n")
    args = ["evaluate", str(tmp_path / "scores.csv"), "--labels", str(tmp_path / "index.csv"),
            "--observation", obs, "--n-boot", "20", "--fine-labels", "mesh"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "AUC^FG against the mesh subcategories" in printed
    assert "agree on 2 of 3 positives with both (66.7%)" in printed
    assert main(args[:-2] + ["--json"]) == 0
    assert '"fine_labels": "text"' in capsys.readouterr().out


def test_cli_exits_1_when_nothing_was_evaluated_and_shows_the_ids(tmp_path, capsys):
    from finegrain.cli import EXIT_FAILED

    scores = tmp_path / "scores.csv"
    scores.write_text("id,score\n7,0.9\n8,0.2\n9,0.4\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("id,Edema,Edema subcategory\n007,1,typical\n008,0,\n009,1,atypical\n")
    args = ["evaluate", str(scores), "--labels", str(labels), "--observation", "Edema"]
    assert main([*args, "--n-boot", "10"]) == EXIT_FAILED
    captured = capsys.readouterr()
    assert "nothing evaluated" in captured.err
    assert "'7'" in captured.err and "'007'" in captured.err  # how the ids look on each side
    # only one class present: neither metric is defined
    labels.write_text("id,Edema,Edema subcategory\n7,0,\n8,0,\n9,0,\n")
    assert main([*args, "--n-boot", "10"]) == EXIT_FAILED
    assert "nothing evaluated" in capsys.readouterr().err
    # one metric defined is useful work
    labels.write_text("id,Edema,Edema subcategory\n7,1,typical\n8,0,\n9,0,\n")
    assert main([*args, "--n-boot", "10"]) == 0


def _fine_run_predictions(path):
    """A run's predictions of a method whose fine score is its own (three-class-like): the fine
    score ranks typical above atypical perfectly; the positive probability does not."""
    frame = pd.DataFrame(
        {
            "image_id": ["a", "b", "c", "d", "e", "f"],
            "iteration": 5,
            "label": [1, 1, 1, 1, 0, 0],
            "subcategory": ["atypical", "atypical", "typical", "typical", "", ""],
            "score": [0.9, 0.7, 0.8, 0.6, 0.5, 0.1],
            "fine_score": [0.1, 0.2, 0.8, 0.9, 0.95, 0.99],  # P(typical | positive)
        }
    )
    frame.to_csv(path, index=False)
    return frame


def test_a_runs_fine_score_is_ranked_with_the_papers_auc_fg_beside(tmp_path, capsys):
    frame = _fine_run_predictions(tmp_path / "p.csv")
    ev = evaluate_predictions(tmp_path / "p.csv", n_boot=50)
    assert ev.ranked == "fine_score"
    assert ev.auc_fg == 1.0  # the fine score ranks typical above atypical
    assert ev.auc_fg_probability == auc_fg(["atypical", "atypical", "typical", "typical"],
                                           [0.9, 0.7, 0.8, 0.6])  # fmt: skip
    # the coarse AUC is the positive probability's, never P(typical | positive)'s
    assert ev.auc == auc(frame["label"] == 1, frame["score"]) == 1.0
    assert main(["evaluate", str(tmp_path / "p.csv"), "--n-boot", "50"]) == 0
    out = capsys.readouterr().out
    assert "of the fine score" in out and "the paper's AUC^FG, of the positive probability" in out
    # a coarse method's fine score is its probability: one AUC^FG, no second line
    frame.assign(fine_score=frame["score"]).to_csv(tmp_path / "coarse.csv", index=False)
    coarse = evaluate_predictions(tmp_path / "coarse.csv", n_boot=50)
    assert coarse.auc_fg == ev.auc_fg_probability and coarse.auc_fg_probability is None
    assert coarse.ranked == "score"  # its fine score is its probability: the paper's AUC^FG


def test_the_fine_score_as_the_score_column_is_refused_in_one_line(tmp_path, capsys):
    _fine_run_predictions(tmp_path / "p.csv")
    assert main(["evaluate", str(tmp_path / "p.csv"), "--score-column", "fine_score"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "coarse AUC needs the positive probability" in err


def test_predicts_own_output_is_evaluated_against_an_index_by_path(tmp_path, capsys):
    index = pd.DataFrame({c: [""] * 4 for c in INDEX_COLUMNS})
    index["image_id"] = ["a", "b", "c", "d"]
    index["path"] = ["img/a.png", "img/b.png", "img/c.png", "img/d.png"]
    index["Edema"] = ["1", "1", "0", "1"]
    index["Edema subcategory"] = ["atypical", "typical", "", "typical"]
    index.to_csv(tmp_path / "index.csv", index=False)
    predicted = pd.DataFrame(
        {
            "path": [str(tmp_path / "img" / f"{i}.png") for i in "dcbae"],
            "probability": [0.9, 0.1, 0.4, 0.6, np.nan],
            "fine_score": [0.9, 0.1, 0.4, 0.6, np.nan],
            "tier": ["typical positive", "negative", "atypical positive", "typical positive", ""],
            "error": ["", "", "", "", "e.png: not an image"],
            "observation": "Edema",
        }
    )
    predicted.to_csv(tmp_path / "predicted.csv", index=False)
    ev = evaluate_predictions(tmp_path / "predicted.csv", tmp_path / "index.csv", "Edema",
                              n_boot=50)  # fmt: skip
    assert ev.auc_fg == 0.5 and ev.auc == 1.0 and (ev.n_positive, ev.n_negative) == (3, 1)
    assert ev.left_out == {"image not read (predict's error column)": 1}
    argv = ["evaluate", str(tmp_path / "predicted.csv"), "--labels", str(tmp_path / "index.csv")]
    assert main([*argv, "--observation", "Edema", "--n-boot", "50"]) == 0
    assert "AUC     1.0000" in capsys.readouterr().out
