"""The light install: the labeler, the division rule, the metrics, ``index`` and ``evaluate``
import and run with PyTorch (and everything of the ``train`` extra) made unimportable, and a
command that needs the extra says in one line which install to run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

#: Runs ``finegrain.cli.main(argv)`` in a fresh interpreter where the train extra's modules
#: cannot be imported; prints the modules of the extra that got imported anyway (none).
RUNNER = textwrap.dedent(
    """
    import importlib.abc, json, sys
    BLOCKED = {"torch", "torchvision", "matplotlib"}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    from finegrain.cli import main
    try:
        status = main(json.loads(sys.argv[1]))
    except SystemExit as exc:
        status = exc.code
    loaded = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
    print("LOADED", json.dumps(loaded))
    sys.exit(status)
    """
)


def light(*argv: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(list(argv))],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def _loaded(result: subprocess.CompletedProcess) -> list[str]:
    line = next(x for x in result.stdout.splitlines() if x.startswith("LOADED "))
    return json.loads(line.removeprefix("LOADED "))


REPORTS = [
    ("r1", "FINDINGS: Large right pleural effusion. Mild pulmonary edema."),
    ("r2", "IMPRESSION: Small left pleural effusion, improving. No edema."),
    ("r3", "IMPRESSION: Severe pulmonary edema, worsening."),
    ("r4", "FINDINGS: Trace pleural effusion. No pneumothorax."),
]


@pytest.mark.slow
def test_label_index_and_evaluate_run_without_torch(tmp_path):
    reports = tmp_path / "reports.csv"
    pd.DataFrame(REPORTS, columns=["id", "report"]).to_csv(reports, index=False)
    result = light("label", str(reports), "-o", str(tmp_path / "labels.csv"), "--no-progress")
    assert result.returncode == 0, result.stderr
    labels = pd.read_csv(tmp_path / "labels.csv", dtype=str)
    assert labels.set_index("id").loc["r1", "Pleural Effusion subcategory"] == "typical"
    assert labels.set_index("id").loc["r2", "Pleural Effusion subcategory"] == "atypical"
    assert _loaded(result) == []

    # a phantom, its index, and predictions evaluated against the index's labels
    root = tmp_path / "phantom"
    for argv in (
        ("phantom", str(root), "--studies", "40", "--size", "32", "--no-progress"),
        ("index", "--mimic", str(root), "-o", str(tmp_path / "index.csv"), "--no-progress"),
    ):
        result = light(*argv)
        assert result.returncode == 0, result.stderr
        assert _loaded(result) == []
    index = pd.read_csv(tmp_path / "index.csv", dtype=str)
    observation = "Pleural Effusion"
    scores = pd.DataFrame(
        {
            "image_id": index["image_id"],
            "score": (pd.to_numeric(index[observation], errors="coerce").fillna(0) + 1) / 3,
        }
    )
    scores.to_csv(tmp_path / "scores.csv", index=False)
    result = light(
        "evaluate",
        str(tmp_path / "scores.csv"),
        "--labels",
        str(tmp_path / "index.csv"),
        "--observation",
        observation,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.rpartition("LOADED")[0])["auc"] == 1.0
    assert _loaded(result) == []


@pytest.mark.parametrize("argv", [("benchmark", "--out", "x"), ("train", "--help")])
def test_a_command_of_the_train_extra_names_the_install(argv, tmp_path):
    result = light(*argv, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert lines[0].startswith(f"finegrain {argv[0]}: error: this command needs torch")
    assert "pip install 'finegrain[train]'" in lines[0]


def test_the_top_level_help_marks_the_commands_of_the_train_extra():
    result = light("--help")
    assert result.returncode == 0
    assert "[needs finegrain[train]]" in result.stdout
    assert _loaded(result) == []


def test_the_light_modules_import_without_torch():
    code = RUNNER.split("from finegrain.cli import main")[0] + textwrap.dedent(
        """
        import finegrain, finegrain.reports, finegrain.division, finegrain.metrics
        import finegrain.evaluate, finegrain.data.index, finegrain.data.phantom
        from finegrain.metrics import auc_fg
        assert auc_fg(["atypical", "typical"], [0.2, 0.8]) == 1.0
        assert finegrain.label_report("Small effusion.")["Pleural Effusion"].subcategory
        print(sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
