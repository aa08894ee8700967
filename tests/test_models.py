"""Model factory: input contract, 2-way heads, weights loading and its error messages."""

from __future__ import annotations

import re

import pytest
import torch
import torchvision

from finegrain.train.models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    InputNormalization,
    build_model,
    cam_layers,
    default_weights_path,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _images(n=2, size=32):
    return torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8)


def test_input_normalization_values():
    x = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)
    y = InputNormalization()(x)
    assert y.shape == (1, 3, 1, 2) and y.dtype == torch.float32
    for c in range(3):
        assert y[0, c, 0, 0].item() == pytest.approx(-IMAGENET_MEAN[c] / IMAGENET_STD[c], rel=1e-6)
        assert y[0, c, 0, 1].item() == pytest.approx(
            (1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c], rel=1e-6
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int64])
def test_input_normalization_rejects_non_uint8(dtype):
    with pytest.raises(TypeError, match=re.escape(str(dtype))):
        InputNormalization()(torch.zeros(1, 1, 4, 4, dtype=dtype))
    with pytest.raises(ValueError, match="shape"):
        InputNormalization()(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))


def test_densenet121_is_torchvision_densenet_with_two_way_head():
    model = build_model("densenet121", pretrained=False)
    features, classifier = cam_layers(model)
    assert isinstance(features[0].denseblock4, torchvision.models.densenet._DenseBlock)
    assert len(features[0].denseblock4) == 16 and classifier.in_features == 1024
    assert classifier.out_features == 2


def test_densenet_small_is_densenet121_at_half_depth_and_growth():
    model = build_model("densenet-small", pretrained=False)
    features, classifier = cam_layers(model)
    blocks = [getattr(features[0], f"denseblock{i}") for i in range(1, 5)]
    assert [len(b) for b in blocks] == [3, 6, 12, 8]  # DenseNet121: 6, 12, 24, 16
    assert blocks[0].denselayer1.conv2.out_channels == 16  # growth: DenseNet121's is 32
    size = sum(p.numel() for p in model.parameters())
    tiny = sum(p.numel() for p in build_model("densenet-tiny", pretrained=False).parameters())
    full = sum(p.numel() for p in build_model("densenet121", pretrained=False).parameters())
    assert 5 * tiny < size < full / 5


@pytest.mark.parametrize("name", ["densenet-tiny", "densenet-small", "resnet18"])
def test_models_give_two_logits_and_cam_layers(name):
    torch.manual_seed(0)
    model = build_model(name, pretrained=False).eval()
    x = _images()
    with torch.no_grad():
        logits = model(x)
        features, classifier = cam_layers(model)
        fmap = features(model.normalize(x))
        again = classifier(fmap.mean(dim=(2, 3)))
    assert logits.shape == (2, 2)
    assert classifier.out_features == 2 and fmap.shape[1] == classifier.in_features
    torch.testing.assert_close(logits, again)
    with pytest.raises(TypeError, match="uint8"):
        model(x.float())


def test_missing_pretrained_weights_message(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    expected = tmp_path / "hub" / "checkpoints" / "densenet121-a639ec97.pth"
    assert default_weights_path("densenet121") == expected
    with pytest.raises(FileNotFoundError) as err:
        build_model("densenet121")
    message = str(err.value)
    assert str(expected) in message and "--weights FILE" in message
    assert "--no-pretrained" in message
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_model("resnet18", weights=tmp_path / "nope.pth")
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg")


def test_weights_from_hub_cache_and_file(tmp_path, monkeypatch):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    path = default_weights_path("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    for model in (build_model("resnet18"), build_model("resnet18", weights=path)):
        torch.testing.assert_close(model.features[0].weight, reference.conv1.weight)
        torch.testing.assert_close(
            model.features[7][1].bn2.running_var, reference.layer4[1].bn2.running_var
        )
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="does not match resnet18"):
        build_model("resnet18", weights=bad)


def test_old_densenet_key_names_are_mapped(tmp_path):
    """torchvision's ImageNet DenseNet files use 'norm.1'-style keys; they must load."""
    torch.manual_seed(2)
    reference = build_model("densenet-tiny", pretrained=False)
    state = {}
    for key, value in reference.features[0].state_dict().items():
        state["features." + re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])", r"\1.\2", key)] = (
            value
        )
    assert any(".norm.1." in k for k in state)
    path = tmp_path / "tiny.pth"
    torch.save(state, path)
    model = build_model("densenet-tiny", weights=path)
    torch.testing.assert_close(model.features[0].state_dict(), reference.features[0].state_dict())


@pytest.mark.parametrize(
    ("data", "said"),
    [(b"hello, not weights\n", "a text file, not a weights file"), (b"", "empty file")],
)
def test_weights_that_are_not_a_torch_file_are_one_line(tmp_path, data, said):
    """``--weights`` pointing at a text file raised a bare ``KeyError: 101`` from the unpickler."""
    from finegrain.errors import FinegrainError

    path = tmp_path / "weights.txt"
    path.write_bytes(data)
    with pytest.raises(FinegrainError, match=f"^{re.escape(str(path))}: {said}"):
        build_model("densenet-tiny", weights=path)
