"""Plugins: a package outside finegrain (tests/plugin_package) registers a method, a model, a
preset and a selection; through an entry point or ``--plugin`` they reach the ``finegrain``
command, which lists them and trains, evaluates and reports the method, with no file of
finegrain edited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from finegrain.errors import FinegrainError
from finegrain.registry import Registry
from helpers import index_and_cache

PLUGIN_DIR = Path(__file__).resolve().parent / "plugin_package"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A 32 px phantom of 150 training studies and 60 per evaluation split (atypical and
    typical Edema positives in validate and test), indexed and cached."""
    from finegrain.data.phantom import make_phantom

    out = tmp_path_factory.mktemp("plugin-data")
    make_phantom(out / "phantom", studies=150, size=32, seed=0, eval_studies=60)
    return index_and_cache(out / "phantom", out)


def entry_point_dir(root: Path) -> Path:
    """A folder that, on the path, makes ``finegrain_toy_plugin`` an installed distribution
    with an entry point of the group ``finegrain.plugins`` (what pip install would write)."""
    info = root / "finegrain_toy_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: finegrain-toy-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[finegrain.plugins]\ntoy = finegrain_toy_plugin\n")
    return root


def finegrain(*argv: str, path: list[Path]) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, path), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "finegrain", *argv], capture_output=True, text=True, env=env,
        timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_an_entry_point_plugin_is_listed_trained_evaluated_and_reported(tiny_data, tmp_path):
    path = [entry_point_dir(tmp_path / "site"), PLUGIN_DIR]
    listed = finegrain("list", "--json", path=path)
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    mine = {k: {e["name"]: e for e in found[k]} for k in ("methods", "models", "presets")}
    assert mine["methods"]["toy-ones"]["module"] == "finegrain_toy_plugin"
    assert "a plugin's method" in mine["methods"]["toy-ones"]["description"]
    assert mine["models"]["toy-cnn"]["description"].startswith("Two strided convolutions")
    assert "toy" in mine["presets"]
    assert found["plugins"] == [
        {"name": "toy", "target": "finegrain_toy_plugin", "source": "entry point of "
         "finegrain-toy-plugin"}
    ]  # fmt: skip

    out = tmp_path / "bench"
    args = ["benchmark", "--preset", "toy", "--index", str(tiny_data / "index.csv")]
    args += ["--cache", str(tiny_data / "cache"), "--methods", "u-ones,toy-ones"]
    args += ["--model", "toy-cnn", "--no-progress", "--out", str(out)]
    result = finegrain(*args, path=path)
    assert result.returncode == 0, result.stderr
    assert "| Toy-Ones |" in result.stdout
    results = pd.read_csv(out / "results.csv")
    toy = results[results["method"] == "toy-ones"]
    assert set(toy["split"]) == {"validate", "test"} and toy["selected"].any()
    assert toy["auc_fg"].notna().all()
    assert "| Toy-Ones |" in (out / "summary.md").read_text()
    config = json.loads(next(out.glob("runs/*/Edema/toy-ones/seed0/config.json")).read_text())
    assert config["model"] == "toy-cnn" and config["method"] == "toy-ones"


def test_a_plugin_module_named_on_the_command_line(monkeypatch, capsys):
    from finegrain.cli import main
    from finegrain.train.methods import METHODS

    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    assert main(["list", "methods", "--plugin", "finegrain_toy_plugin"]) == 0
    out = capsys.readouterr().out
    assert "toy-ones" in out and "[finegrain_toy_plugin]" in out
    assert "--plugin" in out  # the plugin is listed with where it came from
    assert METHODS.module_of("toy-ones") == "finegrain_toy_plugin"
    # its preset and selection are among the benchmark's choices
    with pytest.raises(SystemExit):
        main(["--plugin", "finegrain_toy_plugin", "benchmark", "--help"])
    assert "toy-table" in capsys.readouterr().out


def test_an_unknown_plugin_module_is_one_line(capsys):
    from finegrain.cli import main

    assert main(["--plugin", "no_such_plugin_module", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "finegrain list: error: --plugin no_such_plugin_module: no module named "
        "'no_such_plugin_module' on the Python path"
    )


def test_a_name_registered_twice_is_an_error_unless_replaced(caplog):
    registry: Registry[int] = Registry("colour")
    registry.register("red", 1, module="mine")
    with pytest.raises(FinegrainError, match="registered twice: by mine and by theirs"):
        registry.register("red", 2, module="theirs")
    assert registry["red"] == 1
    registry.register("red", 4, module="theirs", replace=True)
    assert registry["red"] == 4 and registry.module_of("red") == "theirs"
    assert "colour 'red' is replaced" in caplog.text


def test_every_entry_finegrain_registers_has_a_description():
    from finegrain.cli.registered import KINDS, listing

    found = [e for entries in listing(list(KINDS)).values() for e in entries]
    own = [e for e in found if e["module"].startswith("finegrain.")]
    assert len(own) >= 14 + 4 + 4 + 4 + 3
    assert [e["name"] for e in own if not e["description"]] == []
