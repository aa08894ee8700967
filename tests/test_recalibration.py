"""Recalibration: temperature scaling and isotonic maps fitted on validation, the tiers they
keep, and the calibrated probability through calibrate -> predict / cam / export."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
import torch

from finegrain.calibration import expected_calibration_error
from finegrain.predict.tiers import fit_reading, fit_thresholds, tiers
from finegrain.recalibration import (
    IsotonicCalibration,
    TemperatureScaling,
    fit_recalibration,
    from_dict,
)

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))


def _split(n, seed, temperature=2.5):
    """A validation-like split of an overconfident model: outcomes from σ(z / T), reported
    probability σ(z); positives are atypical or typical, typical ones with a higher z."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, n)
    label = (rng.random(n) < 1 / (1 + np.exp(-z / temperature))).astype(int)
    typical = rng.random(n) < 1 / (1 + np.exp(-(z - 2)))
    sub = np.where(label == 1, np.where(typical, "typical", "atypical"), "")
    label = np.where(rng.random(n) < 0.1, -1, label)  # uncertain rows: ignored by every fit
    return label, sub, (1 / (1 + np.exp(-z))).astype(np.float32).astype(float)


def test_temperature_scaling_recovers_the_temperature_and_lowers_ece():
    label, _, p = _split(20000, seed=0)
    known = label >= 0
    t = fit_recalibration(label[known], p[known])
    assert t.temperature == pytest.approx(2.5, rel=0.05)
    assert (t.n_positive, t.n_negative) == (int((label == 1).sum()), int((label == 0).sum()))
    before = expected_calibration_error(label[known], p[known])
    after = expected_calibration_error(label[known], t.apply(p[known]))
    assert after < before / 3
    assert np.all(np.diff(t.apply(np.sort(p))) >= 0)  # keeps every order
    assert from_dict(t.to_dict()) == t


def test_the_torch_map_is_the_numpy_map():
    rng = np.random.default_rng(1)
    q = np.r_[0.0, 1.0, rng.random(500)].astype(np.float32)
    label, _, p = _split(3000, seed=1)
    for fitted in (
        TemperatureScaling(temperature=1.7),
        fit_recalibration(label[label >= 0], p[label >= 0], kind="isotonic"),
    ):
        got = fitted.apply_tensor(torch.from_numpy(q)).numpy()
        np.testing.assert_allclose(got, fitted.apply(q), rtol=0, atol=1e-5)


def test_isotonic_is_scikit_learns_isotonic_regression():
    from sklearn.isotonic import IsotonicRegression

    label, _, p = _split(2000, seed=2)
    keep = label >= 0
    iso = fit_recalibration(label[keep], p[keep], kind="isotonic")
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p[keep], label[keep])
    q = np.linspace(-0.1, 1.1, 301).clip(0, 1)
    np.testing.assert_allclose(iso.apply(q), reference.predict(q), rtol=0, atol=1e-12)
    assert isinstance(from_dict(iso.to_dict()), IsotonicCalibration)
    with pytest.raises(ValueError, match="increasing breakpoints"):
        IsotonicCalibration(x=[0.5, 0.2], y=[0.1, 0.3])
    with pytest.raises(ValueError, match="unknown calibration kind 'platt'"):
        from_dict({"kind": "platt"})
    with pytest.raises(ValueError, match="0 negative.*keeps the model's own probability"):
        fit_recalibration([1, 1], [0.4, 0.9])


def test_thresholds_fitted_after_temperature_scaling_give_the_same_tiers():
    """The issue's check: calibrate first, fit the thresholds on the calibrated validation
    probabilities, and the test split's tiers are those of the uncalibrated reading."""
    label, sub, p = _split(4000, seed=3)
    test_label, test_sub, test_p = _split(4000, seed=4)
    own = fit_thresholds(label, sub, p, sensitivity=0.95)
    reading = fit_reading(label, sub, p, calibration="temperature", sensitivity=0.95)
    t = reading.recalibration
    assert t.temperature > 1.5 and reading.changed == 0
    # fitted on the calibrated validation probabilities: the same cuts, carried through the map
    after = fit_thresholds(label, sub, t.apply(p), sensitivity=0.95)
    assert (after.positive, after.typical) == pytest.approx(
        (reading.thresholds.positive, reading.thresholds.typical), abs=1e-12
    )
    assert reading.thresholds.calibration == "temperature"
    assert tiers(t.apply(test_p), after) == tiers(test_p, own)
    assert len(set(tiers(test_p, own))) == 3  # every tier occurs: the check can fail
    # an isotonic map ties probabilities in its flat steps: the reading says how many moved
    iso = fit_reading(label, sub, p, calibration="isotonic", sensitivity=0.95)
    moved = sum(a != b for a, b in zip(tiers(iso.recalibration.apply(p), iso.thresholds),
                                       tiers(p, own), strict=True))  # fmt: skip
    assert iso.changed == moved


