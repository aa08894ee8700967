"""Write the benchmark's outputs from its run directories: ``results.csv``, ``summary.md``,
``summary.tex``, figures (PNG + SVG) and ``report.html``.

The outputs flow one way (:func:`write_outputs`), each stage entered once and handed the
records of the one before: the plan's runs are **selected**
(:func:`~finegrain.experiment.selection.select_runs`: each run's record with its chosen
checkpoint), **aggregated** into every number the outputs show (:func:`aggregate`:
:class:`Results`), turned into **tables** and **figures**, then **written** with the report.

A table computed from the selected runs beyond the paper's (image truth, the positive control,
human fine labels, calibration and the tier reading, Figure 5 measured) is one
:class:`ResultTable` registered in :data:`RESULT_TABLES`: how to compute its rows from the
:class:`Results` (its CSV) and how to render them. Every AUC^FG follows
:mod:`finegrain.scores`.

Works on whatever runs have finished: unfinished runs and runs without a usable checkpoint are
listed in the notes of every output, never silently left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from finegrain.experiment.aggregate import (
    averaged_scores,
    fine_label_summary,
    paired_difference,
    results_table,
    run_statistics,
    split_statistics,
    summary_table,
)
from finegrain.experiment.control import control_table
from finegrain.experiment.grid import cell, display_name
from finegrain.experiment.localisation import (
    COMPARED,
    CamStore,
    comparisons,
    localisation_summary_table,
    measure_localisation,
)
from finegrain.experiment.plan import Plan
from finegrain.experiment.presets import Preset
from finegrain.experiment.reliability import (
    calibration_runs,
    calibration_summary_table,
    calibration_table,
    reliability_figure,
    tier_rows,
    tier_summary_tables,
)
from finegrain.experiment.report import Figure, write_report
from finegrain.experiment.selection import RunSelection, describe_runs, select_runs
from finegrain.experiment.sources import source_table
from finegrain.experiment.tables import (
    Table,
    build_tables,
    control_summary_table,
    fine_label_table,
    source_summary_table,
    to_latex,
    to_markdown,
    truth_summary_table,
)
from finegrain.experiment.truth import phantom_truth, truth_table
from finegrain.io import atomic_write_csv, atomic_write_text
from finegrain.registry import Registry


@dataclass
class Outputs:
    tables: list[Table]
    results: pd.DataFrame
    summary: pd.DataFrame
    stats: pd.DataFrame
    selections: list[RunSelection]
    notes: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    #: paired differences against each selection's reference (:func:`paired_difference`)
    paired: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: each run's AUC^FG with its bootstrap CI (:func:`run_statistics`)
    run_stats: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: the rows of every :class:`ResultTable` by its key (empty frames left out)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: the figures of the result tables (Figure 5's CAM comparisons)
    table_figures: list[Figure] = field(default_factory=list)

    @property
    def localisation(self) -> pd.DataFrame:
        """Figure 5 measured on a phantom (``localisation.csv``)."""
        return self.frames.get("localisation", pd.DataFrame())

    @property
    def localisation_figures(self) -> list[Figure]:
        return self.table_figures


@dataclass
class Results:
    """Every number the outputs show, aggregated once from the selected runs; the context a
    :class:`ResultTable` computes from."""

    plan: Plan
    selections: list[RunSelection]
    notes: list[str]
    #: the split the figures and the result tables read (test when there is one)
    split: str
    results: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    stats: pd.DataFrame = field(default_factory=pd.DataFrame)
    paired: pd.DataFrame = field(default_factory=pd.DataFrame)
    run_stats: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: the phantom's truth files (``None`` on real data), read once for every table using them
    phantom: Any = None
    #: whether CAMs are computed (Figure 5)
    cams: bool = True
    #: every CAM of the report, computed once per run and image
    store: CamStore = field(default_factory=CamStore)
    #: each result table's rows by key, and the figures they made (name stem -> figure)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[tuple[str, Any, Figure]] = field(default_factory=list)
    #: the feature-map label of the CAMs (Figure 5)
    cells: str = ""
    #: each run's calibration and tier reading, computed once for both tables
    #: (:func:`finegrain.experiment.reliability.calibration_runs`)
    calibration: list[dict] | None = None


@dataclass(frozen=True)
class ResultTable:
    """A table of the report computed from the selected runs: ``compute(results)`` gives its
    rows (written to ``filename`` unless empty; may add figures to ``results.figures``),
    ``render(frame, results)`` its tables in the summary and the report. An error of
    ``compute`` is a note, never a lost report."""

    key: str
    filename: str
    compute: Callable[[Results], pd.DataFrame]
    render: Callable[[pd.DataFrame, Results], list[Table]]
    #: what the note says when ``compute`` fails
    what: str


#: The result tables, in the order the report shows them (filled at import; a module of yours
#: may register its own, as for the other registries).
RESULT_TABLES: Registry[ResultTable] = Registry("result table")


def _register(table: ResultTable) -> None:
    RESULT_TABLES.register(table.key, table)


def _truth(results: Results) -> pd.DataFrame:
    return truth_table(results.selections, results.phantom, results.split)


def _control(results: Results) -> pd.DataFrame:
    return control_table(results.selections, results.phantom, results.split)


def _sources(results: Results) -> pd.DataFrame:
    return source_table(results.selections, results.phantom, results.split)


def _calibration_runs(results: Results) -> list[dict]:
    if results.calibration is None:
        results.calibration = calibration_runs(
            results.selections, results.phantom, results.split, results.notes
        )
    return results.calibration


def _calibration(results: Results) -> pd.DataFrame:
    """Each run's calibration, and a reliability diagram per observation."""
    runs = _calibration_runs(results)
    frame = calibration_table(runs)
    for obs in dict.fromkeys(frame["observation"]):
        slug = obs.lower().replace(" ", "-")
        results.figures.append(
            (
                f"reliability-{slug}",
                reliability_figure(runs, obs, results.split),
                Figure(
                    f"{obs}: reliability diagram",
                    Path(f"reliability-{slug}.png"),
                    f"Share of positives against the mean positive probability in each of 15 "
                    f"equal-mass bins of the {results.split} cases (positives and negatives), "
                    "each method's seeds pooled, at the checkpoints chosen on validation "
                    "(scikit-learn's CalibrationDisplay); on the diagonal a probability means "
                    "what it says, below it the model over-calls positives.",
                ),
            )
        )
    return frame


