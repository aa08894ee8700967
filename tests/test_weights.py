"""`finegrain weights`: fetch ImageNet weights into the torch cache with torch.hub (here from a
local file:// URL: CI has no network), verify them, and say what to do offline."""

from __future__ import annotations

import hashlib

import pytest
import torch

from finegrain.cli import main
from finegrain.train.models import (
    MODELS,
    _tiny_densenet,
    build_model,
    default_weights_path,
    fetch_weights,
    register_model,
    verify_weights,
)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache in tmp_path."""
    saved = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(saved)


def _published(tmp_path, name: str) -> tuple[str, bytes]:
    """Weights for a tiny DenseNet 'published' at a file:// URL under the torchvision naming
    convention ``<name>-<first 8 hex of sha256>.pth``; returns (file name, bytes)."""
    torch.manual_seed(0)
    source = tmp_path / "server" / "weights.pth"
    source.parent.mkdir()
    torch.save(_tiny_densenet().state_dict(), source)
    data = source.read_bytes()
    file_name = f"{name}-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    (source.parent / file_name).write_bytes(data)
    return file_name, data


@pytest.fixture
def tiny_published(tmp_path, hub):
    file_name, data = _published(tmp_path, "tinynet")
    url = (tmp_path / "server" / file_name).as_uri()
    register_model(
        "test-tinynet",
        _tiny_densenet,
        MODELS["densenet-tiny"].split,
        weights_file=file_name,
        head_prefix="classifier.",
        weights_url=url,
    )
    yield file_name, data
    MODELS.pop("test-tinynet")


def test_fetch_downloads_into_the_torch_cache_and_verifies(tiny_published, hub, capsys):
    file_name, data = tiny_published
    path = fetch_weights("test-tinynet", progress=False)
    assert path == hub / "checkpoints" / file_name == default_weights_path("test-tinynet")
    assert path.read_bytes() == data
    assert verify_weights("test-tinynet", path) == hashlib.sha256(data).hexdigest()
    model = build_model("test-tinynet")  # now found in the cache, loaded into the backbone
    expected = torch.load(path, weights_only=True)["features.conv0.weight"]
    assert torch.equal(model.features[0].conv0.weight, expected)
    # the CLI step: present now, verified again, exit 0
    assert main(["weights", "test-tinynet", "--no-progress"]) == 0
    assert f"test-tinynet: {path} (verified)" in capsys.readouterr().out


def test_a_corrupt_file_in_the_cache_is_refused(tiny_published, hub, capsys):
    file_name, data = tiny_published
    path = hub / "checkpoints" / file_name
    path.parent.mkdir(parents=True)
    path.write_bytes(data[:-10] + b"0123456789")
    with pytest.raises(ValueError, match="corrupt or not the published file"):
        verify_weights("test-tinynet", path)
    assert main(["weights", "test-tinynet"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Delete it and run `finegrain weights test-tinynet`" in err


def test_offline_error_says_what_to_put_where(hub, monkeypatch, capsys):
    url = "http://127.0.0.1:9/densenet121-a639ec97.pth"  # nothing listens on port 9
    spec = MODELS["densenet121"]
    monkeypatch.setitem(
        MODELS, "densenet121", spec.__class__(**{**spec.__dict__, "weights_url": url})
    )
    expected = hub / "checkpoints" / "densenet121-a639ec97.pth"
    with pytest.raises(ConnectionError) as info:
        fetch_weights("densenet121", progress=False)
    message = str(info.value)
    assert url in message and str(expected) in message and "--weights FILE" in message
    assert not expected.exists() and not list(expected.parent.glob("*.partial"))
    # training without the weights points at the one step that fetches them
    with pytest.raises(FileNotFoundError, match="finegrain weights densenet121"):
        build_model("densenet121")
    assert main(["weights"]) == 2
    assert "could not download" in capsys.readouterr().err