# ------------------------------------------------------- calibrate -> predict / cam / export


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory):
    """A tiny pu-rm checkpoint in a run folder whose validation predictions are its own
    probabilities on random images with outcomes drawn from σ(logit(p) / 2): `finegrain
    calibrate` (temperature scaling, the default) stores T ≈ 2 and the thresholds."""
    from finegrain.cli import main
    from finegrain.predict import Predictor
    from helpers import CHECKPOINT_SIZE, save_tiny_checkpoint

    run = tmp_path_factory.mktemp("calibrated") / "run"
    checkpoint = save_tiny_checkpoint(
        run / "checkpoints" / "iter-0000005.pt", seed=0, method="pu-rm", thresholds=None
    )
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (600, CHECKPOINT_SIZE, CHECKPOINT_SIZE), dtype=np.uint8)
    p = Predictor.from_checkpoint(checkpoint).probabilities(images)
    z = np.log(np.clip(p, 1e-7, 1 - 1e-7) / np.clip(1 - p, 1e-7, 1))
    label = (rng.random(len(p)) < 1 / (1 + np.exp(-z / 2))).astype(int)
    sub = np.where(
        label == 1, np.where(z + rng.normal(0, 1, len(p)) > 1, "typical", "atypical"), ""
    )
    pd.DataFrame(
        {"image_id": [f"img{i}" for i in range(len(p))], "iteration": 5, "label": label,
         "subcategory": sub, "score": p, "fine_score": p}
    ).to_csv(run / "predictions-validate.csv", index=False)  # fmt: skip
    assert main(["calibrate", str(checkpoint)]) == 0
    return checkpoint


def test_predict_gives_the_calibrated_probability(calibrated_run, tmp_path):
    from PIL import Image

    from finegrain.predict import Predictor, predict
    from finegrain.predict.calibrate import stored_recalibration

    recalibration = stored_recalibration(calibrated_run)
    assert recalibration.kind == "temperature" and recalibration.temperature > 1.3
    rng = np.random.default_rng(7)
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"x{i}.png")
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(paths[-1])
    frame = predict(calibrated_run, paths, progress=False)
    predictor = Predictor.from_checkpoint(calibrated_run)
    images = np.stack([predictor.read(p) for p in paths])
    own = torch.softmax(predictor.model(torch.from_numpy(images)[:, None]), 1)[:, 1]
    expected = recalibration.apply(own.detach().numpy())
    np.testing.assert_allclose(frame["probability"], expected, rtol=0, atol=1e-6)
    assert frame["fine_score"].equals(frame["probability"])  # the paper's method: fine = p
    assert set(frame["calibration"]) == {recalibration.describe()}
    assert frame["tier"].tolist() == tiers(frame["probability"], predictor.thresholds)
    # thresholds of another reading than the checkpoint's calibration are refused
    other = predictor.thresholds.to_dict() | {"calibration": "none"}
    with pytest.raises(ValueError, match="fitted after calibration 'none'.*'temperature'"):
        predict(calibrated_run, paths, thresholds=other, progress=False)


