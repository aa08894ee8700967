"""Extending finegrain without editing it: a method with a three-output head and scores of its
own, and a grid with a new axis, registered here (in this test module only), run end to end:
train -> evaluate -> report tables -> predict -> export (ONNX) -> CAM on a tiny phantom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from finegrain.data.index import read_index
from finegrain.experiment.runner import DataSource, run_benchmark
from finegrain.train.checkpoint import load_checkpoint
from finegrain.train.methods import Method, register_method
from finegrain.train.rundir import RunDirectory
from helpers import TINY_GRID, grid_run, tiny_phantom_data


@dataclass(frozen=True)
class ThreeWay(Method):
    """Softmax over negative / atypical / typical positive, trained on the fine label; its
    positive probability is P(atypical) + P(typical), its fine score P(typical | positive)."""

    outputs: ClassVar[int] = 3
    needs_fine: ClassVar[bool] = True

    def loss(self, logits, batch):
        label, fine = batch["label"], batch["fine"]
        positive = torch.where(fine == 0, 1, 2)
        target = torch.where(label == 1, positive, torch.where(label == 0, 0, -1))
        keep = target >= 0
        ce = F.cross_entropy(logits.float(), target.clamp(min=0), reduction="none")
        return (ce * keep).sum() / keep.sum().clamp(min=1)

    def positive_probability(self, logits):
        p = torch.softmax(logits.float(), dim=1)
        return p[:, 1] + p[:, 2]

    def fine_score(self, logits):
        p = torch.softmax(logits.float(), dim=1)
        return p[:, 2] / (p[:, 1] + p[:, 2]).clamp_min(1e-12)


THREE_WAY = register_method(
    ThreeWay(
        "ext-three-way",
        display_name="Three-way (extension)",
        description="softmax over negative / atypical / typical (a test's)",
    )
)


@pytest.fixture(scope="module")
def extended_benchmark(tmp_path_factory):
    preset = TINY_GRID.replace(seeds=1)
    data = tiny_phantom_data(tmp_path_factory, "extension-data", preset)
    out = tmp_path_factory.mktemp("extension")
    result = run_benchmark(
        out,
        preset,
        DataSource(index=data.index, cache=data.cache),
        methods=["u-ones", "ext-three-way"],
        axes={"iterations": (2, 4)},
        progress=False,
    )
    return out, data, result


def test_the_new_method_and_axis_train_and_reach_the_tables(extended_benchmark):
    out, _, result = extended_benchmark
    assert sorted(s.label for s in result.grid.trained) == [
        "Edema/ext-three-way-iterations2/seed0",
        "Edema/ext-three-way-iterations4/seed0",
        "Edema/u-ones-iterations2/seed0",
        "Edema/u-ones-iterations4/seed0",
    ]
    run = grid_run(out / "runs", "Edema/ext-three-way-iterations4/seed0")
    checkpoint = load_checkpoint(RunDirectory(run).latest_checkpoint())
    assert checkpoint["outputs"] == 3 and checkpoint["model"]["classifier.weight"].shape[0] == 3
    assert checkpoint["iteration"] == 4 and checkpoint["method"] == "ext-three-way"
    # its own fine score is what the predictions carry beside the positive probability
    predictions = RunDirectory(run).read_predictions("test")
    assert not np.allclose(predictions["score"], predictions["fine_score"])
    results = pd.read_csv(out / "results.csv")
    assert set(results["iterations"]) == {2, 4}
    assert "ext-three-way-iterations2" in set(results["variant"])
    summary = (out / "summary.md").read_text()
    assert "| Three-way (extension) (iterations 2) |" in summary
    assert "| Three-way (extension) (iterations 4) − U-Ones (validate) |" in summary


def test_predict_export_and_cam_ask_the_method(extended_benchmark, tmp_path):
    import onnxruntime as ort

    from finegrain.predict import Predictor, cam_images, export, predict
    from finegrain.predict.calibrate import calibrate_checkpoint
    from finegrain.predict.tiers import tiers

    out, data, _ = extended_benchmark
    run = RunDirectory(grid_run(out / "runs", "Edema/ext-three-way-iterations4/seed0"))
    checkpoint = run.latest_checkpoint()
    predictor = Predictor.from_checkpoint(checkpoint)
    assert isinstance(predictor.method, ThreeWay)
    index = read_index(data.index)
    paths = [str(p) for p in index["path"].head(4)]
    images = np.stack([predictor.read(p) for p in paths])
    with torch.no_grad():
        logits = predictor.model(torch.from_numpy(images)[:, None]).float()
    expected = THREE_WAY.positive_probability(logits).numpy()
    np.testing.assert_allclose(predictor.probabilities(images), expected, atol=1e-6)
    # tiers: the typical cut is fitted on, and applied to, the method's own fine score
    thresholds = calibrate_checkpoint(checkpoint, calibration="none", write=False).thresholds
    assert thresholds.n_atypical > 0 and thresholds.n_typical > 0
    frame = predict(predictor, paths, thresholds=thresholds, progress=False)
    np.testing.assert_allclose(frame["probability"], expected, atol=1e-6)
    fine = THREE_WAY.fine_score(logits).numpy()
    assert frame["tier"].tolist() == tiers(expected, thresholds, fine)
    # export: the ONNX graph returns the method's positive probability
    onnx_path = export(checkpoint, tmp_path / "three-way.onnx", format="onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["probability"], {"image": images[:, None]})
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # CAM: the method's evidence (positive outputs against the negative one)
    table = cam_images([checkpoint], paths[:2], tmp_path / "cams", progress=False)
    assert (table["error"] == "").all()
    np.testing.assert_allclose(table["probability"], expected[:2], atol=1e-6)
    assert all((tmp_path / "cams").joinpath(p).is_file() for p in table["output"].map(_name))


def test_a_method_needing_fine_labels_refuses_an_index_without_them(extended_benchmark, tmp_path):
    from finegrain.train.config import TrainConfig
    from finegrain.train.loop import train

    _, data, _ = extended_benchmark
    index = read_index(data.index).drop(columns=["Edema subcategory"])
    bare = tmp_path / "index.csv"
    index.to_csv(bare, index=False)
    config = TrainConfig(
        index=str(bare),
        cache=str(data.cache),
        observation="Edema",
        method="ext-three-way",
        model="densenet-tiny",
        pretrained=False,
        iterations=2,
        checkpoint_every=2,
        batch_size=8,
        out=str(tmp_path / "run"),
        num_workers=0,
    )
    with pytest.raises(
        ValueError, match="trains on fine labels.*'Edema subcategory' column is absent"
    ):
        train(config, progress=False)


def _name(path: str) -> str:
    from pathlib import Path

    return Path(path).name
