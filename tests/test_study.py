"""The study (``--selection study``): conditions, per-condition phantoms and run folders, the
paired-difference map, resuming, and the benchmark CLI's paired-difference lines."""

from __future__ import annotations

import pandas as pd
import pytest

from finegrain.experiment.grid import RunSpec
from finegrain.experiment.presets import DEMO_V03
from finegrain.experiment.study import (
    CALIBRATED,
    Condition,
    StudyPlan,
    decide,
    run_study,
)
from helpers import grid_run

TINY = DEMO_V03.replace(
    phantom_eval_studies=80,
    seeds=1,
    iterations=2,
    checkpoint_every=2,
    batch_size=8,
    image_size=32,
    phantom_studies=150,
    phantom_size=32,
    jobs=1,
)

#: A sweep every phantom version supports: another phantom seed stands in for a data knob; and
#: a prevalence the phantom cannot generate (the study says so and goes on).
TINY_PLAN = StudyPlan(
    observations=("Edema",),
    seeds=1,
    sweep_seeds=1,
    tau_seeds=1,
    other_seeds=1,
    taus=(0.3, 0.6),
    other_methods=("u-ignore",),
    sweeps={"seed": {"1": {"seed": 1}}, "prevalence": {"5": {"prevalence": 5.0}}},
)


def test_conditions_order_keys_and_runs():
    plan = StudyPlan(
        taus=(0.1, 0.3, 0.9),
        sweeps={"visibility": {"0.5": {"visibility": 0.5}}},
        other_methods=("u-zeros",),
    )
    conditions = plan.conditions()
    assert [c.key for c in conditions] == [
        "calibrated",
        "tau-0.1",
        "tau-0.9",
        "visibility-0.5",
        "methods",
    ]  # the calibrated comparison first; τ = 0.3 is the calibrated point itself
    assert [c.data_key for c in conditions] == [CALIBRATED] * 3 + ["visibility-0.5", CALIBRATED]
    calibrated = conditions[0]
    specs = calibrated.specs(["Edema"])
    assert len(specs) == 2 * plan.seeds
    assert specs[:2] == [RunSpec("Edema", "u-ones", None, 0), RunSpec("Edema", "pu-rm", 0.3, 0)]
    assert conditions[1].specs(["Edema"])[0] == RunSpec("Edema", "pu-rm", 0.1, 0)
    assert Condition("uncertain_mixture", "absent heavy", ("pu-rm",), 1).key == (
        "uncertain_mixture-absent-heavy"
    )


def test_decision_rule():
    assert decide(0.001, 0.02) == "yes"
    assert decide(-0.001, 0.02) == "no"
    assert decide(-0.03, -0.0001) == "worse"
    assert decide(float("nan"), 0.1) == ""


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    result = run_study(out, TINY, TINY_PLAN, progress=False)
    return out, result


def test_study_trains_each_condition_on_its_own_phantom(tiny_study):
    out, result = tiny_study
    # calibrated: u-ones + pu-rm; τ 0.6: pu-rm; seed sweep: u-ones + pu-rm; methods: u-ignore
    assert result.trained == 6 and result.skipped == 0
    runs = sorted(
        # conditions/<data>/runs/<settings group>/<observation>/<variant>/seed<k>
        "/".join(p.relative_to(out / "conditions").parts[:2] + p.parts[-3:])
        for p in out.glob("conditions/*/runs/*/*/*/*")
    )
    assert runs == [
        "calibrated/runs/Edema/pu-rm-tau0.3/seed0",
        "calibrated/runs/Edema/pu-rm-tau0.6/seed0",
        "calibrated/runs/Edema/u-ignore/seed0",
        "calibrated/runs/Edema/u-ones/seed0",
        "seed-1/runs/Edema/pu-rm-tau0.3/seed0",
        "seed-1/runs/Edema/u-ones/seed0",
    ]
    a = (out / "conditions/calibrated/data/index.csv").read_text()
    b = (out / "conditions/seed-1/data/index.csv").read_text()
    assert a != b  # a different phantom
    timing = pd.read_json(out / "study-timing.jsonl", lines=True)
    assert list(timing["condition"]) == [
        "calibrated", "tau-0.6", "seed-1", "prevalence-5", "methods"
    ]  # fmt: skip
    feasible = timing["infeasible"].isna()
    assert (timing.loc[feasible, "cpu_s"] > 0).all()
    assert "prevalence x5" in timing.loc[~feasible, "infeasible"].item()
    assert not (out / "conditions/prevalence-5/runs").exists()


