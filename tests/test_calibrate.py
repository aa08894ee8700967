"""Tier thresholds: fitted on synthetic scores with known answers; calibrate on a run dir."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from finegrain.predict.tiers import (
    Thresholds,
    fit_thresholds,
    sensitivity_threshold,
    tier,
    tiers,
    youden_threshold,
)


def test_perfectly_separated_scores_give_the_separating_cuts():
    # negatives < atypical < typical, with gaps: every cut is determined by hand.
    neg = [0.01, 0.05, 0.10]
    atyp = [0.30, 0.35, 0.40]
    typ = [0.80, 0.85, 0.90]
    labels = [0] * 3 + [1] * 6
    subs = [""] * 3 + ["atypical"] * 3 + ["typical"] * 3
    th = fit_thresholds(labels, subs, neg + atyp + typ, sensitivity=1.0)
    assert th.positive == 0.30  # lowest positive: all positives kept
    assert th.typical == 0.80  # lowest typical: J = 1
    assert th.youden_j == 1.0
    assert th.achieved_sensitivity == 1.0 and th.specificity == 1.0
    assert (th.n_positive, th.n_negative, th.n_atypical, th.n_typical) == (6, 3, 3, 3)
    assert (
        tiers(neg + atyp + typ, th)
        == ["negative"] * 3 + ["atypical positive"] * 3 + ["typical positive"] * 3
    )


def test_sensitivity_threshold_is_the_highest_reaching_the_target():
    pos = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]  # 10 positives
    assert sensitivity_threshold(pos, 0.95) == 0.05  # needs 10 of 10
    assert sensitivity_threshold(pos, 0.9) == 0.1  # 9 of 10
    assert sensitivity_threshold(pos, 0.85) == 0.1  # ceil(8.5) = 9
    assert sensitivity_threshold(pos, 0.5) == 0.5
    for target in (0.3, 0.55, 0.95):
        t = sensitivity_threshold(pos, target)
        assert np.mean(np.array(pos) >= t) >= target
        higher = min(p for p in pos if p > t) if t < max(pos) else math.inf
        assert np.mean(np.array(pos) >= higher) < target  # any higher cut misses the target


def test_youden_hand_computed_case_with_overlap():
    # class 1: 0.35, 0.8 ; class 0: 0.1, 0.4
    # t=0.8: TPR .5 FPR 0 -> .5 ; t=0.4: .5-.5=0 ; t=0.35: 1-.5=.5 ; ties -> highest (0.8)
    assert youden_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == (0.8, 0.5)
    # class 1: 0.6, 0.7, 0.2 ; class 0: 0.5, 0.1 -> t=0.6: 2/3 - 0 is the best J
    t, j = youden_threshold([1, 1, 1, 0, 0], [0.6, 0.7, 0.2, 0.5, 0.1])
    assert t == 0.6 and j == pytest.approx(2 / 3)


def test_youden_method_for_the_positive_cut_and_uncertain_rows_ignored():
    labels = [0, 0, 0, 1, 1, 1, -1, -1]
    subs = ["", "", "", "atypical", "typical", "typical", "atypical", "typical"]
    scores = [0.1, 0.2, 0.6, 0.5, 0.7, 0.9, 0.0, 0.99]
    th = fit_thresholds(labels, subs, scores, method="youden")
    # pos {0.5,0.7,0.9} vs neg {0.1,0.2,0.6}: t=0.7 -> 2/3-0; t=0.5 -> 1-1/3; tie -> 0.7
    assert th.positive == 0.7 and th.method == "youden" and th.sensitivity is None
    assert th.typical == 0.7  # atypical {0.5} vs typical {0.7, 0.9}
    assert th.n_positive == 3 and th.n_atypical == 1  # the -1 rows are not counted


def test_tier_boundaries_and_an_empty_atypical_band():
    th = Thresholds(positive=0.4, typical=0.7)
    assert [tier(s, th) for s in (0.39, 0.4, 0.69, 0.7, 1.0)] == [
        "negative",
        "atypical positive",
        "atypical positive",
        "typical positive",
        "typical positive",
    ]
    inverted = Thresholds(positive=0.6, typical=0.3)  # typical cut below the positive cut
    assert [tier(s, inverted) for s in (0.5, 0.6)] == ["negative", "typical positive"]
    assert tiers([0.5, float("nan")], th.to_dict()) == ["atypical positive", None]


def test_errors_name_what_is_missing():
    with pytest.raises(ValueError, match="no validation positives"):
        fit_thresholds([0, 0], ["", ""], [0.1, 0.2])
    with pytest.raises(ValueError, match="0 atypical and 2 typical"):
        fit_thresholds([1, 1, 0], ["typical", "typical", ""], [0.5, 0.6, 0.1])
    with pytest.raises(ValueError, match="unknown subcategory"):
        fit_thresholds([1], ["severe"], [0.5])
    with pytest.raises(ValueError, match="row 1 is not finite"):
        fit_thresholds([1, 1], ["atypical", "typical"], [0.5, float("nan")])
    with pytest.raises(ValueError, match="same length"):
        fit_thresholds([1, 1], ["atypical"], [0.5, 0.6])
    with pytest.raises(ValueError, match="needs validation negatives"):
        fit_thresholds([1, 1], ["atypical", "typical"], [0.5, 0.6], method="youden")


def test_thresholds_round_trip():
    th = fit_thresholds([1, 1, 0], ["atypical", "typical", ""], [0.4, 0.8, 0.1], iteration=7)
    assert Thresholds.from_dict(th.to_dict()) == th
    with pytest.raises(ValueError, match="missing field"):
        Thresholds.from_dict({"positive": 0.5})


# ---------------------------------------------------------------- calibrate on a run directory


def _fake_run(tmp_path, iterations=(10, 20)):
    import torch

    from finegrain.train.checkpoint import save_checkpoint
    from finegrain.train.models import build_model

    run = tmp_path / "run"
    model = build_model("densenet-tiny", pretrained=False)
    for it in iterations:
        save_checkpoint(
            run / "checkpoints" / f"iter-{it:07d}.pt",
            {
                "model": model.state_dict(),
                "iteration": it,
                "model_name": "densenet-tiny",
                "image_size": 32,
                "observation": "Edema",
                "method": "pu-rm",
                "config": {},
            },
        )
    rows = []
    rng = np.random.default_rng(0)
    for it in iterations:
        shift = it / 200  # later iterations score higher: the cut must follow the iteration
        for i in range(20):
            label = [0, 1, 1, -1][i % 4]
            sub = "" if label == 0 else ("atypical" if i % 8 < 4 else "typical")
            score = {0: 0.1, 1: 0.5}[max(label, 0)] + (0.3 if sub == "typical" else 0) + shift
            noise = 0.5 if label == 0 else 0.01  # negatives overlap the positives
            rows.append((f"img{i}", it, label, sub, score + rng.uniform(0, noise)))
    frame = pd.DataFrame(rows, columns=["image_id", "iteration", "label", "subcategory", "score"])
    frame.to_csv(run / "predictions-validate.csv", index=False)
    assert torch.load(run / "checkpoints" / "iter-0000010.pt", weights_only=True)
    return run, frame


def test_calibrate_run_dir_stores_thresholds_per_iteration(tmp_path):
    from finegrain.predict import calibrate, stored_thresholds
    from finegrain.predict.calibrate import stored_recalibration

    run, frame = _fake_run(tmp_path)
    fitted = calibrate(run, sensitivity=1.0, calibration="none")
    assert len(fitted) == 2
    for path, reading in fitted.items():
        th = reading.thresholds
        it = int(path.stem.split("-")[1])
        rows = frame[(frame.iteration == it) & (frame.label == 1)]
        assert th.iteration == it and th.calibration == "none"
        assert th.positive == pytest.approx(rows.score.min())
        typical_min = rows[rows.subcategory == "typical"].score.min()
        assert th.typical == pytest.approx(typical_min)
        assert stored_thresholds(path) == th  # stored in the checkpoint, loadable weights_only
        assert stored_recalibration(path) is None and reading.recalibration is None
    # the default: temperature scaling first, the thresholds carried through it, both stored
    for path, reading in calibrate(run, sensitivity=1.0).items():
        it = int(path.stem.split("-")[1])
        rows = frame[(frame.iteration == it) & (frame.label == 1)]
        recal = reading.recalibration
        assert recal.kind == "temperature" and recal.iteration == it
        assert reading.thresholds.calibration == "temperature"
        assert reading.thresholds.positive == pytest.approx(recal.apply([rows.score.min()])[0])
        assert stored_recalibration(path) == recal
        assert stored_thresholds(path) == reading.thresholds


def test_calibrate_errors_name_the_file(tmp_path):
    from finegrain.predict import calibrate, calibrate_checkpoint

    run, _ = _fake_run(tmp_path, iterations=(10,))
    ckpt = run / "checkpoints" / "iter-0000010.pt"
    with pytest.raises(ValueError, match="iteration 99.*checkpoint's iteration 10"):
        calibrate_checkpoint(ckpt, iteration=99)
    with pytest.raises(FileNotFoundError, match="predictions"):
        calibrate_checkpoint(ckpt, predictions=tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match="neither a checkpoint"):
        calibrate(tmp_path / "missing")


def test_calibrate_cli(tmp_path, capsys):
    from finegrain.cli import main
    from finegrain.predict import stored_thresholds

    run, _ = _fake_run(tmp_path, iterations=(10,))
    ckpt = run / "checkpoints" / "iter-0000010.pt"
    assert main(["calibrate", str(ckpt), "--dry-run"]) == 0
    assert stored_thresholds(ckpt) is None
    assert main(["calibrate", str(ckpt), "--sensitivity", "0.9"]) == 0
    assert "typical >=" in capsys.readouterr().out
    assert stored_thresholds(ckpt).sensitivity == 0.9


def _brute_force_youden(y, s):
    best = None
    for t in sorted(set(s), reverse=True):
        tp = sum(1 for yi, si in zip(y, s, strict=True) if yi == 1 and si >= t)
        fp = sum(1 for yi, si in zip(y, s, strict=True) if yi == 0 and si >= t)
        j = tp * y.count(0) - fp * y.count(1)
        if best is None or j > best[1]:
            best = (t, j)
    return best[0], best[1] / (y.count(0) * y.count(1))


def test_youden_threshold_equals_brute_force():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pairs = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6)), min_size=0, max_size=28)
    # one case of each class always present (placed anywhere by the permutation)
    cases = st.tuples(st.integers(0, 6), st.integers(0, 6), pairs).flatmap(
        lambda t: st.permutations([(0, t[0]), (1, t[1]), *t[2]])
    )

    @settings(max_examples=60, deadline=None)
    @given(cases)
    def check(data):
        y = [a for a, _ in data]
        s = [b / 6 for _, b in data]  # few distinct values: many ties
        t, j = youden_threshold(y, s)
        bt, bj = _brute_force_youden(y, s)
        assert t == bt and j == pytest.approx(bj)

    check()


def test_calibrate_refuses_predictions_of_another_observation_or_iteration(tmp_path):
    import json

    from finegrain.predict import calibrate_checkpoint, stored_thresholds

    run, _ = _fake_run(tmp_path, iterations=(10, 20))
    ckpt = run / "checkpoints" / "iter-0000010.pt"
    with pytest.raises(ValueError, match=r"iteration 20.*checkpoint's iteration 10"):
        calibrate_checkpoint(ckpt, iteration=20)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"observation": "Consolidation"}))
    (other / "predictions-validate.csv").write_bytes(
        (run / "predictions-validate.csv").read_bytes()
    )
    with pytest.raises(ValueError, match="Consolidation.*Edema|Edema.*Consolidation"):
        calibrate_checkpoint(ckpt, predictions=other / "predictions-validate.csv")
    assert stored_thresholds(ckpt) is None


def _with_run_config(run, **fields):
    """Give the fake run (and its checkpoints) a full training configuration."""
    import json

    from finegrain.train.checkpoint import load_checkpoint, save_checkpoint
    from finegrain.train.config import TrainConfig

    config = TrainConfig(index="index.csv", cache="cache", observation="Edema", **fields)
    for path in (run / "checkpoints").glob("*.pt"):
        payload = load_checkpoint(path)
        payload.update(config=config.to_dict(), method=config.method)
        save_checkpoint(path, payload)
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    return config


def test_calibrate_refuses_predictions_of_another_run_or_method(tmp_path, caplog):
    """Only the iteration and the observation were checked: a three-class checkpoint took an
    ordinal run's predictions (another method's scale) without a word."""
    import json
    import logging

    from finegrain.predict import calibrate_checkpoint, stored_thresholds

    run, _ = _fake_run(tmp_path, iterations=(10,))
    ckpt = run / "checkpoints" / "iter-0000010.pt"
    config = _with_run_config(run, method="three-class")
    assert calibrate_checkpoint(ckpt, write=False).thresholds.iteration == 10  # its own
    for name, change, named in (
        ("ordinal", {"method": "ordinal"}, "method: 'ordinal' -> 'three-class'"),
        ("seed1", {"seed": 1}, "seed: 1 -> 0"),
        ("longer", {"iterations": 99}, "iterations: 99 -> 50000"),
    ):
        other = tmp_path / name
        other.mkdir()
        (other / "config.json").write_text(json.dumps(config.to_dict() | change))
        (other / "predictions-validate.csv").write_bytes(
            (run / "predictions-validate.csv").read_bytes()
        )
        with pytest.raises(ValueError, match=f"another run.*{named}"):
            calibrate_checkpoint(ckpt, predictions=other / "predictions-validate.csv")
    assert stored_thresholds(ckpt) is None
    # the same run copied elsewhere (its data read from another folder) is that run
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "config.json").write_text(json.dumps(config.to_dict() | {"index": "/moved/i.csv"}))
    (copy / "predictions-validate.csv").write_bytes((run / "predictions-validate.csv").read_bytes())
    assert calibrate_checkpoint(ckpt, predictions=copy / "predictions-validate.csv", write=False)
    # predictions outside any run cannot be traced: said, not silently trusted
    loose = tmp_path / "scores.csv"
    loose.write_bytes((run / "predictions-validate.csv").read_bytes())
    with caplog.at_level(logging.WARNING, logger="finegrain.predict.calibrate"):
        calibrate_checkpoint(ckpt, predictions=loose, write=False)
    assert "cannot be checked" in caplog.text and str(loose) in caplog.text


def _noisy_run(tmp_path):
    """A fake label-noise run: its index holds the true Edema labels of 40 validation images,
    its predictions-validate.csv the flipped ones (as the training loop records them); the
    scores separate the true typical from the true atypical positives perfectly."""
    from finegrain.data.index import LABEL_COLUMNS, META_COLUMNS, write_index

    run, _ = _fake_run(tmp_path, iterations=(10,))
    rng = np.random.default_rng(1)
    true = np.array([1, 1, 1, 1, 0] * 8)
    subcategory = np.where(true == 1, np.where(np.arange(40) % 2, "typical", "atypical"), "")
    score = np.where(true == 1, 0.5, 0.1) + np.where(subcategory == "typical", 0.3, 0.0)
    score = score + rng.uniform(0, 0.01, 40)
    flip = rng.random(40) < 0.4
    noisy = np.where(flip, 1 - true, true)
    ids = [f"img{i}" for i in range(40)]
    index = pd.DataFrame({c: "x" for c in META_COLUMNS if c != "image_id"}, index=range(40))
    index = index.assign(image_id=ids, split="validate", view="PA")
    for column in LABEL_COLUMNS:
        index[column] = pd.NA
    index["Edema"] = true
    index["Edema subcategory"] = pd.Series(subcategory).replace("", pd.NA)
    write_index(index, run / "index.csv")
    pd.DataFrame(
        {
            "image_id": ids,
            "iteration": 10,
            "label": noisy,
            "subcategory": np.where(flip, "", subcategory),
            "score": score,
        }
    ).to_csv(run / "predictions-validate.csv", index=False)
    _with_run_config(run, method="u-ones", label_noise=0.4)
    config = pd.read_json(run / "config.json", typ="series").to_dict()
    (run / "config.json").write_text(
        pd.Series(config | {"index": str(run / "index.csv")}).to_json()
    )
    return run, true, subcategory, flip


def test_label_noise_runs_calibrate_and_evaluate_on_the_true_labels(tmp_path):
    """A label-noise run's validation predictions carry the flipped labels; calibrate and
    evaluate used them (the control's cut, fitted on noise)."""
    from finegrain.evaluate import evaluate_predictions
    from finegrain.predict import calibrate_checkpoint

    run, true, subcategory, flip = _noisy_run(tmp_path)
    assert flip.any()
    ckpt = run / "checkpoints" / "iter-0000010.pt"
    th = calibrate_checkpoint(ckpt, sensitivity=1.0, write=False).thresholds
    assert (th.n_positive, th.n_negative) == (int((true == 1).sum()), int((true == 0).sum()))
    assert (th.n_atypical, th.n_typical) == (
        int((subcategory == "atypical").sum()),
        int((subcategory == "typical").sum()),
    )
    assert th.youden_j == 1.0  # the true fine labels are separated perfectly

    evaluation = evaluate_predictions(run / "predictions-validate.csv", n_boot=10)
    assert (evaluation.n_positive, evaluation.n_negative) == (th.n_positive, th.n_negative)
    assert evaluation.auc_fg == 1.0 and evaluation.auc == 1.0
    assert "true labels" in evaluation.labels_source and "label noise (40%)" in (
        evaluation.labels_source
    )
    # without the run's index there are no true labels: refused, saying why
    (run / "index.csv").unlink()
    for call in (
        lambda: calibrate_checkpoint(ckpt, write=False),
        lambda: evaluate_predictions(run / "predictions-validate.csv", n_boot=10),
    ):
        with pytest.raises(ValueError, match="flipped by the run's label noise.*cannot be read"):
            call()


def test_a_cut_with_youden_j_zero_is_refused():
    """Atypical and typical positives with the same scores: no cut beats chance (J = 0), and
    such a cut was stored without a word."""
    labels = [1, 1, 1, 1, 0, 0]
    subs = ["atypical", "typical", "atypical", "typical", "", ""]
    with pytest.raises(ValueError, match="atypical/typical cut has Youden's J 0"):
        fit_thresholds(labels, subs, [0.4, 0.4, 0.6, 0.6, 0.1, 0.2])
    with pytest.raises(ValueError, match="positive/negative cut has Youden's J 0"):
        fit_thresholds(labels, subs, [0.2, 0.4, 0.2, 0.4, 0.2, 0.4], method="youden")


def test_tier_table_counts_each_reference_row_and_its_share_right():
    from finegrain.predict.tiers import TRUTH_ROWS, mined_class, tier_table

    labels = [0, 0, 1, 1, 1, -1, 1, np.nan]
    subs = ["", "", "atypical", "typical", "typical", "typical", "", ""]
    assert mined_class(labels, subs).tolist() == [
        "negative", "negative", "atypical", "typical", "typical", "", "", ""
    ]  # fmt: skip
    got = ["negative", "atypical positive", "atypical positive", "typical positive", "negative",
           "typical positive", "negative", None]  # fmt: skip
    table = tier_table(mined_class(labels, subs), got)
    assert table.loc["negative"].tolist()[:4] == [1, 1, 0, 2]
    assert table.loc["typical", "share_right"] == 0.5 and table["n"].sum() == 5
    truth = tier_table(["absent", "slight", "significant", "significant"],
                       ["negative", "negative", "typical positive", None], TRUTH_ROWS)  # fmt: skip
    assert truth["share_right"].tolist() == [1.0, 0.0, 1.0]  # an unreadable image is left out
    with pytest.raises(ValueError, match="unknown tier"):
        tier_table(["negative"], ["maybe"])
