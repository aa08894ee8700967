"""The fine-label methods through the benchmark on a tiny phantom: their own fine score in
metrics.jsonl, results.csv and the tables, AUC^FG against the phantom's image truth with the
oracle row, and predict's tiers from a fine checkpoint cut on its fine score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from finegrain.data.index import read_index
from finegrain.experiment.runner import DataSource, run_benchmark
from finegrain.experiment.selection import select_iteration
from finegrain.experiment.truth import case_truth, fine_aucs
from finegrain.train.rundir import RunDirectory
from helpers import TINY_GRID, grid_run, tiny_phantom_data

METHODS = ["u-ones", "graded", "ordinal", "three-class"]


@pytest.fixture(scope="module")
def fine_benchmark(tmp_path_factory):
    preset = TINY_GRID.replace(seeds=1)
    data = tiny_phantom_data(tmp_path_factory, "fine-data", preset)
    out = tmp_path_factory.mktemp("fine")
    result = run_benchmark(
        out, preset, DataSource(index=data.index, cache=data.cache), methods=METHODS,
        progress=False,
    )  # fmt: skip
    return out, data, result


def test_fine_scores_reach_metrics_results_and_tables(fine_benchmark):
    out, _, result = fine_benchmark
    assert sorted(s.method for s in result.grid.trained) == sorted(METHODS)
    results = pd.read_csv(out / "results.csv")
    assert "auc_fg_fine" in results.columns
    for method in ("u-ones", "graded"):  # their fine score is the positive probability
        rows = results[results["method"] == method].dropna(subset=["auc_fg"])
        np.testing.assert_allclose(rows["auc_fg_fine"], rows["auc_fg"])
    run = RunDirectory(grid_run(out / "runs", "Edema/three-class/seed0"))
    predictions = run.read_predictions("test")
    from finegrain.evaluate import score_predictions

    metrics = run.read_metrics()
    for iteration, frame in predictions.groupby("iteration"):
        line = metrics[(metrics["split"] == "test") & (metrics["iteration"] == iteration)].iloc[0]
        expected = score_predictions(frame.rename(columns={"score": "s", "fine_score": "score"}))
        assert line["auc_fg_fine"] == pytest.approx(expected["auc_fg"], nan_ok=True)
    summary = (out / "summary.md").read_text()
    # one rule (finegrain.scores): the table ranks each method's fine score, with the paper's
    # AUC^FG of the positive probability beside it where the fine score is the method's own
    rows: dict[str, str] = {}  # the first table's (Table 2's) row of each method
    for line in summary.splitlines():
        if line[:2] == "| ":
            rows.setdefault(line.split("|")[1].strip(), line)
    for own in ("Three-class", "Ordinal"):
        assert "(P(positive) " in rows[own]
    for paper in ("U-Ones", "Graded"):
        assert "(P(positive)" not in rows[paper]
    truth = [line for line in summary.splitlines() if "left)" in line]  # the image-truth table
    assert any("Three-class" in line and "[P(positive) " in line for line in truth)
    # and checkpoints are chosen on it
    for sel in result.outputs.selections:
        assert sel.iteration == select_iteration(sel.metrics, metric="auc_fg_fine")
        if sel.spec.method in ("u-ones", "graded"):
            assert sel.iteration == select_iteration(sel.metrics, metric="auc_fg")
    # the phantom's image truth, with the oracle row
    assert "AUC^FG against the phantom's image truth" in summary
    assert "| Oracle (true severity) |" in summary


def test_image_truth_and_oracle_match_a_hand_count(fine_benchmark):
    from finegrain.data.phantom import read_truth
    from finegrain.experiment.localisation import phantom_of_index
    from finegrain.metrics import auc_fg

    _, data, _ = fine_benchmark
    index = read_index(data.index)
    test = index[(index["split"] == "test") & (index["Edema"] == 1)]
    truth = read_truth(phantom_of_index(data.index))
    cases = case_truth(truth, test["image_id"], "Edema")
    for image_id, sev, kind in zip(
        test["image_id"], cases["severity"], cases["image_truth"], strict=True
    ):
        assert sev == truth.severity(image_id, "Edema")
        assert kind == truth.image_truth(image_id, "Edema")
    cases["subcategory"] = test["Edema subcategory"].to_numpy()
    got = fine_aucs(cases, cases["severity"].to_numpy())
    mined = cases["subcategory"].isin(["atypical", "typical"]).to_numpy()
    y = (cases["subcategory"][mined] == "typical").astype(int).to_numpy()
    assert got["auc_fg_mined"] == pytest.approx(auc_fg(y, cases["severity"].to_numpy()[mined]))
    assert got["n_atypical"] + got["n_typical"] == int(mined.sum())


def test_predict_tiers_from_a_fine_checkpoint_cut_on_its_fine_score(fine_benchmark):
    from finegrain.predict import Predictor, predict
    from finegrain.predict.calibrate import calibrate_checkpoint
    from finegrain.predict.tiers import tiers
    from finegrain.train.methods import METHODS as REGISTRY

    out, data, _ = fine_benchmark
    checkpoint = RunDirectory(grid_run(out / "runs", "Edema/ordinal/seed0")).latest_checkpoint()
    predictor = Predictor.from_checkpoint(checkpoint)
    assert predictor.method.name == "ordinal"
    paths = [str(p) for p in read_index(data.index)["path"].head(6)]
    images = np.stack([predictor.read(p) for p in paths])
    with torch.no_grad():
        logits = predictor.model(torch.from_numpy(images)[:, None]).float()
    method = REGISTRY.get("ordinal")
    probability = method.positive_probability(logits).numpy()
    fine = method.fine_score(logits).numpy()
    assert not np.allclose(probability, fine)
    thresholds = calibrate_checkpoint(checkpoint, calibration="none", write=False).thresholds
    frame = predict(predictor, paths, thresholds=thresholds, progress=False)
    np.testing.assert_allclose(frame["probability"], probability, atol=1e-6)
    assert frame["tier"].tolist() == tiers(probability, thresholds, fine)


def test_benchmark_cli_takes_comma_separated_methods():
    import argparse

    from finegrain.cli.benchmark import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--methods", "u-ones,pu-rm", "graded,ordinal,three-class"])
    assert [m for names in args.methods for m in names] == [
        "u-ones", "pu-rm", "graded", "ordinal", "three-class",
    ]  # fmt: skip


def test_image_truth_table_gives_each_row_its_headroom(fine_benchmark):
    """Headroom = the oracle's mined-label AUC^FG minus the method's, and 1 minus its image-truth
    AUC^FG; the summary prints it beside each method's number, not beside the oracle's."""
    out, _, _ = fine_benchmark
    truth = pd.read_csv(out / "truth.csv")
    for _, part in truth.groupby("observation"):
        oracle = part[part["variant"] == "oracle"].iloc[0]
        assert np.isnan(oracle["headroom_mined"]) and np.isnan(oracle["headroom_truth"])
        for _, row in part[part["variant"] != "oracle"].iterrows():
            assert row["headroom_mined"] == pytest.approx(
                oracle["auc_fg_mined"] - row["auc_fg_mined"]
            )
            assert row["headroom_truth"] == pytest.approx(1 - row["auc_fg_truth"])
    summary = (out / "summary.md").read_text()
    line = next(t for t in summary.splitlines() if t.startswith("| Oracle (true severity) |"))
    assert "left)" not in line
    ones = truth[(truth["variant"] == "u-ones")].iloc[0]
    assert f"({ones['headroom_mined']:+.3f} left)" in summary


def test_image_truth_table_gives_spearmans_rho_with_the_true_severity(fine_benchmark):
    """ρ of the run's ranked score with the true severity among the positives the image shows
    (one seed: the run's own ρ); 1 for the oracle, and its headroom to 1."""
    from scipy.stats import spearmanr

    from finegrain.data.phantom import read_truth
    from finegrain.experiment.localisation import phantom_of_index

    out, data, _ = fine_benchmark
    truth = pd.read_csv(out / "truth.csv")
    oracle = truth[truth["variant"] == "oracle"]
    assert (oracle["rho_truth"] == 1.0).all() and oracle["headroom_rho"].isna().all()
    row = truth[(truth["variant"] == "u-ones") & (truth["observation"] == "Edema")].iloc[0]
    assert row["headroom_rho"] == pytest.approx(1 - row["rho_truth"])
    run = RunDirectory(grid_run(out / "runs", "Edema/u-ones/seed0"))
    best = select_iteration(run.read_metrics(), split="validate")
    frame = run.read_predictions("test")
    frame = frame[(frame["iteration"] == best) & (frame["label"] == 1)]
    kind = case_truth(read_truth(phantom_of_index(data.index)), frame["image_id"], "Edema")
    drawn = kind["image_truth"].isin(["slight", "significant"]).to_numpy()
    expected = spearmanr(frame["score"].to_numpy()[drawn], kind["severity"][drawn]).statistic
    assert row["rho_truth"] == pytest.approx(expected)
    assert "ρ with true severity" in (out / "summary.md").read_text()


def test_auc_fg_by_where_the_atypical_label_comes_from(fine_benchmark):
    """sources.csv: every atypical case counted once, by the index's cue (a severity word or a
    change word alone); each source's AUC^FG keeps every typical case; the summary shows it."""
    from finegrain.metrics import auc_fg

    out, data, _ = fine_benchmark
    sources = pd.read_csv(out / "sources.csv")
    truth = pd.read_csv(out / "truth.csv")
    row = sources[(sources["variant"] == "u-ones") & (sources["observation"] == "Edema")].iloc[0]
    mined = truth[(truth["variant"] == "u-ones") & (truth["observation"] == "Edema")].iloc[0]
    assert row["n_severity"] + row["n_change"] == mined["n_atypical"]
    assert row["n_typical"] == mined["n_typical"]
    assert row["auc_fg_mined"] == pytest.approx(mined["auc_fg_mined"])
    run = RunDirectory(grid_run(out / "runs", "Edema/u-ones/seed0"))
    best = select_iteration(run.read_metrics(), split="validate")
    frame = run.read_predictions("test")
    frame = frame[(frame["iteration"] == best) & (frame["label"] == 1)]
    frame = frame[frame["subcategory"].isin(["atypical", "typical"])]
    cue = read_index(data.index).set_index("image_id")["Edema cue"]
    source = cue.reindex(frame["image_id"]).to_numpy()
    keep = (frame["subcategory"] == "typical").to_numpy() | (source == "severity")
    y = (frame["subcategory"] == "typical").to_numpy(dtype=int)[keep]
    assert row["auc_fg_severity"] == pytest.approx(auc_fg(y, frame["score"].to_numpy()[keep]))
    assert "AUC^FG by where the atypical label comes from" in (out / "summary.md").read_text()


def test_a_fine_score_of_its_own_has_its_calibration_among_the_mined_positives(fine_benchmark):
    """calibration.csv: ECE and Brier of ordinal's and three-class's own P(typical | positive)
    against typical (1) vs atypical (0) positives, none for a method whose fine score is the
    positive probability."""
    from finegrain.calibration import brier_score, expected_calibration_error
    from finegrain.experiment.aggregate import fg_cases, selected_predictions

    out, _, result = fine_benchmark
    calib = pd.read_csv(out / "calibration.csv")
    for sel in result.outputs.selections:
        row = calib[(calib["method"] == sel.spec.method) & (calib["seed"] == sel.spec.seed)]
        if not sel.method.own_fine_score:
            assert row["ece_fine"].isna().all()
            continue
        cases = fg_cases(selected_predictions(sel, "test"))
        y = (cases["subcategory"] == "typical").to_numpy(dtype=int)
        fine = cases["fine_score"].to_numpy(dtype=float)
        assert row["ece_fine"].item() == pytest.approx(expected_calibration_error(y, fine))
        assert row["brier_fine"].item() == pytest.approx(brier_score(y, fine))
    assert "fine score ECE" in (out / "summary.md").read_text()