def test_study_table_pairs_pu_rm_with_u_ones(tiny_study):
    out, result = tiny_study
    table = pd.read_csv(out / "study.csv")
    assert set(table["condition"]) == {"calibrated", "tau-0.6", "seed-1", "prevalence-5"}
    infeasible = table[table["condition"] == "prevalence-5"]
    assert (infeasible["seeds"] == 0).all()
    assert infeasible["note"].str.startswith("not feasible: prevalence x5").all()
    assert list(infeasible.loc[infeasible["split"] == "test", "decision"]) == ["not feasible"]
    table = table[table["condition"] != "prevalence-5"]
    test = table[table["split"] == "test"].set_index("condition")
    assert (test["seeds"] == 1).all()
    defined = test[test["difference"].notna()]
    assert len(defined) >= 1  # a tiny phantom may lack a class in some split: noted, not hidden
    assert test.loc[test["difference"].isna(), "note"].fillna("").astype(str).str.len().gt(0).all()
    for _, row in defined.iterrows():
        assert row["ci_low"] <= row["difference"] <= row["ci_high"]
        assert row["decision"] == decide(row["ci_low"], row["ci_high"])
    md = (out / "study.md").read_text()
    assert "| methods" not in md  # the other methods are in Table 2, not on the map
    assert "calibrated point" in md and "tau = 0.6" in md and "seed = 1" in md
    assert "| prevalence = 5 | – | – | – | not feasible |" in md
    assert "PCE's linear regime" in md  # the mechanism table
    page = (out / "report.html").read_text()
    assert "where does PU-RM beat U-Ones?" in page
    assert (out / "conditions/calibrated/report.html").is_file()
    assert (out / "figures/study-edema.png").read_bytes()[:4] == b"\x89PNG"


def test_study_resumes_without_retraining(tiny_study):
    out, _ = tiny_study
    run = grid_run(out / "conditions/calibrated/runs", "Edema/u-ones/seed0")
    stamp = (run / "done").stat().st_mtime_ns
    again = run_study(out, TINY, TINY_PLAN, progress=False)
    assert again.trained == 0 and again.skipped == 6
    assert (run / "done").stat().st_mtime_ns == stamp


def test_a_study_into_a_folder_a_benchmark_trains_into_stops_at_once(tmp_path):
    """The study holds the benchmark lock too: a second study (or benchmark) into its folder
    stops before anything is made instead of training beside it."""
    from finegrain.experiment.runner import BenchmarkLockedError, benchmark_lock

    out = tmp_path / "study"
    with benchmark_lock(out), pytest.raises(BenchmarkLockedError, match="another benchmark"):
        run_study(out, TINY, TINY_PLAN, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["benchmark.lock"]


def test_benchmark_cli_prints_tables_with_cis_and_the_paired_difference(tiny_study, capsys):
    from finegrain.cli import main

    out, _ = tiny_study
    data = out / "conditions/calibrated/data"
    rc = main(
        ["benchmark", "--index", str(data / "index.csv"), "--cache", str(data / "cache-32"),
         "--observations", "Edema", "--methods", "u-ones", "pu-rm", "--seeds", "1",
         "--iterations", "2", "--checkpoint-every", "2", "--batch-size", "8", "--jobs", "1",
         "--no-progress", "--out", str(out / "cli")]
    )  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "95% CI" in printed and "atypical /" in printed  # test table with CIs and counts
    assert "Paired difference against U-Ones" in printed
    assert "PU-RM − U-Ones (Edema, test): Δ AUC^FG" in printed
    assert "over 1 paired seed(s)" in printed


def test_demo_evaluation_splits_are_sized_for_300_atypical_and_typical_positives():
    from finegrain.data.phantom import required_eval_studies

    needed = required_eval_studies(300, observations=DEMO_V03.observations)
    assert DEMO_V03.phantom_eval_studies >= needed
    assert DEMO_V03.setting("checkpoint_every") * 2 == DEMO_V03.setting(
        "iterations"
    )  # two checkpoints to choose from


@pytest.mark.parametrize(
    "extra",
    [["--launcher", "ray"], ["--gpus-per-run", "2"], ["--tensorboard"], ["--mlflow"]],
)
def test_study_refuses_options_it_would_ignore(tmp_path, capsys, extra):
    """The study trains locally without tracking: asking otherwise is an error, not ignored."""
    from finegrain.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "--selection", "study", "--out", str(tmp_path), *extra])
    assert exit_info.value.code == 2
    assert "--selection study" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_the_preregistered_plan_generates_every_phantom_but_the_documented_one():
    """Each knob point of the study's plan builds the phantom's label plan, except prevalence x2
    on every observation (Pleural Effusion cannot double; docs/study.md, "Deviation"), whose
    declared replacement does."""
    from finegrain.data.phantom.calibration import load_calibration
    from finegrain.data.phantom.course import LabelPlan
    from finegrain.data.phantom.knobs import PhantomKnobs
    from finegrain.experiment.presets import DEMO_V03
    from finegrain.experiment.study import PLAN

    calibration = load_calibration()
    infeasible = {}
    for condition in PLAN.conditions():  # on the demo's phantom (its design)
        try:
            LabelPlan.build(calibration, PhantomKnobs(**{**DEMO_V03.phantom, **condition.phantom}))
        except ValueError as exc:
            infeasible[condition.key] = str(exc)
    assert list(infeasible) == ["prevalence-2"]
    assert "Pleural Effusion" in infeasible["prevalence-2"]
    assert "prevalence-2-study-observations" in [c.key for c in PLAN.conditions()]
