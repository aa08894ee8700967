"""End to end: a tiny benchmark grid on the tiny phantom (real index, cache and training), the
best-checkpoint selection, the outputs, resuming after an interruption, and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from finegrain.experiment.launchers import StopBenchmark
from finegrain.experiment.runner import BenchmarkData, DataSource, run_benchmark
from finegrain.experiment.selection import select_iteration
from helpers import TINY_GRID as TINY
from helpers import TINY_GRID_METHODS as METHODS
from helpers import grid_run


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> BenchmarkData:
    """A 32 px phantom of 150 training studies and 60 per evaluation split (validate and test both hold
    atypical and typical Edema positives), indexed and cached by the benchmark's own step."""
    from finegrain.data.phantom import make_phantom
    from finegrain.experiment.runner import prepare_data

    out = tmp_path_factory.mktemp("bench-data")
    make_phantom(out / "phantom", studies=150, size=32, seed=0, eval_studies=60)
    return prepare_data(DataSource(mimic=out / "phantom"), out, TINY, progress=False)


def _source(data: BenchmarkData) -> DataSource:
    return DataSource(index=data.index, cache=data.cache)


def test_tiny_grid_end_to_end(tiny_data, tmp_path, monkeypatch):
    # data given by paths relative to the working directory, as a user typing them would
    monkeypatch.chdir(tiny_data.index.parent.parent)
    source = DataSource(
        index=Path(os.path.relpath(tiny_data.index)), cache=Path(os.path.relpath(tiny_data.cache))
    )
    result = run_benchmark(tmp_path, TINY, source, methods=METHODS, progress=False)
    runs = sorted(
        p.relative_to(tmp_path / "runs").as_posix() for p in tmp_path.glob("runs/*/*/*/*")
    )
    assert len({r.split("/")[0] for r in runs}) == 1  # one settings group: the preset's
    assert [r.split("/", 1)[1] for r in runs] == [
        "Edema/pu-rm-tau0.3/seed0",
        "Edema/pu-rm-tau0.3/seed1",
        "Edema/u-ones/seed0",
        "Edema/u-ones/seed1",
    ]
    assert len(result.grid.trained) == 4
    for name in ("results.csv", "summary.md", "summary.tex", "report.html", "benchmark.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    results = pd.read_csv(tmp_path / "results.csv")
    assert set(results["split"]) == {"validate", "test"}
    assert sorted(set(results["iteration"])) == [2, 4]
    # best-checkpoint selection: recomputed from each run's own metrics.jsonl
    for sel in result.outputs.selections:
        metrics = pd.read_json(sel.directory / "metrics.jsonl", lines=True)
        val = metrics[metrics["split"] == "validate"].dropna(subset=["auc_fg"])
        assert len(val) == 2  # both checkpoints have a defined validation AUC^FG
        best = val["auc_fg"].max()
        assert sel.iteration == val.loc[val["auc_fg"] == best, "iteration"].min()
        assert sel.iteration == select_iteration(metrics)
        rows = results[
            (results["method"] == sel.spec.method)
            & (results["seed"] == sel.spec.seed)
            & results["selected"]
        ]
        assert set(rows["iteration"]) == {sel.iteration}
    md = (tmp_path / "summary.md").read_text()
    assert "| U-Ones |" in md and "| PU-RM |" in md
    assert "U-Zeros" not in md  # --methods replaced the table's methods
    # CAMs of U-Ones vs PU-RM, computed once for the figure and the table, and nothing failed
    assert (tmp_path / "figures" / "cam-edema.png").is_file()
    assert [n for n in result.outputs.notes if "temperature scaling" not in n] == []
    # Figure 5, measured: the runs' index points into a phantom, so U-Ones and PU-RM CAMs are
    # scored against its true lesion masks on the same test cases
    loc = pd.read_csv(tmp_path / "localisation.csv")
    pairs = set(zip(loc["method"], loc["seed"], strict=True))
    assert pairs == {(m, s) for m in METHODS for s in (0, 1)}
    assert loc.groupby(["method", "seed"])["group"].apply(set).map(len).eq(3).all()
    negatives, typical = loc[loc["group"] == "negative"], loc[loc["group"] == "typical"]
    assert (negatives["mask_area"] == 0).all()  # a negative has no lesion
    assert ((typical["mask_area"] > 0) & (typical["mask_area"] < 1)).all()
    assert typical["energy_inside"].between(0, 1).all()
    assert loc["cases"].gt(0).all() and loc["probability"].between(0, 1).all()
    assert "Figure 5, measured" in md
    assert set(loc["variant"]) == {"u-ones", "pu-rm-tau0.3"}  # keyed by the run's identity
    page = (tmp_path / "report.html").read_text()
    # learning curves, score distributions, ROC, the CAMs against the true lesion, reliability
    assert page.count("data:image/png;base64,") == 5
    assert "Edema: reliability diagram" in page
    # calibration: each run's on test at its chosen checkpoint, the same numbers as its
    # predictions give, and results.csv's ECE and Brier at every checkpoint
    from finegrain.calibration import brier_score, expected_calibration_error
    from finegrain.experiment.aggregate import selected_predictions

    calib = pd.read_csv(tmp_path / "calibration.csv")
    assert len(calib) == 4 and set(calib["split"]) == {"test"}
    for sel in result.outputs.selections:
        test = selected_predictions(sel, "test")
        test = test[test["label"].isin([0, 1])]
        y, p = test["label"].to_numpy(dtype=int), test["score"].to_numpy(dtype=float)
        row = calib[(calib["method"] == sel.spec.method) & (calib["seed"] == sel.spec.seed)]
        assert row["ece"].item() == pytest.approx(expected_calibration_error(y, p))
        assert row["brier"].item() == pytest.approx(brier_score(y, p))
        assert row["ece_low"].item() <= row["ece_high"].item()
        assert not row["temperature"].item() <= 0  # NaN: not fitted (worse than chance)
        chosen = results[(results["method"] == sel.spec.method) & (results["seed"] ==
                         sel.spec.seed) & results["selected"] & (results["split"] == "test")]  # fmt: skip
        assert chosen["ece"].item() == pytest.approx(row["ece"].item())
    assert results["ece"].notna().all() and results["brier"].between(0, 1).all()
    assert "Calibration of the positive probability" in md
    # the tier reading: every test case of every seed in one row of each 3 × 3 table
    tiers = pd.read_csv(tmp_path / "tiers.csv")
    assert set(tiers["against"]) == {"mined label", "image truth"}
    cells = ["negative", "atypical positive", "typical positive"]
    assert (tiers[cells].sum(axis=1) == tiers["n"]).all()
    truth_rows = tiers[tiers["against"] == "image truth"]
    runs = calib.groupby("variant").size()
    scored = len(selected_predictions(result.outputs.selections[0], "test"))
    assert truth_rows.groupby("variant")["n"].sum().to_dict() == (runs * scored).to_dict()
    # a tiny untrained run can rank worse than chance: then no temperature fits, and it says so;
    # its tiers are still read (the cuts are rank-based: the model's own probability reads the
    # same tiers as any increasing map of it)
    unfitted = calib["temperature"].isna().sum()
    said = [n for n in result.outputs.notes if "temperature scaling not fitted" in n]
    assert len(said) == unfitted
    assert all("its tiers read the model's own probability" in n for n in said)
    assert "Edema: predicted tier against the image truth" in md


def test_interrupted_benchmark_resumes_without_redoing_runs(tiny_data, tmp_path):
    def stop_after_first(spec, run_dir):
        if any(tmp_path.glob("runs/*/*/*/*/done")):
            raise StopBenchmark("injected stop after the first run")

    first = run_benchmark(
        tmp_path,
        TINY.replace(seeds=1),
        _source(tiny_data),
        methods=METHODS,
        progress=False,
        before_run=stop_after_first,
    )
    assert [s.label for s in first.grid.trained] == ["Edema/u-ones/seed0"]
    assert "1 of 2 runs not finished" in (tmp_path / "summary.md").read_text()
    finished = grid_run(tmp_path / "runs", "Edema/u-ones/seed0")
    snapshot = {
        p: (p.stat().st_mtime_ns, p.read_bytes()) for p in finished.rglob("*") if p.is_file()
    }
    second = run_benchmark(
        tmp_path, TINY.replace(seeds=1), _source(tiny_data), methods=METHODS, progress=False
    )
    assert [s.label for s in second.grid.trained] == ["Edema/pu-rm-tau0.3/seed0"]
    assert [s.label for s in second.grid.skipped] == ["Edema/u-ones/seed0"]
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in finished.rglob("*") if p.is_file()}
    assert after == snapshot
    assert "not finished" not in (tmp_path / "summary.md").read_text()