def _tiers(results: Results) -> pd.DataFrame:
    return tier_rows(_calibration_runs(results))


def _fine_labels(results: Results) -> pd.DataFrame:
    return fine_label_results(results.selections, results.notes, results.split)


def _localisation(results: Results) -> pd.DataFrame:
    """Figure 5 for every comparison of U-Ones and PU-RM (at the plan's τ), each observation ×
    axes combination apart: the CAM figure, and on a phantom the table against its masks."""
    if not results.cams or not results.selections:
        return pd.DataFrame()
    cells = [cell(m, results.plan.tau) for m in COMPARED]
    frames = []
    for comparison in comparisons(results.selections, cells, results.notes):
        table, fig, results.cells = measure_localisation(
            comparison, results.store, split=results.split, truth=results.phantom
        )
        if table is not None:
            frames.append(table)
        names = " and ".join(comparison.names.values())
        against = " against the true lesion" if table is not None else ""
        results.figures.append(
            (
                f"cam-{comparison.slug}",
                fig,
                Figure(
                    f"{comparison.label}: CAMs of {names}{against} ({results.cells})",
                    Path(f"cam-{comparison.slug}.png"),
                    f"Figure 5: seed {comparison.seeds[0]} at the checkpoints chosen on "
                    f"validation, on the first {results.split} typical positive, atypical "
                    "positive and negative"
                    + ("; green: the true lesion outline" if table is not None else "")
                    + "; one colour scale per row (logit-difference units).",
                ),
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


for _table in (
    ResultTable(
        "truth", "truth.csv", _truth,
        lambda frame, r: [truth_summary_table(frame, r.split)],
        "AUC^FG against the phantom's image truth not measured",
    ),
    ResultTable(
        "sources", "sources.csv", _sources,
        lambda frame, r: [source_summary_table(frame, r.split)],
        "AUC^FG by where the atypical label comes from not measured",
    ),
    ResultTable(
        "calibration", "calibration.csv", _calibration,
        lambda frame, r: [calibration_summary_table(frame, r.split)],
        "calibration not measured",
    ),
    ResultTable(
        "tiers", "tiers.csv", _tiers,
        lambda frame, r: tier_summary_tables(frame, r.split),
        "the tier reading not measured",
    ),
    ResultTable(
        "control", "control.csv", _control,
        lambda frame, r: [control_summary_table(frame, r.split)],
        "the positive control not measured",
    ),
    ResultTable(
        "fine_labels", "fine-labels.csv", _fine_labels,
        lambda frame, r: [fine_label_table(frame)],
        "AUC^FG against the human fine labels not measured",
    ),
    ResultTable(
        "localisation", "localisation.csv", _localisation,
        lambda frame, r: [localisation_summary_table(frame, r.cells)],
        "CAM localisation not measured",
    ),
):  # fmt: skip
    _register(_table)


def aggregate(
    selections: list[RunSelection], notes: list[str], plan: Plan, *, cams: bool = True
) -> Results:
    """Every number of the outputs from the selected runs: the results and summary tables, the
    test statistics and paired differences against each selection's reference, each run's CI,
    and every :class:`ResultTable`."""
    results = Results(plan, selections, notes, reported_split(selections), cams=cams)
    results.results = results_table(selections)
    results.summary = summary_table(results.results)
    has_test = (results.results["split"] == "test").any() if not results.results.empty else False
    references = list(dict.fromkeys(plan.reference_cell(s) for s in plan.selections))
    if has_test and references:
        results.stats = pd.concat(
            [split_statistics(selections, reference=r).assign(reference=r[0]) for r in references],
            ignore_index=True,
        )
    results.paired = paired_differences(selections, plan)
    results.run_stats = run_statistics(selections) if selections else pd.DataFrame()
    if not results.stats.empty:
        for _, r in results.stats[results.stats["note"] != ""].iterrows():
            name = _variant_display(selections, r["variant"])
            notes.append(f"{r['observation']} {name}: {r['note']}")
    try:
        results.phantom = phantom_truth(selections)
    except (OSError, ValueError, KeyError) as exc:
        notes.append(f"the phantom's truth files not read: {exc}")
    for table in RESULT_TABLES.values():
        try:
            frame = table.compute(results)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            notes.append(f"{table.what}: {exc}")
            continue
        if not frame.empty:
            results.frames[table.key] = frame
    return results


def _variant_display(selections: Sequence[RunSelection], variant: str) -> str:
    """``PU-RM τ=0.3``, ``U-Ones (iterations 600)``: a variant's name in notes."""
    for sel in selections:
        if sel.spec.variant == variant:
            tau = "" if sel.spec.tau is None else f" τ={sel.spec.tau:g}"
            return sel.spec.display + tau
    return variant


def make_tables(results: Results) -> list[Table]:
    """The selections' tables, then each result table's (image truth, positive control, human
    fine labels, Figure 5 measured)."""
    tables = build_tables(results.plan, results.summary, results.stats, paired=results.paired)
    for key, frame in results.frames.items():
        tables += RESULT_TABLES[key].render(frame, results)
    return tables


def make_figures(out: Path, results: Results) -> list[Figure]:
    """τ sweeps (Figure 4), learning curves, score distributions and ROC curves on the reported
    split, and the result tables' figures (Figure 5), written under ``out/figures``."""
    from finegrain.experiment import plots

    plan, selections, summary, split = (
        results.plan, results.selections, results.summary, results.split,
    )  # fmt: skip
    if not selections:
        return []
    figures: list[Figure] = []
    fig_dir = out / "figures"
    for selection in plan.selections:
        if not selection.is_sweep or summary.empty:
            continue
        figure = plots.tau_ablation_figure(
            summary, plan.observations, swept=selection.swept, baselines=selection.baselines
        )
        plots.save_figure(figure, fig_dir / "tau-ablation")
        figures.append(
            Figure(
                f"{selection.title.split(':')[0]}: τ ablation",
                fig_dir / "tau-ablation.png",
                f"{display_name(selection.swept)} validation AUC^FG against τ (line: mean "
                "over seeds; band: ± std); dashed: "
                + " and ".join(display_name(b) for b in selection.baselines)
                + ".",
            )
        )
    compared = plan.compared_cells()
    for obs in plan.observations:
        slug = obs.lower().replace(" ", "-")
        if not results.results.empty and (results.results["observation"] == obs).any():
            figure = plots.learning_curve_figure(results.results, obs)
            plots.save_figure(figure, fig_dir / f"learning-{slug}")
            figures.append(
                Figure(
                    f"{obs}: learning curves",
                    fig_dir / f"learning-{slug}.png",
                    "Validation AUC^FG and AUC at every checkpoint; PCE's reach: the share "
                    "of the training positives since the previous checkpoint whose positive "
                    "probability was at most τ (where PCE differs from cross-entropy; τ-free "
                    "methods at the paper's τ); and the training positives' mean cross-entropy "
                    "−log p (log scale: near 0 once they are memorised); lines are seed means.",
                )
            )
        scores, own_fine = {}, set()
        for key, group in _variants(selections, obs, compared).items():
            frame = averaged_scores(group, split)
            if frame is None:
                results.notes.append(
                    f"{obs} {key}: no {split} predictions at a chosen checkpoint; left out of "
                    "the score distributions and the ROC curves"
                )
                continue
            scores[key] = frame
            if group[0].method.own_fine_score:
                own_fine.add(key)
        if not scores:
            continue
        plots.save_figure(
            plots.score_distribution_figure(scores, obs, split, own_fine),
            fig_dir / f"scores-{slug}",
        )
        figures.append(
            Figure(
                f"{obs}: score distributions",
                fig_dir / f"scores-{slug}.png",
                f"The score AUC^FG ranks, of atypical and typical positives on the {split} "
                "split: P(positive), or the fine score of a method with one of its own "
                "(seed-averaged scores at the checkpoints chosen on validation; counts of cases).",
            )
        )
        plots.save_figure(plots.roc_figure(scores, obs, split, own_fine), fig_dir / f"roc-{slug}")
        figures.append(
            Figure(
                f"{obs}: atypical vs typical ROC",
                fig_dir / f"roc-{slug}.png",
                f"ROC of typical (1) against atypical (0) positives on the {split} split, by "
                "the score AUC^FG ranks (P(positive), or a method's own fine score, with the "
                "paper's AUC^FG of P(positive) beside it in the legend). The curves and the "
                "legend's AUC^FG use seed-averaged scores (each case's score averaged over the "
                "seeds), so they differ from the tables, which give the mean of the per-seed "
                "AUC^FG.",
            )
        )
    for stem, fig, meta in results.figures:
        plots.save_figure(fig, fig_dir / stem)
        figures.append(Figure(meta.title, fig_dir / meta.png, meta.caption))
    return figures


def _variants(
    selections: Sequence[RunSelection], observation: str, cells: Sequence[tuple]
) -> dict[str, list[RunSelection]]:
    """The runs of ``observation`` of each table cell (method, τ), by variant name in the
    figures (``U-Ones``, ``U-Ones (iterations 600)``)."""
    out: dict[str, list[RunSelection]] = {}
    for method, tau in cells:
        for sel in selections:
            spec = sel.spec
            if spec.observation == observation and spec.method == method and spec.tau == tau:
                out.setdefault(spec.display, []).append(sel)
    return out


def write_outputs(
    out: str | Path,
    plan: Plan,
    *,
    preset: Preset,
    config: dict | None = None,
    cams: bool = True,
) -> Outputs:
    """Select the finished runs of ``plan`` and write every output: select -> aggregate ->
    tables -> figures -> files and report."""
    out = Path(out)
    selections, notes = select_runs(plan.runs)
    results = aggregate(selections, notes, plan, cams=cams)
    tables = make_tables(results)
    figures = make_figures(out, results)
    heading = preset_heading(preset, (config or {}).get("data"))
    paths = write_tables(out, results, tables, preset, heading=heading)
    paths["report.html"] = out / "report.html"
    write_report(
        paths["report.html"],
        title=f"finegrain benchmark — {preset.name}",
        lead=(
            ("" if heading == f"{preset.name} preset" else f"{heading}; ")
            + f"{len(selections)} finished runs of {len(plan.runs)}; observations: "
            f"{', '.join(plan.observations)}; seeds: {preset.seeds}; "
            f"{describe_runs(selections)}."
        ),
        tables=tables,
        figures=figures,
        config=config or {"preset": preset.to_dict()},
        notes=results.notes,
    )
    table_figures = [f for f in figures if f.png.name.startswith("cam-")]
    return Outputs(
        tables, results.results, results.summary, results.stats, selections, results.notes,
        paths, results.paired, results.run_stats, results.frames, table_figures,
    )  # fmt: skip


def preset_heading(preset: Preset, data: str | None = None) -> str:
    """``demo preset``; on other data than the built-in phantom (``data``: the recorded
    ``DataSource.describe()``), a preset's phantom condition did not apply, and it says so."""
    from finegrain.experiment.presets import phantom_condition

    condition = phantom_condition(preset)
    if not data or data == "phantom" or not condition:
        return f"{preset.name} preset"
    return (
        f"{preset.name} preset without its phantom condition ({', '.join(condition)}: the "
        f"built-in phantom's only); data {data}"
    )


def write_tables(
    out: Path,
    results: Results,
    tables: Sequence[Table],
    preset: Preset,
    *,
    heading: str | None = None,
) -> dict[str, Path]:
    """``results.csv``, ``paired-differences.csv``, ``run-auc-ci.csv``, each result table's CSV
    that has rows, ``summary.md`` and ``summary.tex``; returns their paths. ``heading`` names
    the preset in ``summary.md`` (default: :func:`preset_heading`)."""
    files = {
        "results": ("results.csv", results.results),
        "paired": ("paired-differences.csv", results.paired),
        "run_stats": ("run-auc-ci.csv", results.run_stats),
        **{k: (RESULT_TABLES[k].filename, frame) for k, frame in results.frames.items()},
    }
    paths: dict[str, Path] = {}
    for key, (name, frame) in files.items():
        paths[key] = out / name
        atomic_write_csv(paths[key], frame)
    header = f"# finegrain benchmark ({heading or preset_heading(preset)})\n\n"
    note_md = "".join(f"- {n}\n" for n in results.notes)
    paths["summary.md"] = out / "summary.md"
    atomic_write_text(
        paths["summary.md"],
        header
        + "\n".join(to_markdown(t) for t in tables)
        + ("\n## Notes\n\n" + note_md if results.notes else ""),
    )
    paths["summary.tex"] = out / "summary.tex"
    atomic_write_text(
        paths["summary.tex"],
        "% finegrain benchmark tables; needs \\usepackage{booktabs}\n"
        + "\n".join(to_latex(t) for t in tables),
    )
    return paths


def reported_split(selections: Sequence[RunSelection]) -> str:
    """The split the figures and the result tables read: ``test`` when any run has test
    predictions, else ``validate``."""
    return "test" if any(s.run.has_predictions("test") for s in selections) else "validate"


def fine_label_results(
    selections: Sequence[RunSelection], notes: list[str], split: str
) -> pd.DataFrame:
    """:func:`fine_label_summary` on ``split`` when the runs' index has human fine labels
    (OpenI's ``<Obs> subcategory mesh``); empty otherwise."""
    from finegrain.data.index import HUMAN_FINE_COLUMNS, index_columns, read_index

    index_path = next((s.config.get("index") for s in selections if s.config.get("index")), None)
    if index_path is None or not Path(index_path).is_file():
        return pd.DataFrame()
    if not set(HUMAN_FINE_COLUMNS) & set(index_columns(index_path)):
        return pd.DataFrame()  # the whole table is read only when it has human fine labels
    index = read_index(index_path)
    fine = fine_label_summary(selections, index, split=split)
    if fine.empty:
        notes.append(
            "AUC^FG against the human (MeSH) fine labels not computed: no run of an observation "
            "with MeSH labels has predictions at a chosen checkpoint"
        )
    return fine


def paired_differences(selections: Sequence[RunSelection], plan: Plan) -> pd.DataFrame:
    """:func:`paired_difference` of every table cell of each selection against the selection's
    reference cell (validate and test), for every combination of the extra axes."""
    frames, done = [], set()
    for selection in plan.selections:
        reference = plan.reference_cell(selection)
        if selection.is_sweep or not any(
            (s.spec.method, s.spec.tau) == reference for s in selections
        ):
            continue
        for method, tau in plan.table_cells(selection):
            for values in plan.settings:
                request = (method, tau, values, reference)
                if (method, tau) == reference or request in done:
                    continue
                done.add(request)
                frames.append(
                    paired_difference(
                        selections, method=method, tau=tau, reference=reference, settings=values
                    )
                )
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)
