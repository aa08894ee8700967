"""`finegrain train` end to end on the phantom: index -> cache -> train (real CXRDataset path)."""

from __future__ import annotations

import json

import pytest

from finegrain.cli import main
from finegrain.io import read_jsonl
from helpers import index_and_cache

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def phantom_data(phantom_root, tmp_path_factory):
    return index_and_cache(phantom_root, tmp_path_factory.mktemp("train-cli"))


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
    assert config["method"] == "pu-rm" and config["augment"] is True
    assert config["method_options"] == {"tau": 0.2}  # τ is the method's option
    assert config["data"]["train"]["kept"] > 0 and "blank label" in config["data"]["train"]
    assert [m["iteration"] for m in read_jsonl(out / "metrics.jsonl")] == [2, 4]
    same = ("--method", "pu-rm", "--tau", "0.2", "--workers", "1")  # workers: runtime only
    assert main(_args(phantom_data, out, *same, "--resume")) == 0  # complete: nothing to do
    assert "run complete" in capsys.readouterr().out
    assert main(_args(phantom_data, out, "--resume")) == 2  # the default tau is another run
    assert "(tau: 0.2 -> 0.3)" in capsys.readouterr().err
    args = _args(phantom_data, tmp_path / "u-ones", "--method", "u-ones", "--tau", "0.2")
    assert main(args) == 2  # a method without PCE has no τ: not silently ignored
    assert "'u-ones' has no PCE loss, so no τ" in capsys.readouterr().err


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


def _train_parser():
    from finegrain.cli import build_parser

    parser = build_parser()
    return parser._subparsers._group_actions[0].choices["train"]


REQUIRED = ["--index", "i.csv", "--cache", "c", "--observation", "Edema", "--out", "run"]


def test_train_options_are_trainconfig_fields_with_its_defaults(capsys):
    import dataclasses

    from finegrain.cli.train import config_from_args
    from finegrain.train.config import TrainConfig
    from finegrain.train.methods import METHODS

    args = _train_parser().parse_args(REQUIRED)
    plain = TrainConfig(index="i.csv", cache="c", observation="Edema", out="run")
    assert config_from_args(args) == plain  # every field, with TrainConfig's default
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for field in dataclasses.fields(TrainConfig):
        default = getattr(plain, field.name)
        if field.name in ("index", "cache", "observation", "out", "method_options"):
            continue
        flag = {"num_workers": "--workers", "eval_splits": "--eval-split"}.get(field.name)
        assert (flag or "--" + field.name.replace("_", "-")) in text
        if isinstance(default, bool):
            shown = "on" if default else "off"
        elif isinstance(default, tuple):
            shown = " ".join(map(str, default))
        else:
            shown = None if default is None else str(default)
        if shown is not None:
            assert f"(default: {shown})" in text, field.name
    for name, method in METHODS.items():
        assert f"{name} {method.display_name}: " in text


def test_method_options_fill_method_options():
    from finegrain.cli.train import config_from_args

    parser = _train_parser()
    args = parser.parse_args(
        [*REQUIRED, "--method", "u-ones-ls", "--method-option", "uncertain_soft_target=0.9"]
        + ["--method-option", "uncertain=one", "--method-option", "positive_loss=ce"]
    )
    config = config_from_args(args)
    assert config.method_options == {
        "uncertain_soft_target": 0.9,  # JSON
        "uncertain": "one",  # not JSON: the string
        "positive_loss": "ce",
    }
    assert parser.get_default("method_options") == {}  # the default was not changed in place
    with pytest.raises(SystemExit):
        parser.parse_args([*REQUIRED, "--method-option", "no-equals-sign"])


def test_unknown_method_option_is_named(tmp_path, capsys):
    args = ["train", *REQUIRED[:-1], str(tmp_path / "run"), "--method", "u-ones"]
    assert main([*args, "--method-option", "q_atypical=0.5"]) == 2
    assert "has no option(s) ['q_atypical']" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_method_and_model_registered_at_runtime_are_listed(capsys):
    from torch import nn

    from finegrain.train.methods import METHODS, CoarseMethod, register_method
    from finegrain.train.models import MODELS, register_model

    register_method(
        CoarseMethod("test-cli-method", "zero", description="a test's", display_name="Test CLI")
    )
    register_model("test-cli-model", nn.Identity, lambda net: (net, 3))
    try:
        with pytest.raises(SystemExit):
            main(["train", "--help"])
    finally:
        METHODS.pop("test-cli-method")
        MODELS.pop("test-cli-model")
    words = capsys.readouterr().out.split()
    assert "test-cli-method Test CLI: a test's" in " ".join(words)
    models = "".join(words).split("--modelMODELbackbone:", 1)[1]  # the option's help
    assert "test-cli-model" in models.split("(default")[0]  # argparse may wrap the list


def test_every_training_option_has_a_real_help(capsys):
    """``--label-noise``'s help was its field name: "label_noise (default: 0.0)"."""
    import dataclasses

    from finegrain.cli.options import FIELD_HELP
    from finegrain.train.config import TrainConfig

    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    assert fields - set(FIELD_HELP) == set()  # else the help is the field's name
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "label_noise (default" not in text
    assert "labels flipped, for a positive control" in text


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--lr", "-1", "--lr must be a number > 0, got -1.0"),
        ("--lr", "nan", "--lr must be a number > 0, got nan"),
        ("--iterations", "0", "--iterations must be an integer >= 1, got 0"),
        ("--label-noise", "0.5", "--label-noise must be a number in [0, 0.5), got 0.5"),
    ],
)
def test_a_value_against_its_fields_rule_is_a_one_line_error(
    option, value, message, tmp_path, capsys
):
    """``TrainConfig.CONSTRAINTS`` checks every option before anything starts (a negative or
    NaN learning rate used to train)."""
    args = ["train", *REQUIRED[:-1], str(tmp_path / "run"), option, value]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"finegrain train: error: {message}\n"
    assert not (tmp_path / "run").exists()


def test_a_batch_larger_than_the_training_split_warns(phantom_data, tmp_path, capsys):
    args = _args(phantom_data, tmp_path / "run", "--method", "u-ones")
    args[args.index("--batch-size") + 1] = "500"
    args[args.index("--iterations") + 1] = "1"
    args[args.index("--checkpoint-every") + 1] = "1"
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "--batch-size 500 is larger than the" in err and "training images" in err
