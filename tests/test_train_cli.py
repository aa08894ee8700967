"""`finegrain train` end to end on the phantom: index -> cache -> train (real CXRDataset path)."""

from __future__ import annotations

import json

import pytest

from finegrain.cli import main
from finegrain.io import read_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def phantom_data(phantom_root, tmp_path_factory):
    from finegrain.data.cache import prepare
    from finegrain.data.index import write_index
    from finegrain.data.mimic import index_mimic

    folder = tmp_path_factory.mktemp("train-cli")
    frame, _ = index_mimic(phantom_root, progress=False)
    frame["path"] = [str(phantom_root / p) for p in frame["path"]]
    write_index(frame, folder / "index.csv")
    prepare(folder / "index.csv", folder / "cache", size=32, progress=False, workers=1)
    return folder


def _args(data, out, *extra):
    return [
        "train",
        "--index",
        str(data / "index.csv"),
        "--cache",
        str(data / "cache"),
        "--observation",
        "pleural effusion",
        "--model",
        "densenet-tiny",
        "--no-pretrained",
        "--iterations",
        "4",
        "--batch-size",
        "8",
        "--checkpoint-every",
        "2",
        "--workers",
        "0",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def test_train_cli_on_phantom(phantom_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_args(phantom_data, out, "--method", "pu-rm", "--tau", "0.2")) == 0
    assert (out / "done").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == "pu-rm" and config["tau"] == 0.2 and config["augment"] is True
    assert config["data"]["train"]["kept"] > 0 and "blank label" in config["data"]["train"]
    assert [m["iteration"] for m in read_jsonl(out / "metrics.jsonl")] == [2, 4]
    same = ("--method", "pu-rm", "--tau", "0.2", "--workers", "1")  # workers: runtime only
    assert main(_args(phantom_data, out, *same, "--resume")) == 0  # complete: nothing to do
    assert "run complete" in capsys.readouterr().out
    assert main(_args(phantom_data, out, "--resume")) == 2  # the default tau is another run
    assert "(tau: 0.2 -> 0.3)" in capsys.readouterr().err


def test_train_cli_errors(phantom_data, tmp_path, capsys, monkeypatch):
    assert main(_args(phantom_data, tmp_path / "a", "--method", "pu_rm")) == 2
    assert "unknown method 'pu_rm'" in capsys.readouterr().err
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    args = _args(phantom_data, tmp_path / "b", "--model", "resnet18")
    args.remove("--no-pretrained")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "resnet18-f37072fd.pth" in err and "--no-pretrained" in err


def test_train_help_explains_methods_and_tau(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for word in ("pu-rm", "u-ignore", "PCE", "tau", "torchrun", "--resume"):
        assert word in text
