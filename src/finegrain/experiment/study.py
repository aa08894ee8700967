"""The study: where does risk modulation help? (``finegrain benchmark --selection study``)

Around the calibrated phantom, the study sweeps the phantom's named unknowns (what lies behind
an uncertain label, how visible slight findings are, prevalence, what lies behind a positive
without a cue) and PCE's τ, and measures at each condition the paired difference of AUC^FG
PU-RM − U-Ones (:func:`finegrain.experiment.aggregate.paired_difference`). At the calibrated
point it also trains every other method. The decision rule is pre-registered in
``docs/study.md``.

Layout under ``out``: one benchmark folder per phantom, ``conditions/<data>/`` with
``data/`` (phantom, index, cache) and ``runs/<observation>/<variant>/seed<k>/`` — conditions
that share a phantom (the τ sweep and the other methods share the calibrated one) share its run
folder — plus that folder's own Table 2 report. The study's own outputs: ``study.csv`` (every
condition × observation × split), ``study.md``, ``study-mechanism.csv``, ``figures/study-*``,
``report.html``, ``study.json`` (the plan) and ``study-timing.jsonl`` (wall and CPU seconds per
condition, appended by every invocation). Everything is resumable: phantoms, caches and
finished runs are reused; a partial study still writes its outputs over the finished runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from finegrain.errors import FinegrainError
from finegrain.experiment.grid import Grid, RunSpec, cell, display_name, format_tau
from finegrain.experiment.presets import Preset
from finegrain.io import append_jsonl, atomic_write_csv, atomic_write_json, atomic_write_text
from finegrain.train.methods import BASELINE_METHOD, METHODS, PAPER_METHOD

log = logging.getLogger(__name__)

#: The calibrated phantom's data folder name.
CALIBRATED = "calibrated"
#: The preset the study was pre-registered on (docs/study.md section 1): finegrain 0.3's demo,
#: on the bands phantom, whose knobs its conditions move.
STUDY_PRESET = "demo-v0.3"


@dataclass
class Condition:
    """One point of the study: a phantom (``phantom``: keyword overrides of ``make_phantom``
    relative to the calibrated defaults) and the grid trained on it (its methods at a τ,
    ``None``: each method's own, and their seeds)."""

    knob: str  # "calibrated", a phantom knob, "tau" or "methods"
    value: str  # the knob's value as text ("" at the calibrated point)
    methods: tuple[str, ...]
    seeds: int
    tau: float | None = None
    phantom: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``calibrated``, ``tau-0.1``, ``visibility-0.5``, ``methods``: a folder-safe name."""
        if self.knob in (CALIBRATED, "methods"):
            return self.knob
        return slug(f"{self.knob}-{self.value}")

    @property
    def data_key(self) -> str:
        """The phantom this condition trains on (``calibrated`` unless it overrides a knob)."""
        return self.key if self.phantom else CALIBRATED

    def grid(self, observations: Sequence[str]) -> Grid:
        """Its grid: the observations × its methods at its τ × its seeds."""
        cells = tuple(cell(m, self.tau) for m in self.methods)
        return Grid(tuple(observations), cells, self.seeds)

    def specs(self, observations: Sequence[str]) -> list[RunSpec]:
        """Its runs, seed-major (all variants of seed 0 first) so a partial run pairs."""
        return self.grid(observations).specs()


def slug(text: str) -> str:
    """A folder-safe name: ``"visibility-0.5"``, ``"uncertain_mixture-absent-heavy"``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


@dataclass
class StudyPlan:
    """The study's grid. ``sweeps`` maps a phantom knob to ``{label: make_phantom overrides}``
    for the values beyond the calibrated point; ``method`` is compared with ``reference`` at
    every condition."""

    observations: tuple[str, ...] = ("Consolidation", "Edema")
    method: str = PAPER_METHOD
    reference: str = BASELINE_METHOD
    #: the compared method's τ (``None``: its own)
    tau: float | None = None
    seeds: int = 5  # PU-RM and U-Ones at the calibrated point
    sweep_seeds: int = 3  # PU-RM and U-Ones at every sweep point
    tau_seeds: int = 3  # PU-RM at each τ (paired with the calibrated U-Ones)
    other_seeds: int = 2  # the other methods at the calibrated point
    taus: tuple[float, ...] = (0.1, 0.5, 0.7, 0.9)
    #: every other method trained at the calibrated point (default: every registered one)
    other_methods: tuple[str, ...] | None = None
    sweeps: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: make_phantom keywords common to every phantom of the study (e.g. evaluation split sizes)
    phantom: dict[str, Any] = field(default_factory=dict)
    #: condition keys trained first, in this order (the rest follow in the default order)
    order: tuple[str, ...] = ()

    def conditions(self) -> list[Condition]:
        """Every condition in the order trained: ``order`` first, then the calibrated comparison,
        τ, each phantom knob and the other methods (so a cut-short study has the answer to its
        main question first)."""
        found = self._conditions()
        keys = [c.key for c in found]
        unknown = [k for k in self.order if k not in keys]
        if unknown:
            raise FinegrainError(f"study order names unknown conditions {unknown}; known: {keys}")
        rank = {k: i for i, k in enumerate(self.order)}
        return sorted(found, key=lambda c: (rank.get(c.key, len(rank)), keys.index(c.key)))

    def others(self) -> tuple[str, ...]:
        """The other methods trained at the calibrated point."""
        if self.other_methods is not None:
            return tuple(self.other_methods)
        return tuple(m for m in METHODS if m not in (self.method, self.reference))

    def _conditions(self) -> list[Condition]:
        pair = (self.reference, self.method)
        out = [Condition(CALIBRATED, "", pair, self.seeds, self.tau)]
        own = cell(self.method, self.tau)[1]
        out += [
            Condition("tau", format_tau(t), (self.method,), self.tau_seeds, float(t))
            for t in self.taus
            if own is None or not math.isclose(t, own)
        ]
        for knob, values in self.sweeps.items():
            for label, overrides in values.items():
                out.append(
                    Condition(knob, label, pair, self.sweep_seeds, self.tau, dict(overrides))
                )
        if self.others():
            out.append(Condition("methods", "", self.others(), self.other_seeds))
        return out

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: The pre-registered plan of ``docs/study.md`` (knobs: :mod:`finegrain.data.phantom.knobs`;
#: the calibrated point is the phantom's defaults).
PLAN = StudyPlan(
    observations=("Consolidation", "Edema"),
    seeds=5,
    sweep_seeds=2,
    tau_seeds=2,
    other_seeds=2,
    taus=(0.1, 0.6, 0.9),
    # the other methods pre-registered in docs/study.md (methods added since are not in it)
    other_methods=("u-ignore", "u-zeros", "u-ones-ls", "p-rm", "u-rm"),
    sweeps={
        "uncertain_mixture": {
            "slight-heavy": {
                "uncertain_mixture": {
                    "absent": 0.10,
                    "slight": 0.80,
                    "significant": 0.05,
                    "other": 0.05,
                }
            },
            "absent-heavy": {
                "uncertain_mixture": {
                    "absent": 0.80,
                    "slight": 0.05,
                    "significant": 0.05,
                    "other": 0.10,
                }
            },
        },
        "visibility": {"0.5": {"visibility": 0.5}, "2": {"visibility": 2.0}},
        "nocue_severity": {"0.2": {"nocue_severity": 0.2}, "0.8": {"nocue_severity": 0.8}},
        # "2" is not feasible (Pleural Effusion cannot double); its declared replacement
        # (docs/study.md, "Deviation") doubles the study's observations only
        "prevalence": {
            "2": {"prevalence": 2.0},
            "0.5": {"prevalence": 0.5},
            "2-study-observations": {"prevalence": {"Consolidation": 2.0, "Edema": 2.0}},
        },
    },  # fmt: skip
    order=(
        "calibrated",
        "tau-0.1",
        "tau-0.6",
        "tau-0.9",
        "uncertain_mixture-slight-heavy",
        "visibility-0.5",
        "nocue_severity-0.2",
        "prevalence-2",
        "methods",
    ),
)


def default_plan() -> StudyPlan:
    """The pre-registered plan of ``docs/study.md``."""
    return PLAN


# -------------------------------------------------------------------------------------- running


def condition_data(folder: Path, plan: StudyPlan, condition: Condition, preset: Preset, *,
                   progress: bool = False):  # fmt: skip
    """Make (or reuse) the phantom of ``condition`` under ``folder/data`` and its index and cache
    (:func:`finegrain.experiment.runner.prepare_data` with the condition's knobs)."""
    from finegrain.experiment.runner import DataSource, prepare_data

    options = {**plan.phantom, **condition.phantom}
    source = DataSource(phantom=True, phantom_options=options)
    return prepare_data(source, folder, preset, progress=progress)


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (user + system): what a study's
    cost is reported in."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass
class StudyResult:
    out: Path
    trained: int
    skipped: int
    seconds: float
    cpu_seconds: float
    table: pd.DataFrame


def run_study(
    out: str | Path,
    preset: Preset,
    plan: StudyPlan | None = None,
    *,
    jobs: int | None = None,
    device: str | None = None,
    progress: bool = True,
    report_only: bool = False,
) -> StudyResult:
    """Train every condition of ``plan`` (skipping finished runs) and write the outputs; while
    it trains it holds ``out``'s benchmark lock, so a second study or benchmark into ``out``
    stops at once (:func:`~finegrain.experiment.runner.benchmark_lock`)."""
    from finegrain.experiment.runner import benchmark_lock

    out = Path(out)
    with contextlib.nullcontext() if report_only else benchmark_lock(out):
        return _run_study(out, preset, plan, jobs, device, progress, report_only)


def _run_study(
    out: Path,
    preset: Preset,
    plan: StudyPlan | None,
    jobs: int | None,
    device: str | None,
    progress: bool,
    report_only: bool,
) -> StudyResult:
    from finegrain.experiment.plan import plan_runs
    from finegrain.experiment.runner import DataMismatch, require_benchmark, run_grid

    plan = plan or default_plan()
    if report_only:
        require_benchmark(out, "study.json", "conditions/")
    jobs = max(1, min(jobs if jobs is not None else preset.jobs, os.cpu_count() or 1))
    atomic_write_json(
        out / "study.json", {"preset": preset.to_dict(), "plan": plan.to_dict(), "jobs": jobs}
    )
    trained = skipped = 0
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    for condition in plan.conditions() if not report_only else []:
        folder = out / "conditions" / condition.data_key
        c0, cpu_c0 = time.perf_counter(), cpu_seconds()
        try:
            data = condition_data(folder, plan, condition, preset, progress=progress)
        except DataMismatch:  # not the knob's fault: another request's phantom is there
            raise
        except ValueError as exc:  # a knob value the phantom cannot generate: say so, go on
            log.warning("condition %s not feasible: %s", condition.key, exc)
            append_jsonl(
                out / "study-timing.jsonl", {"condition": condition.key, "infeasible": str(exc)}
            )
            continue
        runs = plan_runs(
            condition.specs(plan.observations), folder / "runs", preset, data, device=device
        )
        grid = run_grid(runs, threads=preset.threads, jobs=jobs, progress=progress)
        trained += len(grid.trained)
        skipped += len(grid.skipped)
        append_jsonl(
            out / "study-timing.jsonl",
            {
                "condition": condition.key,
                "trained": len(grid.trained),
                "skipped": len(grid.skipped),
                "wall_s": round(time.perf_counter() - c0, 1),
                "cpu_s": round(cpu_seconds() - cpu_c0, 1),
                "jobs": jobs,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    table = write_study_outputs(out, preset, plan)
    return StudyResult(out, trained, skipped, seconds, cpu, table)


# -------------------------------------------------------------------------------------- outputs

#: The pre-registered decision (docs/study.md), per observation on the test split.
DECISIONS = {
    "yes": "PU-RM better: the 95% CI of the paired difference lies above 0",
    "worse": "PU-RM worse: the 95% CI lies below 0",
    "no": "no decision: the 95% CI contains 0",
}


def decide(ci_low: float, ci_high: float) -> str:
    """The pre-registered rule: ``yes`` if the CI lies above 0, ``worse`` below 0, else ``no``.

    >>> decide(0.004, 0.03), decide(-0.01, 0.02), decide(-0.05, -0.001)
    ('yes', 'no', 'worse')
    """
    if math.isnan(ci_low) or math.isnan(ci_high):
        return ""
    if ci_low > 0:
        return "yes"
    if ci_high < 0:
        return "worse"
    return "no"


def _selections(out: Path, plan: StudyPlan, conditions: Sequence[Condition], preset: Preset):
    """Per phantom folder: its planned runs (every condition's specs) and the records of the
    finished ones, with their notes."""
    from finegrain.experiment.plan import plan_runs
    from finegrain.experiment.selection import select_runs

    by_data: dict[str, list[RunSpec]] = {}
    for c in conditions:
        specs = by_data.setdefault(c.data_key, [])
        specs += [s for s in c.specs(plan.observations) if s not in specs]
    found = {}
    for key, specs in by_data.items():
        runs = plan_runs(specs, out / "conditions" / key / "runs", preset)
        found[key] = (runs, *select_runs(runs))
    return found


def study_table(out: Path, plan: StudyPlan, preset: Preset, *, n_boot: int = 2000) -> pd.DataFrame:
    """Paired difference method − reference (PU-RM − U-Ones) at every condition (but
    ``methods``), per observation and split, with the pre-registered decision (test split
    only)."""
    from finegrain.experiment.aggregate import PAIRED_COLUMNS, paired_difference

    conditions = [c for c in plan.conditions() if c.knob != "methods"]
    found = _selections(out, plan, conditions, preset)
    infeasible = infeasible_conditions(out)
    frames = []
    for c in conditions:
        _, selections, _ = found[c.data_key]
        tau = cell(plan.method, c.tau)[1]
        mine = [s for s in selections if s.spec.method == plan.method and s.spec.tau == tau]
        seeds = {s.spec.seed for s in mine}
        ref = [s for s in selections if s.spec.method == plan.reference]
        if c.knob == "tau":  # paired on the τ condition's seeds only
            ref = [s for s in ref if s.spec.seed in seeds]
        frame = paired_difference(
            mine + ref, method=plan.method, tau=tau, reference=cell(plan.reference, c.tau),
            n_boot=n_boot,
        )  # fmt: skip
        if frame.empty:
            frame = pd.DataFrame(
                [
                    {
                        "observation": o,
                        "method": plan.method,
                        "tau": tau,
                        "variant": RunSpec(o, plan.method, tau, 0).variant,
                        "split": sp,
                        "reference": plan.reference,
                        "seeds": 0,
                        "note": (
                            f"not feasible: {infeasible[c.key]}"
                            if c.key in infeasible
                            else "no finished runs"
                        ),
                    }
                    for o in plan.observations
                    for sp in ("validate", "test")
                ],  # fmt: skip
                columns=PAIRED_COLUMNS,
            )
        frame.insert(0, "value", c.value)
        frame.insert(0, "knob", c.knob)
        frame.insert(0, "condition", c.key)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table["decision"] = [
        ("not feasible" if key in infeasible else decide(float(lo), float(hi)))
        if split == "test"
        else ""
        for key, lo, hi, split in zip(
            table["condition"], table["ci_low"], table["ci_high"], table["split"], strict=True
        )
    ]
    return table


def infeasible_conditions(out: Path) -> dict[str, str]:
    """``{condition: reason}`` for the conditions whose phantom could not be generated, from
    ``study-timing.jsonl`` (the latest record of a condition wins)."""
    from finegrain.io import read_jsonl

    path = Path(out) / "study-timing.jsonl"
    found: dict[str, str] = {}
    for record in read_jsonl(path) if path.is_file() else []:
        if "infeasible" in record:
            found[record["condition"]] = record["infeasible"]
        else:
            found.pop(record["condition"], None)
    return found


def write_study_outputs(out: str | Path, preset: Preset, plan: StudyPlan) -> pd.DataFrame:
    """``study.csv``, ``study.md``, the map figures, the mechanism table, each phantom folder's
    Table 2 report, and the study's ``report.html``. Returns the study table."""
    from finegrain.experiment import plots
    from finegrain.experiment.aggregate import mechanism_table
    from finegrain.experiment.grid import get_selections
    from finegrain.experiment.outputs import write_outputs
    from finegrain.experiment.plan import Plan
    from finegrain.experiment.report import Figure, write_report
    from finegrain.experiment.tables import Table, to_markdown

    out = Path(out)
    table = study_table(out, plan, preset)
    atomic_write_csv(out / "study.csv", table)
    tables: list[Table] = [study_summary_table(table, plan.observations)]
    figures: list[Figure] = []
    notes: list[str] = []
    if table["seeds"].fillna(0).astype(int).gt(0).any():
        for obs in plan.observations:
            stem = out / "figures" / f"study-{slug(obs.lower())}"
            plots.save_figure(plots.study_map_figure(table, obs), stem)
            figures.append(
                Figure(
                    f"{obs}: where does {display_name(plan.method)} beat "
                    f"{display_name(plan.reference)}?",
                    stem.with_suffix(".png"),
                    f"Paired difference of test AUC^FG, {display_name(plan.method)} − "
                    f"{display_name(plan.reference)}, at each condition (dot: "
                    "mean over paired seeds; bar: 95% hierarchical bootstrap CI over seeds and "
                    f"cases). Right of 0: {display_name(plan.method)} ranks typical above "
                    "atypical positives better.",
                )
            )
    # each phantom folder's own benchmark report (all its methods; the calibrated one with CAMs)
    conditions = plan.conditions()
    found = _selections(out, plan, conditions, preset)
    for key, (runs, selections, run_notes) in found.items():
        notes += [f"{key}: {n}" for n in run_notes]
        if not selections:
            continue
        specs = [r.spec for r in runs]
        methods = tuple(m for m in METHODS if any(s.method == m for s in specs))
        taus = tuple(sorted({s.tau for s in specs if s.tau is not None}))
        cond_preset = preset.replace(
            observations=tuple(plan.observations),
            seeds=max(c.seeds for c in conditions if c.data_key == key),
            selections=("table2", "figure4") if len(taus) > 1 else ("table2",),
        )
        report_plan = Plan(
            tuple(runs), tuple(plan.observations),
            tuple(get_selections(cond_preset.selections)),
            tau=plan.tau, methods=methods, taus=taus or None,
        )  # fmt: skip
        folder = out / "conditions" / key
        outputs = write_outputs(
            folder, report_plan, preset=cond_preset,
            config={"study condition": key, "plan": plan.to_dict()}, cams=key == CALIBRATED,
        )  # fmt: skip
        if key == CALIBRATED:
            for t in outputs.tables:
                t.title = f"Calibrated phantom — {t.title}"
            tables += outputs.tables
            mechanism = mechanism_table(selections, threshold=_threshold(plan))
            atomic_write_csv(out / "study-mechanism.csv", mechanism)
            tables.append(mechanism_summary_table(mechanism))
            if not outputs.localisation.empty:
                atomic_write_csv(out / "study-localisation.csv", outputs.localisation)
            figures += outputs.localisation_figures
    timing = read_timing(out)
    compared = f"{display_name(plan.method)} − {display_name(plan.reference)}"
    lead = (
        f"{compared} over {len(conditions)} conditions; observations "
        f"{', '.join(plan.observations)}; {preset.setting('model')}, {preset.image_size} px, "
        f"{preset.setting('iterations')} iterations (checkpoint every {preset.setting('checkpoint_every')}); "
        f"{timing}. Decision rule (pre-registered, docs/study.md): "
        + "; ".join(f"{k} = {v}" for k, v in DECISIONS.items())
        + "."
    )
    write_report(
        out / "report.html",
        title="finegrain study: where does risk modulation help?",
        lead=lead,
        tables=tables,
        figures=figures,
        config={"preset": preset.to_dict(), "plan": plan.to_dict()},
        notes=notes,
    )
    atomic_write_text(
        out / "study.md",
        f"# finegrain study: {compared}\n\n"
        + lead
        + "\n\n"
        + "\n".join(to_markdown(t) for t in tables)
        + ("\n## Notes\n\n" + "".join(f"- {n}\n" for n in notes) if notes else ""),
    )
    return table


def _threshold(plan: StudyPlan) -> float:
    """The τ the mechanism table measures τ-free methods at: the compared method's."""
    from finegrain.train.methods import TAU

    return cell(plan.method, plan.tau)[1] or TAU


def read_timing(out: Path) -> str:
    """``"trained 84 runs in 41 min wall, 78 min CPU"`` from ``study-timing.jsonl``."""
    from finegrain.io import read_jsonl

    path = Path(out) / "study-timing.jsonl"
    if not path.is_file():
        return "no timing recorded"
    rows = read_jsonl(path)
    runs = sum(r.get("trained", 0) for r in rows)
    wall = sum(r.get("wall_s", 0.0) for r in rows)
    cpu = sum(r.get("cpu_s", 0.0) for r in rows)
    return f"trained {runs} runs in {wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU"


def study_summary_table(table: pd.DataFrame, observations: Sequence[str]):
    """The map as a table: one row per condition, per observation the test difference with its
    CI, the DeLong p, the seeds and the decision."""
    from finegrain.experiment.tables import Table, difference_with_ci, p_value

    header = ["Condition"]
    for obs in observations:
        header += [f"{obs} Δ AUC^FG test [95% CI]", f"{obs} p", f"{obs} seeds; n", f"{obs}"]
    rows = []
    test = table[table["split"] == "test"]
    for key in dict.fromkeys(test["condition"]):
        part = test[test["condition"] == key]
        first = part.iloc[0]
        name = "calibrated point" if key == CALIBRATED else f"{first['knob']} = {first['value']}"
        cells = [name]
        for obs in observations:
            r = part[part["observation"] == obs]
            if r.empty or not int(r.iloc[0]["seeds"] or 0):
                feasible = r.empty or r.iloc[0]["decision"] != "not feasible"
                cells += ["–", "–", "–", "not run" if feasible else "not feasible"]
                continue
            r = r.iloc[0].to_dict()
            cells += [
                difference_with_ci(r),
                p_value(r["delong_p"]),
                f"{int(r['seeds'])}; {int(r['n_atypical'])} atyp. / {int(r['n_typical'])} typ.",
                r["decision"],
            ]
        rows.append(cells)
    return Table(
        "study",
        f"The study: paired difference {_compared(table)} of test AUC^FG at each condition",
        header,
        rows,
        caption="Mean over paired seeds (same seed and data order) of the per-seed difference at "
        "the checkpoints chosen on validation; 95% CI from a hierarchical bootstrap (seeds, then "
        "cases); DeLong p of the seed-averaged scores; decision by the pre-registered rule "
        "(yes: CI above 0; worse: CI below 0; no: CI contains 0).",
    )


def _compared(table: pd.DataFrame) -> str:
    """``PU-RM − U-Ones``: the comparison a study table holds (its method and reference)."""
    if table.empty:
        return "method − reference"
    first = table.iloc[0]
    return f"{display_name(first['method'])} − {display_name(first['reference'])}"


def mechanism_summary_table(mechanism: pd.DataFrame):
    """Where PCE acts at the calibrated point: share of positives with p ≤ τ and mean p."""
    from finegrain.experiment.tables import Table

    rows = []
    for _, r in mechanism.iterrows():
        name = display_name(r["method"])
        if not pd.isna(r["tau"]):
            name += f" τ = {format_tau(r['tau'])}"
        rows.append(
            [
                f"{r['observation']}: {name}",
                f"{r['linear_share']:.3f} (p ≤ {format_tau(r['threshold'])})",
                f"{r['mean_p_atypical']:.3f}",
                f"{r['mean_p_typical']:.3f}",
                f"{r['mean_p_negative']:.3f}",
                str(int(r["seeds"])),
            ]
        )
    return Table(
        "mechanism",
        "The mechanism (calibrated phantom, test split): where PCE acts",
        [
            "Variant",
            "positives in PCE's linear regime",
            "mean p atypical",
            "mean p typical",
            "mean p negative",
            "seeds",
        ],  # fmt: skip
        rows,
        caption="PCE differs from cross-entropy only for p ≤ τ (its linear regime). Share of "
        "test positives there and mean positive probability per class, each averaged over the "
        "seeds at their chosen checkpoints; τ-free methods are measured at the study's τ.",
    )
