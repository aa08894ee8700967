"""The positive control: label noise on the training and validation labels (the same images in
every run, the test split untouched) and the control's table (checkpoints and
τ chosen on noisy validation; coarse AUC against the phantom's image truth)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finegrain.data.cache import ImageCache
from finegrain.data.dataset import FLIPPED, CXRDataset
from finegrain.data.index import read_index
from finegrain.experiment.control import CHECKPOINTS, passes
from finegrain.experiment.presets import CONTROL, get_preset
from finegrain.experiment.runner import DataSource, run_benchmark
from finegrain.train.config import TrainConfig
from finegrain.train.loop import build_datasets
from finegrain.train.methods import get_method
from helpers import TINY_GRID, index_and_cache, tiny_phantom_data


def test_flip_labels_is_the_same_for_every_run_and_spares_uncertain(phantom_root, tmp_path):
    folder = index_and_cache(phantom_root, tmp_path)
    index, cache = read_index(folder / "index.csv"), ImageCache(folder / "cache")

    def train(keep_uncertain=True):
        return CXRDataset(index, cache, "Cardiomegaly", "train", keep_uncertain=keep_uncertain)

    clean, a, b = train(), train(), train()
    assert a.flip_labels(0.4) == b.flip_labels(0.4) > 0
    np.testing.assert_array_equal(a.labels, b.labels)
    flipped = a.labels != clean.labels
    assert flipped.sum() == a.summary[FLIPPED]
    assert set(clean.labels[flipped]) <= {0, 1}  # uncertain labels never flip
    np.testing.assert_array_equal(a.labels[flipped], 1 - clean.labels[flipped])
    assert (a.subcategories[flipped] == "").all() and (a.fine[flipped] == -1).all()
    # an image's draw depends on its id only: the dataset without uncertain flips the same ones
    c = train(keep_uncertain=False)
    c.flip_labels(0.4)
    same = dict(zip(a.image_ids, flipped, strict=True))
    assert [same[i] for i in c.image_ids] == list(c.labels != train(False).labels)
    assert "flipped by label noise" in a.format_summary()
    with pytest.raises(Exception, match=r"label noise must lie in \[0, 0.5\)"):
        clean.flip_labels(0.5)


def test_label_noise_reaches_train_and_validate_never_test(phantom_root, tmp_path):
    folder = index_and_cache(phantom_root, tmp_path)
    common = dict(index=folder / "index.csv", cache=folder / "cache", observation="Cardiomegaly")
    method = get_method("u-ignore")
    clean = build_datasets(TrainConfig(**common, eval_splits=("validate", "test")), method)
    noisy = build_datasets(
        TrainConfig(**common, eval_splits=("validate", "test"), label_noise=0.3), method
    )
    for split in ("train", "validate"):
        assert (noisy[split].labels != clean[split].labels).any(), split
    np.testing.assert_array_equal(noisy["test"].labels, clean["test"].labels)
    # a run without noise keeps the identity (and folder) it had before the field existed
    assert "label_noise" not in TrainConfig(**common).identity()
    assert TrainConfig(**common, label_noise=0.3).identity()["label_noise"] == 0.3
    with pytest.raises(Exception, match="label_noise"):
        TrainConfig(**common, label_noise=0.6)


def test_control_preset_is_the_pre_registered_one():
    preset = get_preset("control")
    assert preset is CONTROL and preset.selections == ("control",)
    assert preset.setting("label_noise") == 0.4 and preset.seeds == 5
    assert preset.iterations == 3000 and preset.checkpoint_every == 300


def test_control_table_through_the_benchmark(tmp_path_factory):
    preset = TINY_GRID.replace(
        seeds=2, selections=("control",), iterations=6, checkpoint_every=2
    ).replace(label_noise=0.3)
    data = tiny_phantom_data(tmp_path_factory, "control-data", preset)
    out = tmp_path_factory.mktemp("control")
    run_benchmark(
        out, preset, DataSource(index=data.index, cache=data.cache), progress=False
    )  # fmt: skip
    control = pd.read_csv(out / "control.csv")
    assert set(control["checkpoint"]) == set(CHECKPOINTS)
    best = control[control["checkpoint"] == CHECKPOINTS[0]]
    assert list(best["display"]) == ["U-Ignore", "PCE", "PCE", "PCE"]
    assert best["chosen"].sum() == 1
    chosen = best[best["chosen"]].iloc[0]
    pce = best[best["display"] == "PCE"]
    assert chosen["validate_auc_noisy"] == pce["validate_auc_noisy"].max()
    # Δ is the paired difference of the mean AUCs against image truth, its CI around it
    ce = best[best["display"] == "U-Ignore"].iloc[0]
    for _, r in pce.iterrows():
        assert r["delta"] == pytest.approx(r["test_auc_truth"] - ce["test_auc_truth"], abs=1e-9)
        assert r["low"] <= r["delta"] <= r["high"]
    assert ce["n_present"] > 0 and ce["n_absent"] > 0
    assert passes(control) == {"Edema": bool(chosen["low"] > 0)}
    summary = (out / "summary.md").read_text()
    assert "Positive control: CE vs PCE under label noise" in summary
    # the image-truth table names each τ of the sweep (one method at three τ)
    truth = pd.read_csv(out / "truth.csv")
    assert {"PCE τ=0.1", "PCE τ=0.3", "PCE τ=0.5", "U-Ignore"} <= set(truth["display"])