def test_unfinished_run_resumes_from_its_checkpoint(tiny_data, tmp_path):
    from finegrain.experiment.grid import RunSpec, run_directory, train_config
    from finegrain.experiment.runner import _train_one

    spec = RunSpec("Edema", "u-ones", None, 0)
    run_dir = run_directory(spec, TINY.replace(seeds=1), tmp_path / "runs")
    # a run killed between its checkpoints at iterations 2 and 4: train it fully, then remove
    # what the kill would not have written (the last checkpoint and the done marker)
    _train_one(train_config(spec, TINY, tiny_data, run_dir), False, 1)
    checkpoints = sorted(run_dir.glob("checkpoints/*.pt"))
    assert len(checkpoints) == 2
    checkpoints[-1].unlink()
    (run_dir / "done").unlink()
    stamp = checkpoints[0].stat().st_mtime_ns
    result = run_benchmark(
        tmp_path, TINY.replace(seeds=1), _source(tiny_data), methods=["u-ones"], progress=False
    )
    assert [s.label for s in result.grid.trained] == ["Edema/u-ones/seed0"]
    assert checkpoints[0].stat().st_mtime_ns == stamp  # resumed, not retrained from scratch
    assert checkpoints[-1].exists()
    metrics = pd.read_json(run_dir / "metrics.jsonl", lines=True)
    assert sorted(set(metrics["iteration"])) == [2, 4]