def test_cam_titles_show_the_calibrated_probability(calibrated_run, tmp_path, monkeypatch):
    from PIL import Image

    import finegrain.predict.cam as cam
    from finegrain.predict import predict

    path = tmp_path / "x.png"
    Image.fromarray(np.full((40, 40), 90, np.uint8)).save(path)
    titles: list[str] = []
    monkeypatch.setattr(
        cam, "save_cam_figure", lambda image, panels, out, title="": titles.extend(
            text for _, text in panels)
    )  # fmt: skip
    cam.cam_images([calibrated_run], [path], tmp_path / "cams", progress=False)
    p = predict(calibrated_run, path, progress=False)["probability"].iloc[0]
    assert f"calibrated p = {p:.3f}" in titles[0], titles


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_an_export_outputs_what_predict_gives_to_1e_5(calibrated_run, tmp_path, fmt):
    from finegrain.predict import Predictor, export
    from finegrain.predict.export import METADATA_KEY

    if fmt == "onnx" and not HAVE_ONNX:
        pytest.skip("ONNX export needs the optional extra 'export'")
    predictor = Predictor.from_checkpoint(calibrated_run)
    out = tmp_path / ("m.ts" if fmt == "torchscript" else "m.onnx")
    export(calibrated_run, out, format=fmt, onnx_exporter="legacy")
    x = np.random.default_rng(3).integers(0, 256, (5, 1, 32, 32), dtype=np.uint8)
    expected = predictor.probabilities(x[:, 0])
    if fmt == "torchscript":
        extra = {METADATA_KEY: ""}
        got = torch.jit.load(str(out), _extra_files=extra)(torch.from_numpy(x)).numpy()
        meta = json.loads(extra[METADATA_KEY])
    else:
        import onnx
        import onnxruntime as ort

        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        (got,) = session.run(["probability"], {"image": x})
        props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        meta = json.loads(props[METADATA_KEY])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    own = torch.softmax(predictor.model(torch.from_numpy(x)), 1)[:, 1].detach().numpy()
    assert np.abs(got - own).max() > 1e-3  # the calibration is in the graph
    assert meta["calibration"] == predictor.recalibration.to_dict()
    assert meta["thresholds"]["calibration"] == "temperature"
    assert (meta["method"], meta["outputs"]) == ("pu-rm", ["probability"])


def test_a_fine_score_of_its_own_is_not_recalibrated(tmp_path):
    """three-class: P(positive) is recalibrated, P(typical | positive) stays the model's, in
    predict and in the export."""
    from finegrain.predict import Predictor, export
    from finegrain.predict.calibrate import store_reading
    from finegrain.predict.tiers import Reading, Thresholds
    from finegrain.train.checkpoint import save_checkpoint
    from finegrain.train.methods import get_method
    from finegrain.train.models import build_model
    from helpers import CHECKPOINT_SIZE

    torch.manual_seed(5)
    model = build_model("densenet-tiny", pretrained=False, outputs=3)
    path = tmp_path / "three-class.pt"
    save_checkpoint(path, {
        "model": model.state_dict(), "iteration": 5, "model_name": "densenet-tiny",
        "outputs": 3, "image_size": CHECKPOINT_SIZE, "observation": "Edema", "config": {},
        "preprocessing": {"size": CHECKPOINT_SIZE, "crop": "none", "normalization": "imagenet"},
        "method": "three-class"})  # fmt: skip
    temperature = TemperatureScaling(temperature=0.6)
    store_reading(path, Reading(temperature, Thresholds(0.5, 0.5, calibration="temperature")))
    x = np.random.default_rng(4).integers(0, 256, (4, 1, CHECKPOINT_SIZE, CHECKPOINT_SIZE),
                                          dtype=np.uint8)  # fmt: skip
    scores = Predictor.from_checkpoint(path).scores(x[:, 0])
    own = get_method("three-class").scores(model.eval()(torch.from_numpy(x)).detach())
    np.testing.assert_allclose(scores["score"], temperature.apply(own["score"]), atol=1e-6)
    np.testing.assert_allclose(scores["fine_score"], own["fine_score"], atol=1e-6)
    export(path, tmp_path / "m.ts", format="torchscript")
    probability, fine = torch.jit.load(str(tmp_path / "m.ts"))(torch.from_numpy(x))
    np.testing.assert_allclose(probability.numpy(), scores["score"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(fine.numpy(), scores["fine_score"], rtol=0, atol=1e-5)


def test_temperature_scaling_refuses_a_shift_it_cannot_remove_and_names_isotonic():
    """Every case called positive, most of them negatives: the positives rank higher (AUC 1),
    yet no temperature beats 0.5 for all, so none is fitted; the message says why and what
    fits instead (isotonic does)."""
    from finegrain.errors import FinegrainError
    from finegrain.recalibration import fit_recalibration

    y = np.array([1] * 20 + [0] * 80)
    p = np.where(y == 1, 0.99, 0.9)
    with pytest.raises(FinegrainError, match="shift.*isotonic"):
        fit_recalibration(y, p)
    iso = fit_recalibration(y, p, kind="isotonic")
    assert iso.apply([0.9, 0.99]).tolist() == pytest.approx([0.0, 1.0])
