"""Coarse difficulty the literature's way (every image of the split; uncertain and blank counted
negative), on one tiny run trained on a tiny phantom and laid out as in a benchmark folder."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

from finegrain import metrics
from finegrain.cli import EXIT_USAGE, main
from finegrain.data.cache import ImageCache
from finegrain.data.index import read_index, write_index
from finegrain.errors import FinegrainError
from finegrain.experiment.difficulty import (
    COLUMNS,
    REAL_RANGE,
    SUMMARY_COLUMNS,
    coarse_difficulty,
    format_difficulty,
    summarise_difficulty,
)
from finegrain.experiment.selection import read_metrics
from finegrain.predict.predictor import Predictor
from finegrain.train.loop import train
from finegrain.train.rundir import RunDirectory
from helpers import TINY_GRID, make_config, tiny_phantom_data


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """(benchmark folder, its one finished run: Edema / U-Ones / seed 0, the data)."""
    data = tiny_phantom_data(tmp_path_factory, "difficulty-data", TINY_GRID)
    out = tmp_path_factory.mktemp("difficulty-bench")
    run_dir = out / "runs" / "0123abcd" / "Edema" / "u-ones" / "seed0"
    config = make_config(
        run_dir,
        index=str(data.index),
        cache=str(data.cache),
        method="u-ones",
        model="densenet-tiny",
        iterations=20,
        checkpoint_every=10,
        eval_batch_size=64,
        device="cpu",
    )
    train(config, progress=False)
    return out, run_dir, data


def _validate(index: pd.DataFrame) -> pd.DataFrame:
    return index[index["split"] == "validate"]


def test_counts_selection_and_both_aucs(bench):
    _, run_dir, data = bench
    result = coarse_difficulty(run_dir, batch_size=7)  # several batches, a short last one
    assert list(result) == COLUMNS
    validate = _validate(read_index(data.index))
    labels = validate["Edema"]
    expected = {
        "n_positive": int((labels == 1).sum()),
        "n_negative": int((labels == 0).sum()),
        "n_uncertain": int((labels == -1).sum()),
        "n_blank": int(labels.isna().sum()),
        "n_not_in_cache": 0,
        "n_failed_in_cache": 0,
    }
    assert {k: result[k] for k in expected} == expected
    assert sum(expected.values()) == len(validate)
    assert min(expected[k] for k in ("n_positive", "n_negative", "n_uncertain", "n_blank")) > 0

    # the checkpoint: the highest recorded validation coarse AUC, ties to the earliest
    recorded = read_metrics(run_dir).query("split == 'validate'")
    best = recorded["auc"].max()
    assert result["iteration"] == recorded.loc[recorded["auc"] == best, "iteration"].min()
    # positive vs negative on the same scores is the run's own recorded AUC there
    assert result["auc_labelled"] == pytest.approx(best, abs=1e-6)
    assert result["auc_recorded"] == pytest.approx(best, abs=1e-12)

    # auc_all: positive vs everything else, from an independent prediction of every image
    predictor = Predictor.from_checkpoint(
        RunDirectory(run_dir).checkpoint_path(result["iteration"])
    )
    cache = ImageCache(data.cache)
    rows = cache.lookup(validate["image_id"].astype(str).tolist())
    assert (rows >= 0).all()
    score = predictor.probabilities(cache.read_rows(rows))
    positive = (labels == 1).fillna(False).to_numpy()
    assert len(score) == sum(
        result[f"n_{s}"] for s in ("positive", "negative", "uncertain", "blank")
    )
    assert result["auc_all"] == pytest.approx(metrics.auc(positive.astype(int), score), abs=1e-6)
    labelled = labels.isin([0, 1]).fillna(False).to_numpy()
    assert result["auc_labelled"] == pytest.approx(
        metrics.auc(positive[labelled].astype(int), score[labelled]), abs=1e-6
    )

    assert (result["real_low"], result["real_high"]) == REAL_RANGE["Edema"]
    assert result["in_range"] == (
        REAL_RANGE["Edema"][0] <= result["auc_all"] <= REAL_RANGE["Edema"][1]
    )
    assert (result["observation"], result["method"], result["variant"]) == (
        "Edema",
        "u-ones",
        "u-ones",
    )
    assert (result["seed"], result["split"], result["label_noise"]) == (0, "validate", 0.0)


def test_images_the_cache_lacks_are_counted_and_warned(bench, tmp_path, caplog):
    _, run_dir, data = bench
    index = read_index(data.index)
    validate = np.flatnonzero(index["split"] == "validate")
    index.loc[index.index[validate[:2]], "image_id"] = ["not-cached-1", "not-cached-2"]
    write_index(index, tmp_path / "index.csv")
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(config | {"index": str(tmp_path / "index.csv")}))
    with caplog.at_level(logging.WARNING, logger="finegrain.experiment.difficulty"):
        result = coarse_difficulty(copy)
    assert result["n_not_in_cache"] == 2 and result["n_failed_in_cache"] == 0
    scored = sum(result[f"n_{s}"] for s in ("positive", "negative", "uncertain", "blank"))
    assert scored + 2 == len(validate)
    warning = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(warning) == 1 and f"2 of the {len(validate)} validate images" in warning[0]
    assert "not-cached" not in warning[0]  # counts only, no image ids


def test_a_run_without_metrics_or_evaluation_is_an_error(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(
        json.dumps(
            {"index": "i.csv", "cache": "c", "observation": "Edema", "method": "u-ones", "seed": 0}
        )
    )
    with pytest.raises(FinegrainError, match=f"{run}: no metrics.jsonl"):
        coarse_difficulty(run)
    (run / "metrics.jsonl").write_text(
        json.dumps({"iteration": 10, "split": "test", "auc": 0.7}) + "\n"
    )
    with pytest.raises(FinegrainError, match=f"{run}: no validate evaluation with a coarse AUC"):
        coarse_difficulty(run)


def test_cli_on_a_benchmark_folder_and_on_run_folders(bench, tmp_path, capsys):
    out, run_dir, _ = bench
    assert main(["difficulty", str(out), "--no-progress", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "difficulty.csv")
    assert list(table.columns) == COLUMNS and len(table) == 1
    assert table["run"].tolist() == [str(run_dir)]
    row = table.iloc[0]
    assert (
        f"| Edema | u-ones | {row['auc_all']:.3f} [{row['auc_all']:.3f}–{row['auc_all']:.3f}]"
        in printed
    )
    assert "| 0.85–0.91 |" in printed and "CheXclusion" in printed

    # run folders: no CSV unless asked
    csv = tmp_path / "d.csv"
    assert main(["difficulty", str(run_dir), "--no-progress", "--out-csv", str(csv)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(csv), table)
    capsys.readouterr()

    assert main(["difficulty", str(out), "--methods", "pu-rm", "--no-progress"]) == EXIT_USAGE
    assert "no finished run of pu-rm in" in capsys.readouterr().err
    assert main(["difficulty", str(tmp_path), "--no-progress"]) == EXIT_USAGE
    assert "neither a benchmark folder" in capsys.readouterr().err


def test_summary_per_observation_and_method():
    def row(seed, auc_all, observation="Edema", variant="u-ones"):
        return dict.fromkeys(COLUMNS, 0) | {
            "observation": observation,
            "method": variant,
            "variant": variant,
            "settings": "",
            "seed": seed,
            "run": f"r{seed}",
            "auc_all": auc_all,
            "auc_labelled": auc_all + 0.05,
            "auc_recorded": auc_all + 0.05,
        }

    table = pd.DataFrame(
        [row(0, 0.84), row(1, 0.88), row(2, 0.89), row(0, 0.70, "Cardiomegaly")], columns=COLUMNS
    )
    summary = summarise_difficulty(table)
    assert list(summary.columns) == SUMMARY_COLUMNS
    edema = summary.set_index("observation").loc["Edema"]
    assert edema["runs"] == 3 and edema["seeds"] == "0 1 2"
    assert edema["auc_all_mean"] == pytest.approx(0.87)
    assert (edema["auc_all_min"], edema["auc_all_max"]) == (0.84, 0.89)
    assert edema["in_range"] is True  # the mean is in range though one seed is not
    assert summary.set_index("observation").loc["Cardiomegaly", "in_range"] is None
    text = format_difficulty(summary)
    assert (
        "| Edema | u-ones | 0.870 [0.840–0.890] | 0.920 | 3 | 0 / 0 / 0 / 0 | 0.85–0.91 | yes |"
        in text
    )
    assert (
        "| Cardiomegaly | u-ones | 0.700 [0.700–0.700] | 0.750 | 1 | 0 / 0 / 0 / 0 | — | — |"
        in text
    )
    assert summarise_difficulty(table.iloc[:0]).empty


def test_test_split_is_scored_at_the_checkpoint_chosen_on_validate(bench):
    _, run_dir, data = bench
    result = coarse_difficulty(run_dir, split="test")
    metrics = read_metrics(run_dir)
    validate = metrics[metrics["split"] == "validate"]
    best = validate.loc[validate["auc"] == validate["auc"].max(), "iteration"].min()
    assert result["split"] == "test" and result["iteration"] == best
    index = read_index(data.index)
    labels = index.loc[index["split"] == "test", "Edema"]
    assert result["n_positive"] == int((labels == 1).sum())
    assert sum(result[k] for k in ("n_positive", "n_negative", "n_uncertain", "n_blank")) == len(
        labels
    )


def _copy_run(run_dir, target, **changes):
    """A copy of ``run_dir`` at ``target`` whose recorded configuration has ``changes``."""
    shutil.copytree(run_dir, target)
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps(config | changes))
    return target


def test_runs_of_other_settings_are_not_pooled_as_seeds(bench, tmp_path, capsys):
    """Two benchmarks of other settings into one folder (each in its settings folder): one row
    per settings group, named by the setting that differs, never one row of "2 seeds"."""
    out, run_dir, _ = bench
    runs = tmp_path / "bench" / "runs"
    _copy_run(run_dir, runs / "0123abcd" / "Edema" / "u-ones" / "seed0")
    _copy_run(run_dir, runs / "0123abcd" / "Edema" / "u-ones" / "seed1", seed=1)
    _copy_run(run_dir, runs / "89abcdef" / "Edema" / "u-ones" / "seed0", iterations=40)
    assert main(["difficulty", str(tmp_path / "bench"), "--no-progress", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "bench" / "difficulty.csv", keep_default_na=False)
    assert sorted(table["settings"]) == ["iterations=20", "iterations=20", "iterations=40"]
    summary = summarise_difficulty(table).set_index("settings")
    assert summary.loc["iterations=20", "runs"] == 2
    assert summary.loc["iterations=20", "seeds"] == "0 1"
    assert summary.loc["iterations=40", "runs"] == 1
    assert "| Edema | u-ones (iterations=20) |" in printed
    assert "| Edema | u-ones (iterations=40) |" in printed
    # one settings group: nothing to name
    assert main(["difficulty", str(run_dir), "--no-progress", "--device", "cpu"]) == 0
    assert "| Edema | u-ones | " in capsys.readouterr().out