def test_other_settings_into_the_same_folder_are_refused_and_its_report_kept(tiny_data, tmp_path):
    """One folder holds one benchmark: another request into it stops naming what differs,
    before anything trains or its report is replaced (they used to train beside the old runs
    and replace results.csv, summary.md, report.html and benchmark.json without a word, and
    --report-only could no longer rebuild the first grid); in a folder of its own it trains."""
    from finegrain.errors import FinegrainError

    preset = TINY.replace(seeds=1)
    run_benchmark(tmp_path, preset, _source(tiny_data), methods=["u-ones"], progress=False)
    first = grid_run(tmp_path / "runs", "Edema/u-ones/seed0")
    kept = ("results.csv", "summary.md", "report.html", "benchmark.json")
    snapshot = {p: p.read_bytes() for p in (tmp_path / n for n in kept)}
    snapshot |= {p: p.read_bytes() for p in first.rglob("*") if p.is_file() and p.suffix != ".lock"}
    for other, named in (
        (dict(preset=preset.replace(iterations=6)), "iterations 4 -> 6"),
        (dict(preset=preset.replace(seeds=2)), "seeds 1 -> 2"),
        (dict(preset=preset, methods=["u-ones", "pu-rm"]), "methods u-ones -> u-ones,pu-rm"),
        (dict(preset=preset, axes={"lr": [0.001, 0.01]}), "axes default -> lr=0.001,0.01"),
    ):
        request = {"methods": ["u-ones"], **other}
        with pytest.raises(FinegrainError, match="holds a benchmark of other settings") as exc:
            run_benchmark(tmp_path, source=_source(tiny_data), progress=False, **request)
        assert named in str(exc.value) and "out" in str(exc.value)
        assert sorted(tmp_path.glob("runs/*/Edema/u-ones/seed0")) == [first]
        assert {p: p.read_bytes() for p in snapshot} == snapshot
    # in a folder of its own it trains, and each folder's --report-only rebuilds its own grid
    other = tmp_path / "iterations-6"
    run_benchmark(
        other, preset.replace(iterations=6), _source(tiny_data), methods=["u-ones"],
        progress=False,
    )  # fmt: skip
    assert (
        json.loads((grid_run(other / "runs", "Edema/u-ones/seed0") / "config.json").read_text())[
            "iterations"
        ]
        == 6
    )
    # runtime settings (device, worker counts, jobs) may differ: the finished run is reused
    again = run_benchmark(
        tmp_path,
        preset.replace(num_workers=1, jobs=2, threads=2),
        _source(tiny_data),
        methods=["u-ones"],
        device="cpu",
        progress=False,
    )
    assert [s.label for s in again.grid.skipped] == ["Edema/u-ones/seed0"]
    for folder, shown in ((tmp_path, "4 iterations"), (other, "6 iterations")):
        run_benchmark(folder, preset, _source(tiny_data), progress=False, report_only=True)
        page = (folder / "report.html").read_text()
        assert f"{shown} (checkpoint every 2)" in page, folder
    # the same request on other data (another index table) is refused, naming it
    moved = tmp_path / "moved.csv"
    moved.write_bytes(Path(tiny_data.index).read_bytes())
    with pytest.raises(FinegrainError, match=r"source index:.* -> index:.*moved\.csv"):
        run_benchmark(
            tmp_path, preset, DataSource(index=moved, cache=tiny_data.cache), methods=["u-ones"]
        )


