"""Exported models give the PyTorch model's probabilities, at any batch size."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from finegrain.predict import Predictor, export, export_model

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from helpers import save_tiny_checkpoint as _save_tiny_checkpoint

    return _save_tiny_checkpoint(
        tmp_path_factory.mktemp("export") / "tiny.pt", seed=3, method="pu-rm", thresholds=None
    )


def _inputs(size):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (b, 1, size, size), dtype=np.uint8) for b in (3, 1, 5)]


def test_torchscript_matches_pytorch(checkpoint, tmp_path):
    from finegrain.cli import main

    predictor = Predictor.from_checkpoint(checkpoint)
    out = tmp_path / "model.ts"
    assert main(["export", str(checkpoint), "--format", "torchscript", "-o", str(out)]) == 0
    scripted = torch.jit.load(str(out))
    for x in _inputs(predictor.image_size):
        got = scripted(torch.from_numpy(x)).numpy()
        expected = predictor.probabilities(x[:, 0])
        assert got.shape == (len(x),)
        np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.skipif(
    not HAVE_ONNX,
    reason="ONNX export needs the optional extra 'export' (onnx, onnxscript, onnxruntime)",
)
def test_onnx_matches_pytorch_with_dynamic_batch(checkpoint, tmp_path):
    import onnxruntime as ort

    from finegrain.cli import main

    predictor = Predictor.from_checkpoint(checkpoint)
    out = tmp_path / "model.onnx"
    argv = ["export", str(checkpoint), "--format", "onnx", "--onnx-exporter", "legacy"]
    assert main([*argv, "-o", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    for x in _inputs(predictor.image_size):
        (got,) = session.run(["probability"], {"image": x})
        np.testing.assert_allclose(got, predictor.probabilities(x[:, 0]), atol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(
    not HAVE_ONNX,
    reason="ONNX export needs the optional extra 'export' (onnx, onnxscript, onnxruntime)",
)
def test_onnx_dynamo_exporter_dynamic_batch(tmp_path):
    """The default (torch.export-based) exporter, on a small model of the same contract
    (a full densenet-tiny takes ~20 s to export this way)."""
    import onnxruntime as ort
    from torch import nn

    from finegrain.train.methods import get_method
    from finegrain.train.models import FinegrainNet

    torch.manual_seed(0)
    features = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU())
    model = FinegrainNet(features, nn.Linear(4, 2), "small").eval()
    method = get_method("u-ones")
    out = export_model(model, 16, tmp_path / "small.onnx", method=method, format="onnx")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for x in _inputs(16):
        (got,) = session.run(["probability"], {"image": x})
        with torch.no_grad():
            expected = torch.softmax(model(torch.from_numpy(x)), 1)[:, 1].numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_unknown_format(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="unknown export format"):
        export(checkpoint, tmp_path / "m.x", format="tflite")


def test_torchscript_checks_its_input_like_onnx(checkpoint, tmp_path, recwarn):
    """The TorchScript model refuses what the ONNX graph refuses (not uint8, not [B, 1, S, S]),
    from inside the saved module; exporting it shows no TracerWarning."""
    from finegrain.cli import main

    out = tmp_path / "model.pt"
    assert main(["export", str(checkpoint), "-o", str(out)]) == 0
    assert not [w for w in recwarn if issubclass(w.category, torch.jit.TracerWarning)]
    scripted = torch.jit.load(str(out))
    size = Predictor.from_checkpoint(checkpoint).image_size
    good = torch.zeros(2, 1, size, size, dtype=torch.uint8)
    assert scripted(good).shape == (2,)
    bad = {
        "a floating-point tensor": good.float(),
        f"shape [2, 1, {2 * size}, {2 * size}]": torch.zeros(
            2, 1, 2 * size, 2 * size, dtype=torch.uint8
        ),
        f"shape [2, 3, {size}, {size}]": torch.zeros(2, 3, size, size, dtype=torch.uint8),
        f"shape [1, {size}, {size}]": torch.zeros(1, size, size, dtype=torch.uint8),
    }
    for what, x in bad.items():
        with pytest.raises(torch.jit.Error, match=rf"uint8 \[B, 1, {size}, {size}\]") as info:
            scripted(x)
        assert f"got {what}" in str(info.value)


@pytest.mark.parametrize(("fmt", "name"), [("onnx", "m.pt"), ("torchscript", "m.onnx")])
def test_export_suffix_must_match_the_format(checkpoint, tmp_path, fmt, name):
    with pytest.raises(ValueError, match=f"--format {fmt} writes"):
        export(checkpoint, tmp_path / name, format=fmt)
    assert not (tmp_path / name).exists()


def test_export_never_writes_over_its_checkpoint(checkpoint, tmp_path):
    copy = tmp_path / "c.pt"
    copy.write_bytes(checkpoint.read_bytes())
    with pytest.raises(ValueError, match="is the input"):
        export(copy, copy)
    assert copy.read_bytes() == checkpoint.read_bytes()


@pytest.mark.skipif(
    not HAVE_ONNX,
    reason="ONNX export needs the optional extra 'export' (onnx, onnxscript, onnxruntime)",
)
@pytest.mark.parametrize(
    ("exporter", "opset", "said"),
    [
        ("dynamo", 3, "--opset 3: the dynamo ONNX exporter writes opset 18 or later"),
        ("dynamo", 99, "--opset 99: ONNX has opsets 1 to"),
        ("legacy", 3, "--opset 3: the legacy ONNX exporter cannot write it"),
        ("legacy", 7, "--opset 7: the legacy ONNX exporter cannot write it"),
    ],
)
def test_an_opset_the_exporter_cannot_write_is_one_line_exit_2(
    checkpoint, tmp_path, capsys, exporter, opset, said
):
    """``--opset 3`` / ``--opset 99`` printed a raw RuntimeError, then "exported", exit 0, and
    wrote opset 18."""
    from finegrain.cli import EXIT_USAGE, main

    out = tmp_path / "m.onnx"
    argv = ["export", str(checkpoint), "--format", "onnx", "--onnx-exporter", exporter]
    assert main([*argv, "--opset", str(opset), "-o", str(out)]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert "exported" not in captured.out and not out.exists()
    (line,) = captured.err.strip().splitlines()
    assert said in line and "Traceback" not in captured.err


@pytest.fixture(scope="module")
def three_class(tmp_path_factory):
    """A tiny checkpoint of a method with a fine score of its own (three-class: 3 outputs)."""
    from finegrain.train.checkpoint import save_checkpoint
    from finegrain.train.models import build_model
    from helpers import CHECKPOINT_SIZE

    torch.manual_seed(5)
    model = build_model("densenet-tiny", pretrained=False, outputs=3)
    with torch.no_grad():
        model.classifier.weight.mul_(20)
    path = tmp_path_factory.mktemp("export-fine") / "three-class.pt"
    save_checkpoint(
        path,
        {
            "model": model.state_dict(), "iteration": 5, "model_name": "densenet-tiny",
            "outputs": 3, "image_size": CHECKPOINT_SIZE, "observation": "Consolidation",
            "preprocessing": {"size": CHECKPOINT_SIZE, "crop": "none", "normalization": "imagenet"},
            "method": "three-class", "config": {},
        },
    )  # fmt: skip
    return path


def test_a_method_with_its_own_fine_score_exports_it_beside_the_probability(three_class, tmp_path):
    """Tiers applied to an export decide the typical cut by the fine score, as predict does: an
    export of the probability alone would call most positives typical."""
    from finegrain.cli import main

    predictor = Predictor.from_checkpoint(three_class)
    out = tmp_path / "model.ts"
    assert main(["export", str(three_class), "--format", "torchscript", "-o", str(out)]) == 0
    scripted = torch.jit.load(str(out))
    for x in _inputs(predictor.image_size):
        probability, fine = (t.numpy() for t in scripted(torch.from_numpy(x)))
        expected = predictor.scores(x[:, 0])
        np.testing.assert_allclose(probability, expected["score"], atol=1e-5)
        np.testing.assert_allclose(fine, expected["fine_score"], atol=1e-5)
        assert not np.allclose(fine, probability)  # its own: not the probability again
    if HAVE_ONNX:
        import onnxruntime as ort

        path = tmp_path / "model.onnx"
        argv = ["export", str(three_class), "--format", "onnx", "--onnx-exporter", "legacy"]
        assert main([*argv, "-o", str(path)]) == 0
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [o.name for o in session.get_outputs()] == ["probability", "fine_score"]
        x = _inputs(predictor.image_size)[0]
        probability, fine = session.run(None, {"image": x})
        np.testing.assert_allclose(fine, predictor.scores(x[:, 0])["fine_score"], atol=1e-5)
