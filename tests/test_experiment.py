"""Benchmark pieces over synthetic run directories: selection, aggregation, tables, figures and
the HTML report (no training involved)."""

from __future__ import annotations

import base64
import json
import pickle
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from finegrain.evaluate import score_predictions
from finegrain.experiment.aggregate import (
    fg_cases,
    results_table,
    seed_mean_ci,
    summary_table,
)
from finegrain.experiment.grid import RunSpec, display_name, grid_for
from finegrain.experiment.outputs import write_outputs
from finegrain.experiment.plan import Plan, plan_benchmark, plan_runs
from finegrain.experiment.presets import DEMO, PAPER, get_preset
from finegrain.experiment.selection import find_runs, read_metrics, select_iteration, select_run
from finegrain.experiment.tables import mean_std, to_latex, to_markdown
from finegrain.io import append_jsonl, atomic_write_csv, atomic_write_json, atomic_write_text
from finegrain.metrics import auc_fg, bootstrap_ci, delong_test

ITERATIONS = (10, 20, 30)


def make_run(runs_root, spec: RunSpec, *, quality: float, n: int = 60, done: bool = True):
    """A run directory per the contract, with predictions whose AUC^FG grows with ``quality``
    and varies by iteration; metrics.jsonl is computed from the predictions."""
    from finegrain.experiment.grid import run_directory

    rng = np.random.default_rng([zlib.crc32(spec.label.encode()), int(quality * 1000)])
    run_dir = run_directory(spec, DEMO, runs_root)
    atomic_write_json(
        run_dir / "config.json",
        {
            "observation": spec.observation,
            "method": spec.method,
            "tau": spec.tau if spec.tau is not None else 0.3,  # recorded as before 0.3.0
            "seed": spec.seed,
            "versions": {"python": "3"},
        },
    )
    for split, offset in (("validate", 0), ("test", 1000)):
        label = np.array([1] * (n // 2) + [0] * (n // 4) + [-1] * (n - n // 2 - n // 4))
        sub = np.array(
            ["atypical" if i % 2 else "typical" for i in range(n // 2)]
            + [""] * (n // 4)
            + ["typical"] * (n - n // 2 - n // 4)
        )
        frames = []
        for it in ITERATIONS:
            signal = quality * (1 + rng.normal(0, 0.5)) * (sub == "typical") + 0.6 * (label == 1)
            score = 1 / (1 + np.exp(-(signal + rng.normal(0, 1, n))))
            frames.append(
                pd.DataFrame(
                    {
                        "image_id": [f"img{offset + i}" for i in range(n)],
                        "iteration": it,
                        "label": label,
                        "subcategory": sub,
                        "score": score,
                    }
                )
            )
            m = score_predictions(frames[-1].replace({"subcategory": {"": None}}))
            append_jsonl(
                run_dir / "metrics.jsonl",
                {"iteration": it, "split": split, **m, "train_loss": 0.5, "elapsed_s": 1.0},
            )
        atomic_write_csv(run_dir / f"predictions-{split}.csv", pd.concat(frames))
    if done:
        atomic_write_text(run_dir / "done", "")
    return run_dir


def _best(run_dir, split="validate"):
    """Independent re-computation of the protocol: best validation AUC^FG, ties -> earliest."""
    pred = pd.read_csv(run_dir / f"predictions-{split}.csv", keep_default_na=False)
    best_it, best = None, -1.0
    for it in ITERATIONS:
        p = pred[(pred["iteration"] == it) & (pred["label"] == 1) & (pred["subcategory"] != "")]
        value = roc_auc_score(p["subcategory"] == "typical", p["score"])
        if value > best:
            best_it, best = it, value
    return best_it, best


# ---------------------------------------------------------------------------------- selection


def test_select_iteration_known_answers():
    m = pd.DataFrame(
        {
            "iteration": [10, 20, 30, 40, 10, 20],
            "split": ["validate"] * 4 + ["test"] * 2,
            "auc_fg": [0.6, 0.8, None, 0.8, 0.99, 0.1],
        }
    )
    assert select_iteration(m) == 20  # tie 0.8 at 20 and 40 -> earliest; test split ignored
    assert select_iteration(m, split="test") == 10
    m2 = m.assign(auc_fg=[None] * 6)
    assert select_iteration(m2) is None
    with pytest.raises(ValueError, match="auc_fg"):
        select_iteration(m.drop(columns="auc_fg"))


def test_read_metrics_keeps_last_line_of_reevaluated_checkpoint(tmp_path):
    for rec in (
        {"iteration": 10, "split": "validate", "auc_fg": 0.5},
        {"iteration": 20, "split": "validate", "auc_fg": 0.7},
        {"iteration": 20, "split": "validate", "auc_fg": 0.6},
    ):
        append_jsonl(tmp_path / "metrics.jsonl", rec)
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"iteration": 30, "split": "vali')  # killed writer
    m = read_metrics(tmp_path)
    assert m["iteration"].tolist() == [10, 20]
    assert m.loc[m["iteration"] == 20, "auc_fg"].item() == 0.6
    assert {"auc", "n_atypical"} <= set(m.columns)


def test_select_run_matches_independent_protocol(tmp_path):
    spec = RunSpec("Edema", "pu-rm", 0.3, 1)
    run_dir = make_run(tmp_path, spec, quality=1.0)
    sel = select_run(run_dir)
    assert sel.spec == spec
    it, best = _best(run_dir)
    assert sel.iteration == it
    assert sel.row("validate")["auc_fg"] == pytest.approx(best)
    assert sel.row("test")["iteration"] == it


def test_find_runs_separates_finished(tmp_path):
    a = make_run(tmp_path, RunSpec("Edema", "u-ones", None, 0), quality=1.0)
    b = make_run(tmp_path, RunSpec("Edema", "u-ones", None, 1), quality=1.0, done=False)
    assert find_runs(tmp_path) == ([a], [b])


# --------------------------------------------------------------------------------------- grid


def test_grid_dedupes_shared_runs_and_puts_seed0_first():
    specs = grid_for(["table2", "figure4"], observations=["edema"], seeds=2, taus=[0.3, 0.5])
    labels = [s.label for s in specs]
    assert len(labels) == len(set(labels))
    # table2's pu-rm at τ=0.3 is figure4's τ=0.3 point: listed once
    assert labels.count("Edema/pu-rm-tau0.3/seed0") == 1
    assert "Edema/pu-rm-tau0.5/seed1" in labels
    assert {s.seed for s in specs[: len(specs) // 2]} == {0}
    spec = RunSpec("Edema", "u-ones", None, 0)
    assert spec.directory("r", "1a2b3c4d").as_posix() == "r/1a2b3c4d/Edema/u-ones/seed0"
    with pytest.raises(ValueError, match="table9"):
        grid_for(["table9"], observations=["Edema"], seeds=1)
    with pytest.raises(ValueError, match="unknown observation"):
        grid_for(["table2"], observations=["Edemaa"], seeds=1)


def test_presets():
    paper = {k: PAPER.setting(k) for k in ("model", "pretrained", "iterations", "lr")}
    assert paper == {"model": "densenet121", "pretrained": True, "iterations": 50000, "lr": 1e-4}
    assert (PAPER.setting("checkpoint_every"), PAPER.setting("batch_size")) == (10000, 32)
    assert (PAPER.image_size, PAPER.seeds) == (224, 3)
    assert PAPER.observations == ("Consolidation", "Edema") and PAPER.views == ("AP", "PA")
    assert get_preset("demo") is DEMO
    assert DEMO.replace(seeds=5, lr=None).seeds == 5
    with pytest.raises(ValueError, match="quick"):
        get_preset("quick")


def test_a_preset_is_a_training_template():
    from finegrain.experiment.grid import train_config
    from finegrain.experiment.runner import BenchmarkData

    changed = DEMO.replace(iterations=60, lr=0.01, seeds=1)
    assert changed.seeds == 1 and changed.train["iterations"] == 60
    assert DEMO.train["iterations"] == 300  # the original is untouched
    assert (changed.iterations, changed.model, changed.amp) == (60, "densenet-tiny", True)
    with pytest.raises(AttributeError, match="iterationz"):
        changed.iterationz  # noqa: B018
    assert pickle.loads(pickle.dumps(changed)) == changed  # launchers ship presets
    spec = RunSpec("Edema", "pu-rm", 0.1, 1)
    config = train_config(spec, changed, BenchmarkData("i.csv", "c"), "run", device="cpu")
    assert (config.iterations, config.lr, config.model, config.num_workers) == (
        60,
        0.01,
        "densenet-tiny",
        0,
    )
    assert (config.observation, config.method, config.seed) == ("Edema", "pu-rm", 1)
    # τ is the method's option, set where the cell's is not the method's own
    assert config.method_options == {"tau": 0.1} and config.training_method().tau == 0.1
    default = train_config(RunSpec("Edema", "pu-rm", 0.3, 1), changed, None, "run")
    assert default.method_options == {} and default.training_method().tau == 0.3
    assert config.device == "cpu" and config.eval_splits == ("validate", "test")
    assert config.amp is True  # left out of the template: TrainConfig's default
    with pytest.raises(ValueError, match="no field"):
        DEMO.replace(train={"iterationz": 1})
    with pytest.raises(ValueError, match="set by the grid"):
        DEMO.replace(train={"seed": 3})
    with pytest.raises(ValueError, match="neither a preset nor a TrainConfig field"):
        DEMO.replace(iterationz=1)


def test_grid_methods_come_from_the_training_methods():
    from finegrain.train.methods import METHODS

    assert {"p-rm", "u-rm", "pu-rm", "pce"} == {m for m in METHODS if METHODS[m].uses_tau}
    assert display_name("pu-rm") == "PU-RM" and display_name("p-rm") == "U-Ignore + P-RM"
    specs = grid_for(["table2"], observations=["Edema"], seeds=1, methods=["u-ones-ls", "pu-rm"])
    assert [s.label for s in specs] == ["Edema/u-ones-ls/seed0", "Edema/pu-rm-tau0.3/seed0"]
    with pytest.raises(ValueError, match="unknown method 'u-twos'"):
        grid_for(["table2"], observations=["Edema"], seeds=1, methods=["u-twos"])


# -------------------------------------------------------------------------------- aggregation


@pytest.fixture(scope="module")
def synthetic_benchmark(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    preset = DEMO.replace(selections=("table2", "figure4"), seeds=2, observations=("Edema",))
    specs = grid_for(preset.selections, observations=preset.observations, seeds=2, taus=[0.3, 0.6])
    quality = {"u-ignore": 0.5, "u-zeros": 0.2, "u-ones": 0.8, "pu-rm": 1.6}
    for spec in specs:
        if spec.label == "Edema/u-zeros/seed1":
            continue  # an unfinished run: must be reported, not silently dropped
        q = quality[spec.method] + (0.5 if spec.tau == 0.6 else 0.0)
        make_run(out / "runs", spec, quality=q)
    plan = plan_benchmark(preset, out / "runs", taus=[0.3, 0.6])
    assert plan.specs == specs
    outputs = write_outputs(out, plan, preset=preset, config={"x": 1})
    return out, specs, outputs


def test_results_csv_rows_and_selected_flags(synthetic_benchmark):
    out, specs, outputs = synthetic_benchmark
    results = pd.read_csv(out / "results.csv")
    finished = len(specs) - 1
    assert len(results) == finished * len(ITERATIONS) * 2
    assert list(results.columns[:6]) == [
        "observation",
        "method",
        "tau",
        "seed",
        "iteration",
        "split",
    ]
    chosen = results[results["selected"]]
    assert len(chosen) == finished * 2  # one checkpoint per run, both splits
    for sel in outputs.selections:
        it, best = _best(sel.directory)
        rows = chosen[
            (chosen["method"] == sel.spec.method)
            & (chosen["seed"] == sel.spec.seed)
            & ((chosen["tau"].isna()) if sel.spec.tau is None else (chosen["tau"] == sel.spec.tau))
        ]
        assert set(rows["iteration"]) == {it}
        assert rows.loc[rows["split"] == "validate", "auc_fg"].item() == pytest.approx(best)


def test_summary_mean_std_and_markdown(synthetic_benchmark):
    out, _, outputs = synthetic_benchmark
    values = [_best(s.directory)[1] for s in outputs.selections if s.spec.method == "u-ones"]
    expected = mean_std(float(np.mean(values)), float(np.std(values, ddof=1)))
    md = (out / "summary.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| U-Ones |"))
    assert row == f"| U-Ones | {expected} |"
    assert re.search(r"\| U-Zeros \| \d\.\d{4} \|", md)  # one finished seed: no std
    assert "1 of" in md and "Edema/u-zeros/seed1" in md  # the unfinished run is reported
    assert "Table 2" in md and "Figure 4" in md and "PU-RM τ = 0.6" in md
    tex = (out / "summary.tex").read_text()
    assert r"\begin{tabular}" in tex and r"$\pm$" in tex and "PU-RM" in tex


def test_split_statistics_ci_and_delong(synthetic_benchmark):
    _, _, outputs = synthetic_benchmark
    stats = outputs.stats
    row = stats[(stats["method"] == "pu-rm") & (stats["tau"] == 0.3)].iloc[0]
    pu = [s for s in outputs.selections if s.spec.method == "pu-rm" and s.spec.tau == 0.3]
    ref = [s for s in outputs.selections if s.spec.method == "u-ones"]

    def test_scores(sels):
        frames = [
            pd.read_csv(s.directory / "predictions-test.csv", keep_default_na=False).query(
                f"iteration == {s.iteration} and label == 1 and subcategory != ''"
            )
            for s in sorted(sels, key=lambda s: s.spec.seed)
        ]
        y = (frames[0]["subcategory"] == "typical").to_numpy(int)
        return y, np.mean([f["score"].to_numpy() for f in frames], axis=0)

    y, a = test_scores(pu)
    _, b = test_scores(ref)
    assert row["n_typical"] == y.sum() and row["n_atypical"] == (1 - y).sum()
    assert row["delong_p"] == pytest.approx(delong_test(y, a, b).p_value)
    assert row["ci_low"] < row["ci_high"]
    assert np.isnan(stats[stats["method"] == "u-ones"]["delong_p"]).all()
    md = (synthetic_benchmark[0] / "summary.md").read_text()
    assert "95% CI" in md and "p vs U-Ones" in md


def test_seed_mean_ci_reduces_to_bootstrap_ci():
    rng = np.random.default_rng(0)
    y = np.array([0] * 20 + [1] * 25)
    s = rng.random(45) + 0.3 * y
    one = bootstrap_ci(auc_fg, y, s, n_boot=300, seed=3)
    assert seed_mean_ci(y, s[:, None], n_boot=300, seed=3) == pytest.approx(one)
    assert seed_mean_ci(y, np.stack([s, s], axis=1), n_boot=300, seed=3) == pytest.approx(one)
    lo, hi = seed_mean_ci(y, np.stack([s, rng.random(45)], axis=1), n_boot=300, seed=3)
    assert lo < hi


def test_fg_cases_uses_positives_with_subcategory():
    frame = pd.DataFrame(
        {
            "label": [1, 1, 1, 0, -1],
            "subcategory": ["Atypical", "typical", None, None, "typical"],
            "score": [0.1, 0.2, 0.3, 0.4, 0.5],
        }
    )
    cases = fg_cases(frame)
    assert cases["score"].tolist() == [0.1, 0.2] and cases["subcategory"].tolist() == [
        "atypical",
        "typical",
    ]


def test_summary_table_std_is_sample_std():
    res = results_table([])
    assert res.empty and summary_table(res).empty
    res = pd.DataFrame(
        {
            "observation": "Edema",
            "method": "u-ones",
            "tau": None,
            "seed": [0, 1, 2],
            "iteration": 10,
            "split": "validate",
            "auc_fg": [0.6, 0.7, 0.8],
            "auc": [0.9, 0.9, None],
            "selected": True,
        }
    )
    s = summary_table(res).iloc[0]
    assert s["auc_fg_mean"] == pytest.approx(0.7) and s["auc_fg_std"] == pytest.approx(0.1)
    assert s["seeds"] == 3 and s["auc_mean"] == pytest.approx(0.9)
    # without a fine score of its own (or from before it) the fine score is the probability
    assert s["auc_fg_fine_mean"] == pytest.approx(0.7)
    s = summary_table(res.assign(auc_fg_fine=[0.5, 0.6, None])).iloc[0]
    assert s["auc_fg_fine_mean"] == pytest.approx((0.5 + 0.6 + 0.8) / 3)


# ------------------------------------------------------------------------------ figures, html


def test_figures_written_as_png_and_svg(synthetic_benchmark):
    out, _, _ = synthetic_benchmark
    for stem in ("tau-ablation", "scores-edema", "roc-edema"):
        png = out / "figures" / f"{stem}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<svg" in (out / "figures" / f"{stem}.svg").read_text()


def test_a_figure_stem_with_a_dot_keeps_it(tmp_path):
    """An axis value in a figure's name (``cam-edema-lr0.001``) is not a suffix: the report
    looked for that file after ``cam-edema-lr0.png`` was written."""
    import matplotlib.pyplot as plt

    from finegrain.experiment.plots import save_figure

    paths = save_figure(plt.figure(), tmp_path / "cam-edema-lr0.001")
    assert paths == {f: tmp_path / f"cam-edema-lr0.001.{f}" for f in ("png", "svg")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam-edema-lr0.001.png",
                                                          "cam-edema-lr0.001.svg"]  # fmt: skip


def test_report_is_self_contained(synthetic_benchmark):
    out, _, outputs = synthetic_benchmark
    page = (out / "report.html").read_text()
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # no external assets
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 5  # τ ablation, learning curves, score distributions, ROC, reliability
    assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    for table in outputs.tables:
        assert f'id="{table.key}"' in page
    assert "Edema/u-zeros/seed1" in page and '"x": 1' in page


def test_table_renderers_escape():
    from finegrain.experiment.tables import Table, to_html

    t = Table("k", "AUC^FG & co", ["Method", "A_b"], [["PU-RM", "0.5000 ± 0.0100"]], "τ < 1")
    assert "AUC$^{\\mathrm{FG}}$ \\& co" in to_latex(t) and "A\\_b" in to_latex(t)
    assert "| PU-RM | 0.5000 ± 0.0100 |" in to_markdown(t)
    assert "&amp; co" in to_html(t) and "&lt; 1" in to_html(t)


def test_config_json_mismatch_is_noted(tmp_path):
    spec = RunSpec("Edema", "u-ones", None, 0)
    run_dir = make_run(tmp_path / "runs", spec, quality=1.0)
    config = json.loads((run_dir / "config.json").read_text())
    config["seed"] = 7
    atomic_write_json(run_dir / "config.json", config)
    preset = DEMO.replace(observations=("Edema",))
    plan = Plan(tuple(plan_runs([spec], tmp_path / "runs", preset)), preset.observations)
    outputs = write_outputs(tmp_path, plan, preset=preset)
    assert any("is not that of Edema/u-ones/seed0" in n for n in outputs.notes)


# ------------------------------------------------------------- CIs, paired differences, counts


def _chosen_scores(sel, split="test"):
    pred = pd.read_csv(sel.directory / f"predictions-{split}.csv", keep_default_na=False)
    p = pred.query(f"iteration == {sel.iteration} and label == 1 and subcategory != ''")
    return (p["subcategory"] == "typical").to_numpy(int), p["score"].to_numpy()


def test_paired_difference_is_the_seed_mean_of_paired_auc_fg_differences(synthetic_benchmark):
    _, _, outputs = synthetic_benchmark
    paired = outputs.paired
    assert set(paired["split"]) == {"validate", "test"}
    row = paired[(paired["method"] == "pu-rm") & (paired["split"] == "test")].iloc[0]
    pu = {s.spec.seed: s for s in outputs.selections if s.spec.variant == "pu-rm-tau0.3"}
    ref = {s.spec.seed: s for s in outputs.selections if s.spec.method == "u-ones"}
    diffs, a_scores, b_scores = [], [], []
    for seed in sorted(pu):
        y, a = _chosen_scores(pu[seed])
        _, b = _chosen_scores(ref[seed])
        diffs.append(roc_auc_score(y, a) - roc_auc_score(y, b))
        a_scores.append(a)
        b_scores.append(b)
    assert row["seeds"] == 2
    assert row["difference"] == pytest.approx(np.mean(diffs))
    assert row["ci_low"] <= row["difference"] <= row["ci_high"]
    pooled = delong_test(y, np.mean(a_scores, axis=0), np.mean(b_scores, axis=0)).p_value
    assert row["delong_p"] == pytest.approx(pooled)
    assert row["n_atypical"] == (1 - y).sum() and row["n_typical"] == y.sum()
    # U-Zeros has one finished seed: paired on that seed only
    zeros = paired[(paired["method"] == "u-zeros") & (paired["split"] == "test")].iloc[0]
    assert zeros["seeds"] == 1
    md = (synthetic_benchmark[0] / "summary.md").read_text()
    assert "paired difference against U-Ones" in md and "PU-RM − U-Ones (test)" in md


def test_paired_difference_ci_resamples_seeds_and_cases():
    from finegrain.experiment.aggregate import paired_difference_ci

    rng = np.random.default_rng(1)
    y = np.array([0] * 150 + [1] * 150)
    base = rng.random((300, 5)) + 0.4 * y[:, None]
    assert paired_difference_ci(y, base, base) == (0.0, 0.0, 0.0)
    better = base + 0.5 * y[:, None]  # every seed clearly better
    mean, low, high = paired_difference_ci(y, better, base, n_boot=500)
    assert 0 < low <= mean <= high
    # seeds that disagree widen the interval beyond case sampling alone
    mixed = base.copy()
    mixed[:, :2] += 0.5 * y[:, None]
    mixed[:, 2:] -= 0.3 * y[:, None]
    _, lo_mixed, hi_mixed = paired_difference_ci(y, mixed, base, n_boot=500)
    _, lo_one, hi_one = paired_difference_ci(y, mixed[:, :1], base[:, :1], n_boot=500)
    assert hi_mixed - lo_mixed > hi_one - lo_one
    assert lo_mixed < 0 < hi_mixed
    with pytest.raises(ValueError, match="shape"):
        paired_difference_ci(y, base, base[:, :2])


def test_run_statistics_ci_brackets_each_runs_auc_fg(synthetic_benchmark):
    _, _, outputs = synthetic_benchmark
    stats = outputs.run_stats
    assert len(stats) == 2 * len(outputs.selections)
    for sel in outputs.selections[:3]:
        y, s = _chosen_scores(sel)
        row = stats[
            (stats["method"] == sel.spec.method)
            & (stats["seed"] == sel.spec.seed)
            & (stats["split"] == "test")
            & ((stats["tau"].isna()) if sel.spec.tau is None else (stats["tau"] == sel.spec.tau))
        ].iloc[0]
        assert row["auc_fg"] == pytest.approx(roc_auc_score(y, s))
        assert row["ci_low"] <= row["auc_fg"] <= row["ci_high"]
        assert row["n_typical"] == y.sum()


def test_tables_show_class_counts_next_to_every_auc(synthetic_benchmark):
    out, _, outputs = synthetic_benchmark
    counts = {t.key: t.header for t in outputs.tables}
    sel = outputs.selections[0]
    n_typ = int(sel.metrics.query("split == 'validate'")["n_typical"].iloc[0])
    n_atyp = int(sel.metrics.query("split == 'validate'")["n_atypical"].iloc[0])
    assert counts["table2"][1] == f"Edema (n = {n_atyp} atypical / {n_typ} typical)"
    assert re.fullmatch(r"Edema \(n = \d+ pos\. / \d+ neg\.\)", counts["table2-auc"][1])
    assert re.fullmatch(
        r"Edema AUC\^FG \(n = \d+ atypical / \d+ typical\)", counts["table2-test"][1]
    )
    assert counts["figure4"][1].startswith("Edema (n = ")
    md = (out / "summary.md").read_text()
    assert "seed mean of per-run values" in md
    page = (out / "report.html").read_text()
    assert "seed-averaged scores" in page  # the ROC caption says what the legend shows


def test_mechanism_table_counts_the_linear_regime(synthetic_benchmark):
    from finegrain.experiment.aggregate import mechanism_table

    _, _, outputs = synthetic_benchmark
    table = mechanism_table(outputs.selections, threshold=0.3)
    row = table[(table["method"] == "pu-rm") & (table["tau"] == 0.6)].iloc[0]
    shares, atyp = [], []
    for sel in outputs.selections:
        if sel.spec.method == "pu-rm" and sel.spec.tau == 0.6:
            pred = pd.read_csv(sel.directory / "predictions-test.csv", keep_default_na=False)
            pred = pred[pred["iteration"] == sel.iteration]
            shares.append((pred.loc[pred["label"] == 1, "score"] <= 0.6).mean())
            atyp.append(
                pred.loc[pred["subcategory"].eq("atypical") & pred["label"].eq(1), "score"].mean()
            )
    assert row["threshold"] == 0.6 and row["seeds"] == 2
    assert row["linear_share"] == pytest.approx(np.mean(shares))
    assert row["mean_p_atypical"] == pytest.approx(np.mean(atyp))
    ones = table[table["method"] == "u-ones"].iloc[0]
    assert ones["threshold"] == 0.3  # a τ-free method is measured at the study's τ


def test_score_histograms_have_integer_count_ticks(synthetic_benchmark):
    from finegrain.experiment import plots
    from finegrain.experiment.aggregate import averaged_scores

    _, _, outputs = synthetic_benchmark
    ones = [s for s in outputs.selections if s.spec.method == "u-ones"]
    fig = plots.score_distribution_figure(
        {"u-ones": averaged_scores(ones, "test")}, "Edema", "test"
    )
    fig.canvas.draw()
    ticks = fig.axes[0].get_yticks()
    assert len(ticks) > 1 and np.allclose(ticks, np.round(ticks))
    plots._pyplot().close(fig)


def test_figures_rank_a_fine_method_by_its_fine_score():
    from sklearn.metrics import roc_auc_score

    from finegrain.experiment import plots

    rng = np.random.default_rng(0)
    n = 40
    sub = np.array(["atypical", "typical"] * (n // 2))
    coarse = pd.DataFrame(
        {"label": 1, "subcategory": sub, "score": rng.random(n), "fine_score": np.nan}
    )
    coarse["fine_score"] = coarse["score"]  # a coarse method's fine score is its probability
    fine = coarse.copy()
    fine["fine_score"] = np.where(sub == "typical", 1.5, 0.5) + 0.8 * rng.random(n)  # own scale
    scores, own = {"u-ones": coarse, "ordinal": fine}, {"ordinal"}
    fig = plots.roc_figure(scores, "Edema", "test", own)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    y = (sub == "typical").astype(int)
    assert labels[0].endswith(f"({roc_auc_score(y, coarse['score']):.3f})")
    assert ", fine score" in labels[1]  # ranked by it, the paper's AUC^FG beside
    assert labels[1].endswith(
        f"({roc_auc_score(y, fine['fine_score']):.3f}; P(positive) "
        f"{roc_auc_score(y, fine['score']):.3f})"
    )
    plots._pyplot().close(fig)
    fig = plots.score_distribution_figure(scores, "Edema", "test", own)
    assert [ax.get_xlabel() for ax in fig.axes] == ["P(positive)", "fine score"]
    assert fig.axes[1].get_xlim()[1] >= fine["fine_score"].max()  # its own range, not [0, 1]
    plots._pyplot().close(fig)


def test_localisation_helpers():
    from finegrain.experiment.localisation import article, energy_inside, grid_label, resize_mask

    assert f"{article('atypical')} atypical" == "an atypical"
    assert f"{article('typical')} typical" == "a typical"
    assert grid_label((4, 4)) == "4 × 4 cells: not a localisation"
    assert grid_label((16, 16)) == "16 × 16 cells"
    cam = np.zeros((8, 8))
    cam[:4, :4] = 2.0
    cam[4:, 4:] = -5.0  # negative evidence does not count as energy
    mask = np.zeros((8, 8), bool)
    mask[:2, :4] = True
    assert energy_inside(cam, mask) == pytest.approx(0.5)
    assert np.isnan(energy_inside(-np.ones((8, 8)), mask))
    assert resize_mask(mask, 4)[:1, :2].all() and resize_mask(mask, 4).sum() == 2
    with pytest.raises(ValueError, match="shape"):
        energy_inside(cam, mask[:4])


def test_localisation_finds_the_phantom_behind_an_index_and_nothing_behind_real_data(tmp_path):
    from finegrain.data.phantom import SETTINGS_FILE
    from finegrain.experiment.localisation import phantom_of_index

    image = Path("phantom/files/p10/p10000001/s50000001/a.jpg")
    (tmp_path / "data").mkdir()
    index = tmp_path / "data" / "index.csv"
    pd.DataFrame({"image_id": ["a"], "path": [f"../{image.as_posix()}"]}).to_csv(index, index=False)
    assert phantom_of_index(index) is None  # real data: no phantom.json above the image
    (tmp_path / "phantom").mkdir()
    (tmp_path / "phantom" / SETTINGS_FILE).write_text("{}")
    assert phantom_of_index(index) == tmp_path / "data" / ".." / "phantom"
    assert phantom_of_index(tmp_path / "missing.csv") is None


def test_a_variant_without_a_chosen_checkpoint_says_the_real_cause(tmp_path):
    """The control preset's notes said "no test predictions" where the predictions were there
    and the cause was an undefined validation AUC^FG (0 atypical positives)."""
    from finegrain.experiment.aggregate import split_statistics
    from finegrain.io import read_jsonl

    spec = RunSpec("Consolidation", "u-ignore", None, 0)
    run_dir = make_run(tmp_path / "runs", spec, quality=1.0)
    records = read_jsonl(run_dir / "metrics.jsonl")
    (run_dir / "metrics.jsonl").unlink()
    for record in records:  # every validate evaluation: no atypical positive, AUC^FG undefined
        if record["split"] == "validate":
            record.update(auc_fg=None, n_atypical=0)
        append_jsonl(run_dir / "metrics.jsonl", record)
    selection = select_run(run_dir)
    assert selection.iteration is None
    (row,) = split_statistics([selection], reference="u-ignore").to_dict("records")
    last = [r for r in records if r["split"] == "validate"][-1]
    assert "no test predictions" not in row["note"]
    assert row["note"] == (
        "no checkpoint chosen: AUC^FG undefined at every validate evaluation "
        f"(0 atypical / {last['n_typical']} typical positives at iteration {last['iteration']})"
    )


def test_a_registered_result_table_is_computed_written_and_rendered(tmp_path):
    """A new table of the report (a rank correlation, a calibration table) is one ResultTable:
    computed from the selected runs' records, written as its CSV, rendered in the summary."""
    from finegrain.experiment.outputs import RESULT_TABLES, ResultTable
    from finegrain.experiment.tables import Table
    from finegrain.scores import RANKED

    def compute(results):
        rows = [
            {"variant": s.spec.variant, "ranked": RANKED, "cases": len(selected(s))}
            for s in results.selections
        ]
        return pd.DataFrame(rows)

    def selected(sel):
        from finegrain.experiment.aggregate import selected_predictions

        return selected_predictions(sel, "test")

    def render(frame, results):
        rows = [[r.variant, str(r.cases)] for r in frame.itertuples()]
        return [Table("cases", "Test cases per run", ["Variant", "cases"], rows)]

    RESULT_TABLES.register("cases", ResultTable("cases", "cases.csv", compute, render, "no"))
    try:
        spec = RunSpec("Edema", "u-ones", None, 0)
        make_run(tmp_path / "runs", spec, quality=1.0)
        preset = DEMO.replace(observations=("Edema",))
        plan = Plan(tuple(plan_runs([spec], tmp_path / "runs", preset)), preset.observations)
        outputs = write_outputs(tmp_path, plan, preset=preset, cams=False)
    finally:
        RESULT_TABLES.pop("cases")
    written = pd.read_csv(tmp_path / "cases.csv")
    assert written.to_dict("records") == [{"variant": "u-ones", "ranked": "fine_score",
                                           "cases": 60}]  # fmt: skip
    assert outputs.frames["cases"].equals(written)
    assert "### Test cases per run" in (tmp_path / "summary.md").read_text()
