"""Plain CAM: the logit decomposition holds exactly; figures are written; clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from finegrain.predict.cam import cam_images, compute_cam
from finegrain.train.methods import get_method

TWO_WAY = get_method("u-ones")


@pytest.mark.parametrize("name", ["densenet-tiny", "resnet18"])
def test_cam_mean_plus_bias_is_the_logit_difference(name):
    from finegrain.train.models import build_model

    torch.manual_seed(0)
    model = build_model(name, pretrained=False).eval()
    x = torch.randint(0, 256, (3, 1, 64, 64), dtype=torch.uint8)
    res = compute_cam(model, x, TWO_WAY)
    with torch.no_grad():
        logits = model(x)
    diff = (logits[:, 1] - logits[:, 0]).numpy()
    assert res.feature_cam.ndim == 3 and res.feature_cam.shape[1] > 1  # a spatial map
    np.testing.assert_allclose(res.feature_cam.mean(axis=(1, 2)) + res.bias, diff, atol=1e-5)
    np.testing.assert_allclose(res.probability, torch.softmax(logits, 1)[:, 1].numpy(), atol=1e-6)
    assert res.cam.shape == (3, 64, 64)
    # the CAM is a map of the input, not a constant: different images give different maps
    assert not np.allclose(res.cam[0], res.cam[1])


def test_cam_refuses_models_it_cannot_explain():
    from finegrain.train.models import build_model

    class MLPHead(nn.Module):  # not a finegrain model: no features / classifier
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(4 * 30 * 30, 2)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x.float()).flatten(1)))

    x = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
    with pytest.raises(ValueError, match="plain CAM needs a finegrain model"):
        compute_cam(MLPHead(), x, TWO_WAY)
    max_pooled = build_model("densenet-tiny", pretrained=False)  # the mean is not the input
    max_pooled.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(1))
    big = torch.randint(0, 256, (2, 1, 128, 128), dtype=torch.uint8)  # a 4 x 4 feature map
    compute_cam(
        build_model("densenet-tiny", pretrained=False), big, TWO_WAY
    )  # average pooled: fine
    with pytest.raises(ValueError, match="global average"):
        compute_cam(max_pooled, big, TWO_WAY)
    three_logits = build_model("densenet-tiny", pretrained=False)
    three_logits.classifier = nn.Linear(three_logits.classifier.in_features, 3)
    with pytest.raises(ValueError, match=r"expects logits \[B, 2\]"):
        compute_cam(three_logits, x, TWO_WAY)


def test_cam_images_side_by_side_and_cli(tmp_path, capsys):
    from finegrain.cli import main
    from helpers import save_tiny_checkpoint as _save_tiny_checkpoint

    a = _save_tiny_checkpoint(tmp_path / "u-ones.pt", seed=0, method="u-ones", thresholds=None)
    b = _save_tiny_checkpoint(
        tmp_path / "pu-rm.pt", seed=1, method="pu-rm", thresholds={"positive": 0.3, "typical": 0.6}
    )
    imgs = tmp_path / "imgs"
    (imgs / "x").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (50, 40), dtype=np.uint8)).save(imgs / "one.png")
    Image.fromarray(rng.integers(0, 256, (50, 40), dtype=np.uint8)).save(imgs / "x" / "one.jpg")
    (imgs / "bad.png").write_bytes(b"\x89PNG broken")

    single = cam_images([a], [imgs], tmp_path / "single", progress=False)
    double = cam_images([a, b], [imgs], tmp_path / "double", progress=False)
    assert (single["error"] != "").sum() == 1 and "bad.png" in " ".join(single["error"])
    outs = sorted(p.name for p in (tmp_path / "double").glob("*.png"))
    assert outs == ["one-2.png", "one.png"]  # the repeated stem does not overwrite
    w1 = Image.open(tmp_path / "single" / "one.png").size[0]
    w2 = Image.open(tmp_path / "double" / "one.png").size[0]
    assert w2 > w1  # a second CAM panel beside the first
    np.testing.assert_allclose(single["probability"], double["probability"])  # first checkpoint

    assert (
        main(
            [
                "cam",
                str(a),
                str(b),
                str(imgs / "one.png"),
                "-o",
                str(tmp_path / "cli"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert (tmp_path / "cli" / "one.png").is_file()
    with pytest.raises(SystemExit):
        main(["cam", str(imgs / "one.png"), "-o", str(tmp_path / "cli")])  # no checkpoint


def test_cam_and_predict_never_write_over_an_input_image(tmp_path):
    """With the output folder = the input folder, the overlays get other names; every input
    image is left byte for byte as it was."""
    from finegrain.predict import predict
    from helpers import save_tiny_checkpoint as _save_tiny_checkpoint

    ckpt = _save_tiny_checkpoint(
        tmp_path / "m.pt", seed=0, method="pu-rm", thresholds={"positive": 0.3, "typical": 0.6}
    )
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "b-2.png"):
        Image.fromarray(rng.integers(0, 256, (50, 40), dtype=np.uint8)).save(imgs / name)
    before = {p.name: p.read_bytes() for p in imgs.iterdir()}
    frame = cam_images([ckpt], [imgs], imgs, progress=False)
    assert (frame["error"] == "").all()
    assert {p.name: p.read_bytes() for p in imgs.iterdir() if p.name in before} == before
    assert not set(frame["output"]) & {str(imgs / n) for n in before}
    assert len(set(frame["output"])) == 3
    predict(ckpt, [imgs / n for n in before], cam_dir=imgs, progress=False)
    assert {p.name: p.read_bytes() for p in imgs.iterdir() if p.name in before} == before