def test_cli_report_only_and_errors(tiny_data, tmp_path, capsys):
    from finegrain.cli import main

    out = tmp_path / "b"
    rc = main(
        [
            "benchmark",
            "--index",
            str(tiny_data.index),
            "--cache",
            str(tiny_data.cache),
            "--observations",
            "Edema",
            "--methods",
            "u-ignore",
            "--seeds",
            "1",
            "--iterations",
            "2",
            "--checkpoint-every",
            "2",
            "--batch-size",
            "8",
            "--jobs",
            "1",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| U-Ignore |" in printed and "1 runs trained" in printed
    stamp = (grid_run(out / "runs", "Edema/u-ignore/seed0") / "done").stat().st_mtime_ns
    rc = main(
        [
            "benchmark",
            "--report-only",
            "--out",
            str(out),
            "--observations",
            "Edema",
            "--methods",
            "u-ignore",
            "--seeds",
            "1",
            "--no-progress",
        ]
    )
    assert rc == 0
    assert "0 runs trained, 1 already finished" in capsys.readouterr().out
    assert (grid_run(out / "runs", "Edema/u-ignore/seed0") / "done").stat().st_mtime_ns == stamp
    rerun = ["benchmark", "--index", str(tiny_data.index), "--cache", str(tiny_data.cache)]
    rerun += ["--observations", "Edema", "--methods", "u-ignore", "--seeds", "1"]
    rerun += ["--iterations", "3", "--checkpoint-every", "2", "--batch-size", "8", "--no-progress"]
    # other settings into the same folder: one line naming what differs, nothing trained
    assert main([*rerun, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "--iterations 2 -> 3" in err and "own --out" in err and "--report-only" in err
    assert len(list(out.glob("runs/*/Edema/u-ignore/seed0/done"))) == 1
    with pytest.raises(SystemExit):
        main(["benchmark", "--index", "x.csv", "--out", str(out)])  # --cache missing
    with pytest.raises(SystemExit):
        main(["benchmark", "--tau", "1.5", "--out", str(out)])


def test_cli_weights_reach_the_model(tiny_data, tmp_path, capsys):
    from finegrain.cli import main

    missing = tmp_path / "no-such-weights.pth"
    args = ["benchmark", "--index", str(tiny_data.index), "--cache", str(tiny_data.cache)]
    args += ["--observations", "Edema", "--methods", "u-ones", "--seeds", "1"]
    args += ["--iterations", "2", "--checkpoint-every", "1", "--image-size", "32", "--no-progress"]
    args += ["--model", "resnet18", "--weights", str(missing), "--out", str(tmp_path / "b")]
    assert main(args) == 2
    assert f"weights file not found: {missing}" in capsys.readouterr().err


def test_cli_benchmark_accepts_every_training_method(tiny_data, tmp_path, capsys):
    """``finegrain train`` accepts u-ones-ls, so the benchmark does too (methods come from
    train.methods.METHODS, display names included)."""
    from finegrain.cli import main

    args = ["benchmark", "--index", str(tiny_data.index), "--cache", str(tiny_data.cache)]
    args += ["--observations", "Edema", "--methods", "u-ones-ls", "--seeds", "1"]
    args += ["--iterations", "2", "--checkpoint-every", "2", "--batch-size", "8"]
    assert main([*args, "--no-progress", "--out", str(tmp_path / "b")]) == 0
    assert "| U-Ones + LS |" in capsys.readouterr().out
    assert (grid_run(tmp_path / "b/runs", "Edema/u-ones-ls/seed0") / "done").is_file()  # no τ


def test_runs_of_the_v02_layout_migrate_once_and_report_the_same(tiny_data, tmp_path):
    from finegrain.cli import main
    from finegrain.experiment.grid import migrate_runs

    preset = TINY.replace(seeds=1)
    run_benchmark(tmp_path, preset, _source(tiny_data), methods=METHODS, progress=False)
    results = (tmp_path / "results.csv").read_bytes()
    new = sorted(tmp_path.glob("runs/*/Edema/*/seed0"))
    assert len(new) == 2
    for run in new:  # back to finegrain 0.2's runs/<observation>/<variant>/seed<k>
        old = tmp_path / "runs" / "Edema" / run.parent.name / "seed0"
        old.parent.mkdir(parents=True, exist_ok=True)
        run.rename(old)
    assert migrate_runs(tmp_path / "nothing-here") == []
    assert main(["benchmark", "--out", str(tmp_path), "--migrate-runs"]) == 0
    assert sorted(tmp_path.glob("runs/*/Edema/*/seed0")) == new
    assert not (tmp_path / "runs" / "Edema").exists()
    assert migrate_runs(tmp_path) == []  # once
    run_benchmark(tmp_path, preset, _source(tiny_data), methods=METHODS, report_only=True)
    assert (tmp_path / "results.csv").read_bytes() == results


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--lr", "-1"], "error: --lr must be a number > 0, got -1.0"),
        (["--batch-size", "0"], "error: --batch-size must be an integer >= 1, got 0"),
        (["--axis", "lr=0.001,-1"], "grid axis 'lr': lr must be a number > 0, got -1"),
        (
            ["--lr", "0.01", "--axis", "lr=0.1,0.2"],
            "--lr 0.01 and --axis lr=0.1,0.2 both set lr: give one of them",
        ),
    ],
)
def test_cli_benchmark_checks_training_options_by_the_fields_rules(extra, message, tmp_path,
                                                                   capsys):  # fmt: skip
    """The benchmark's training options are TrainConfig's (the rules of ``finegrain train``);
    nothing is made or trained when one is refused."""
    from finegrain.cli import main

    out = tmp_path / "b"
    try:
        status = main(["benchmark", "--out", str(out), "--no-progress", *extra])
    except SystemExit as exc:  # an argument error (argparse's exit)
        status = exc.code
    assert status == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_runs_recorded_before_tau_became_the_methods_option_keep_their_identity(
    tiny_data, tmp_path
):
    """A folder written by finegrain before 0.3.0 (config.json with a top-level ``tau`` for
    every method, benchmark.json with the preset's ``tau``) keeps its runs: the same request
    reuses them all, and the report is byte-identical."""
    preset = TINY.replace(seeds=1)
    run_benchmark(tmp_path, preset, _source(tiny_data), methods=METHODS, progress=False)
    results = (tmp_path / "results.csv").read_bytes()
    for path in tmp_path.glob("runs/*/Edema/*/seed0/config.json"):
        config = json.loads(path.read_text())
        options = config["method_options"]
        config["tau"] = options.pop("tau", 0.3)  # recorded as before: tau for every method
        assert "tau" not in options
        path.write_text(json.dumps(config))
    request = json.loads((tmp_path / "benchmark.json").read_text())
    request["preset"]["tau"] = request.pop("tau") or 0.3
    (tmp_path / "benchmark.json").write_text(json.dumps(request))
    again = run_benchmark(tmp_path, preset, _source(tiny_data), methods=METHODS, progress=False)
    assert again.grid.trained == [] and len(again.grid.skipped) == 2
    assert (tmp_path / "results.csv").read_bytes() == results
    report = run_benchmark(tmp_path, preset, _source(tiny_data), report_only=True, progress=False)
    assert report.outputs.notes == [] and (tmp_path / "results.csv").read_bytes() == results


# --------------------------------------------- one folder, several requests (issue 29, 4/5/9/11)


def _tiny_cli(data: BenchmarkData, out: Path, *extra: str) -> list[str]:
    """``finegrain benchmark`` on the tiny data: Edema, one seed, 2 iterations."""
    args = ["benchmark", "--index", str(data.index), "--cache", str(data.cache)]
    args += ["--observations", "Edema", "--seeds", "1", "--iterations", "2"]
    args += ["--checkpoint-every", "2", "--batch-size", "8", "--jobs", "1", "--no-progress"]
    return [*args, *extra, "--out", str(out)]


def test_printed_paired_differences_name_the_axis(tiny_data, tmp_path, capsys):
    """With --axis lr=..., two printed lines read the same "PU-RM − U-Ones (Edema, validate)"
    with different Δ."""
    from finegrain.cli import main

    args = _tiny_cli(tiny_data, tmp_path / "b", "--methods", "u-ones,pu-rm")
    assert main([*args, "--axis", "lr=0.001,0.01"]) == 0
    printed = capsys.readouterr().out
    lines = [line.strip() for line in printed.splitlines() if line.startswith("  PU-RM − ")]
    heads = [line.split(": ", 1)[0] for line in lines]
    assert heads == [
        f"PU-RM − U-Ones (Edema, {split}, lr={lr})"
        for split in ("validate", "test")
        for lr in ("0.001", "0.01")
    ]
    paired = pd.read_csv(tmp_path / "b" / "paired-differences.csv")
    assert sorted(paired["settings"]) == ["lr=0.001", "lr=0.001", "lr=0.01", "lr=0.01"]


@pytest.mark.parametrize("selection", [[], ["--selection", "study"]])
def test_report_only_without_a_benchmark_there_fails(selection, tmp_path, capsys):
    """--report-only on a missing or mistyped folder made it, wrote an all-'–' report and
    exited 0."""
    from finegrain.cli import main

    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (tmp_path / "typo", empty):
        status = main(["benchmark", *selection, "--report-only", "--out", str(out),
                       "--no-progress"])  # fmt: skip
        assert status == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"no benchmark in {out}" in err
    assert not (tmp_path / "typo").exists() and list(empty.iterdir()) == []


def test_a_second_benchmark_into_a_folder_in_use_is_one_line(tiny_data, tmp_path, capsys):
    """Two benchmarks into one folder at once: the second stops before anything with one line
    (exit 2) naming the folder; it used to go on, its runs' lock errors logged with tracebacks."""
    from finegrain.cli import main

    out = tmp_path / "b"
    second = {}

    def start_another(spec, run_dir) -> None:  # the first benchmark is training into out
        if not second:
            capsys.readouterr()  # the first benchmark's own output
            second["status"] = main(_tiny_cli(tiny_data, out, "--methods", "u-ones"))
            second["err"] = capsys.readouterr().err

    from finegrain.experiment.presets import get_preset

    preset = get_preset("demo").replace(  # the request of _tiny_cli's options
        observations=("Edema",), seeds=1, iterations=2, checkpoint_every=2, batch_size=8
    )
    first = run_benchmark(
        out,
        preset,
        _source(tiny_data),
        methods=["u-ones"],
        progress=False,
        before_run=start_another,
    )
    assert [s.label for s in first.grid.trained] == ["Edema/u-ones/seed0"]
    assert second["status"] == 2
    err = second["err"].strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"another benchmark (process {os.getpid()}) is training into {out}" in err
    assert "choose another --out" in err
    # the lock goes with the benchmark: the same command again runs (nothing left to train)
    assert main(_tiny_cli(tiny_data, out, "--methods", "u-ones")) == 0
    assert "0 runs trained, 1 already finished" in capsys.readouterr().out
