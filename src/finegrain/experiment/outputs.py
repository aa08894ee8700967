"""Write the benchmark's outputs from its run directories: ``results.csv``, ``summary.md``,
``summary.tex``, figures (PNG + SVG) and ``report.html``.

The outputs flow one way (:func:`write_outputs`): the finished runs are **collected** once
(:func:`collect`), **aggregated** into every number the outputs show (:func:`aggregate`:
:class:`Results`), turned into **tables** and **figures**, then written with the **report**.

Works on whatever runs have finished: unfinished runs and runs without a usable checkpoint are
listed in the notes of every output, never silently left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from finegrain.experiment.aggregate import (
    averaged_scores,
    fg_cases,
    fine_label_summary,
    paired_difference,
    results_table,
    run_statistics,
    selected_predictions,
    split_statistics,
    summary_table,
)
from finegrain.experiment.control import control_table
from finegrain.experiment.grid import (
    RunSpec,
    Selection,
    get_selections,
    method_tau,
    run_directory,
)
from finegrain.experiment.localisation import (
    COMPARED,
    article,
    cam_grid,
    grid_label,
    localisation_summary_table,
    measure_localisation,
)
from finegrain.experiment.presets import Preset
from finegrain.experiment.report import Figure, write_report
from finegrain.experiment.selection import RunSelection, describe_runs, select_run
from finegrain.experiment.tables import (
    Table,
    build_tables,
    control_summary_table,
    fine_label_table,
    to_latex,
    to_markdown,
    truth_summary_table,
)
from finegrain.experiment.truth import phantom_truth, truth_table
from finegrain.io import atomic_write_csv, atomic_write_text
from finegrain.train.rundir import RunDirectory


@dataclass
class Outputs:
    tables: list[Table]
    results: pd.DataFrame
    summary: pd.DataFrame
    stats: pd.DataFrame
    selections: list[RunSelection]
    notes: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    #: paired differences against U-Ones (:func:`~finegrain.experiment.aggregate.paired_difference`)
    paired: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: each run's AUC^FG with its bootstrap CI (:func:`~finegrain.experiment.aggregate.run_statistics`)
    run_stats: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Figure 5 measured on a phantom (:func:`~finegrain.experiment.localisation.measure_localisation`)
    localisation: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: the side-by-side CAM figures of U-Ones and PU-RM that go with it
    localisation_figures: list[Figure] = field(default_factory=list)


def collect(
    specs: Sequence[RunSpec], runs_root: Path, preset: Preset
) -> tuple[list[RunSelection], list[str]]:
    """Select the checkpoint of every finished run of ``specs`` (each in its folder under
    ``runs_root``, :func:`~finegrain.experiment.runner.run_directory`); notes for the others."""
    selections, notes = [], []
    missing = []
    for spec in specs:
        run_dir = run_directory(spec, preset, runs_root)
        if not RunDirectory(run_dir).is_done():
            missing.append(spec.label)
            continue
        sel = select_run(run_dir, spec=spec)
        notes += [f"{spec.label}: {n}" for n in sel.notes]
        selections.append(sel)
    if missing:
        notes.insert(
            0,
            f"{len(missing)} of {len(specs)} runs not finished (left out of the tables): "
            + ", ".join(missing),
        )
    return selections, notes


@dataclass
class Results:
    """Every number the outputs show, aggregated once from the finished runs."""

    selections: list[RunSelection]
    notes: list[str]
    #: the split the figures, the fine-label and localisation tables read
    split: str
    results: pd.DataFrame
    summary: pd.DataFrame
    stats: pd.DataFrame
    paired: pd.DataFrame
    run_stats: pd.DataFrame
    fine: pd.DataFrame
    localisation: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: ``[(observation, matplotlib figure)]`` of the localisation comparison, and its cells
    localisation_figures: list = field(default_factory=list)
    cells: str = ""
    #: on a phantom: AUC^FG against image truth and the oracle (:mod:`finegrain.experiment.truth`)
    truth: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: on a phantom, runs with label noise: the positive control (:mod:`finegrain.experiment.control`)
    control: pd.DataFrame = field(default_factory=pd.DataFrame)


def aggregate(
    selections: list[RunSelection],
    notes: list[str],
    grid: Sequence[Selection],
    preset: Preset,
    *,
    methods: Sequence[str] | None = None,
    cams: bool = True,
) -> Results:
    """Every number of the outputs from the collected runs (``grid``: the selections whose
    comparisons are made; each compares its methods with its own reference)."""
    results = results_table(selections)
    summary = summary_table(results)
    has_test = (results["split"] == "test").any() if not results.empty else False
    # each selection's test table compares with its own reference (DeLong column)
    references = list(dict.fromkeys(sel.reference for sel in grid))
    stats = pd.DataFrame()
    if has_test and references:
        stats = pd.concat(
            [split_statistics(selections, reference=r).assign(reference=r) for r in references],
            ignore_index=True,
        )
    paired = paired_differences(selections, grid, preset.tau, methods)
    run_stats = run_statistics(selections) if selections else pd.DataFrame()
    if not stats.empty:
        for _, r in stats[stats["note"] != ""].iterrows():
            name = _variant_display(selections, r["variant"])
            notes.append(f"{r['observation']} {name}: {r['note']}")
    split = reported_split(selections)
    fine = fine_label_results(selections, notes, split)
    phantom = None  # the phantom's truth files, read once for the three tables that use them
    try:
        phantom = phantom_truth(selections)
    except (OSError, ValueError, KeyError) as exc:
        notes.append(f"the phantom's truth files not read: {exc}")
    localisation, loc_figures, cells = pd.DataFrame(), [], ""
    if cams and selections:
        try:
            localisation, loc_figures, cells = measure_localisation(
                selections, preset.observations, tau=preset.tau, split=split, truth=phantom
            )
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            notes.append(f"CAM localisation not measured: {exc}")
    truth = pd.DataFrame()
    try:
        truth = truth_table(selections, phantom, split)
    except (OSError, ValueError, KeyError) as exc:
        notes.append(f"AUC^FG against the phantom's image truth not measured: {exc}")
    control = pd.DataFrame()
    try:
        control = control_table(selections, phantom, split)
    except (OSError, ValueError, KeyError) as exc:
        notes.append(f"the positive control not measured: {exc}")
    return Results(
        selections, notes, split, results, summary, stats, paired, run_stats, fine,
        localisation, loc_figures, cells, truth, control,
    )  # fmt: skip


def _variant_display(selections: Sequence[RunSelection], variant: str) -> str:
    """``PU-RM τ=0.3``, ``U-Ones (iterations 600)``: a variant's name in notes."""
    for sel in selections:
        if sel.spec.variant == variant:
            tau = "" if sel.spec.tau is None else f" τ={sel.spec.tau:g}"
            return sel.spec.display + tau
    return variant


def make_tables(
    results: Results,
    grid: Sequence[Selection],
    preset: Preset,
    *,
    methods: Sequence[str] | None = None,
    taus: Sequence[float] | None = None,
) -> list[Table]:
    """The selections' tables, the fine-label table (human fine labels) and the localisation
    table (phantom), from the aggregated results."""
    settings = list(dict.fromkeys(s.spec.settings for s in results.selections)) or [()]
    tables = build_tables(
        grid,
        list(preset.observations),
        results.summary,
        results.stats,
        tau=preset.tau,
        methods=methods,
        taus=taus,
        paired=results.paired,
        settings=settings,
    )
    if not results.truth.empty:
        tables.append(truth_summary_table(results.truth, results.split))
    if not results.control.empty:
        tables.append(control_summary_table(results.control, results.split))
    if not results.fine.empty:
        tables.append(fine_label_table(results.fine))
    if not results.localisation.empty:
        tables.append(localisation_summary_table(results.localisation, results.cells))
    return tables


def make_figures(
    out: Path,
    results: Results,
    grid: Sequence[Selection],
    preset: Preset,
    methods: Sequence[str] | None,
    *,
    cams: bool = True,
) -> list[Figure]:
    """τ sweeps (Figure 4), score distributions and ROC curves on the reported split and the
    CAMs (Figure 5), written under ``out/figures``."""
    from finegrain.experiment import plots

    selections, summary, split = results.selections, results.summary, results.split
    if not selections:
        return []
    figures: list[Figure] = []
    fig_dir = out / "figures"
    for selection in grid:
        if not selection.is_sweep or summary.empty:
            continue
        figure = plots.tau_ablation_figure(
            summary, preset.observations, swept=selection.swept, baselines=selection.baselines
        )
        plots.save_figure(figure, fig_dir / "tau-ablation")
        figures.append(
            Figure(
                f"{selection.title.split(':')[0]}: τ ablation",
                fig_dir / "tau-ablation.png",
                f"{plots.display_name(selection.swept)} validation AUC^FG against τ (line: mean "
                "over seeds; band: ± std); dashed: "
                + " and ".join(plots.display_name(b) for b in selection.baselines)
                + ".",
            )
        )
    table_methods = _table_methods(grid, methods)
    for obs in preset.observations:
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
                    "methods at the run's τ); and the training positives' mean cross-entropy "
                    "−log p (log scale: near 0 once they are memorised); lines are seed means.",
                )
            )
        scores = {}
        for key, group in _variants(selections, obs, table_methods, preset.tau).items():
            frame = averaged_scores(group, split)
            if frame is not None:
                scores[key] = frame
        if not scores:
            continue
        plots.save_figure(
            plots.score_distribution_figure(scores, obs, split), fig_dir / f"scores-{slug}"
        )
        figures.append(
            Figure(
                f"{obs}: score distributions",
                fig_dir / f"scores-{slug}.png",
                f"P(positive) of atypical and typical positives on the {split} split, or the "
                "fine score of a method trained on fine labels (what it ranks them by; "
                "seed-averaged scores at the checkpoints chosen on validation; counts of cases).",
            )
        )
        plots.save_figure(plots.roc_figure(scores, obs, split), fig_dir / f"roc-{slug}")
        figures.append(
            Figure(
                f"{obs}: atypical vs typical ROC",
                fig_dir / f"roc-{slug}.png",
                f"ROC of typical (1) against atypical (0) positives on the {split} split, by "
                "P(positive), or by the fine score for a method trained on fine labels. The "
                "curves and the legend's AUC^FG use seed-averaged scores (each case's score "
                "averaged over the seeds), so they differ from the tables, which give the mean "
                "of the per-seed AUC^FG.",
            )
        )
    if cams:
        figures += write_cams(out, selections, preset, results.notes)
    return figures


def _table_methods(grid: Sequence[Selection], methods: Sequence[str] | None) -> list[str]:
    """The methods of the selections' tables, in order, once each."""
    return list(dict.fromkeys(m for sel in grid for m in sel.table_methods(methods)))


def _variants(
    selections: Sequence[RunSelection], observation: str, methods: Sequence[str], tau: float
) -> dict[str, list[RunSelection]]:
    """The runs of ``observation`` of each table method (at ``tau`` when it uses τ), by variant
    name in the figures (``U-Ones``, ``U-Ones (iterations 600)``)."""
    out: dict[str, list[RunSelection]] = {}
    for method in methods:
        t = method_tau(method, tau)
        for sel in selections:
            spec = sel.spec
            if spec.observation == observation and spec.method == method and spec.tau == t:
                out.setdefault(spec.display, []).append(sel)
    return out


def write_cams(
    out: Path, selections: Sequence[RunSelection], preset: Preset, notes: list[str]
) -> list[Figure]:
    """Class activation maps (the paper's Figure 5) of U-Ones vs PU-RM (:data:`COMPARED`; seed
    0, chosen checkpoints) on one atypical and one typical test positive per observation.

    Skipped with a note when ``finegrain.predict.cam`` is unavailable or a piece is missing.
    """
    try:
        from finegrain.predict.cam import cam_images
    except ImportError as exc:
        notes.append(f"CAMs not drawn: {exc}")
        return []
    from finegrain.data.index import index_paths

    figures = []
    for obs in preset.observations:
        pair = []
        for method in COMPARED:
            t = method_tau(method, preset.tau)
            found = [
                s
                for s in selections
                if s.spec.observation == obs
                and s.spec.method == method
                and s.spec.tau == t
                and s.spec.seed == 0
                and not s.spec.settings
                and s.iteration is not None
            ]
            if found:
                pair.append(found[0])
        if len(pair) != 2:
            continue
        split = "test" if pair[0].run.has_predictions("test") else "validate"
        cases = fg_cases(selected_predictions(pair[0], split))
        picks = [
            cases[cases["subcategory"] == sub].sort_values("image_id").head(1)
            for sub in ("atypical", "typical")
        ]
        picks = pd.concat(picks)
        if picks.empty:
            continue
        ckpts = [s.run.checkpoint_path(s.iteration) for s in pair]
        config = pair[0].config
        missing = [str(c) for c in ckpts if not c.is_file()]
        if missing or "index" not in config:
            what = ", ".join(missing) if missing else "the index path in the run's config"
            notes.append(f"{obs}: CAMs not drawn: missing {what}")
            continue
        try:
            found = index_paths(config["index"], picks["image_id"])
        except (OSError, KeyError) as exc:
            notes.append(f"{obs}: CAMs not drawn: {exc}")
            continue
        paths = [Path(p) for p in found.values()]
        slug = obs.lower().replace(" ", "-")
        try:
            table = cam_images(ckpts, paths, out / "figures" / f"cam-{slug}", progress=False)
        except (OSError, ValueError, RuntimeError) as exc:
            notes.append(f"{obs}: CAMs not drawn: {exc}")
            continue
        try:
            from finegrain.train.rundir import load_model

            model, meta = load_model(ckpts[0])
            cells = grid_label(cam_grid(model, int(meta.get("image_size") or preset.image_size)))
        except (OSError, ValueError, RuntimeError) as exc:
            cells = f"feature-map size unknown ({exc})"
        for (_, row), sub in zip(table.iterrows(), picks["subcategory"], strict=True):
            if row["error"]:
                notes.append(f"{obs}: CAM of {row['path']} failed: {row['error']}")
                continue
            figures.append(
                Figure(
                    f"{obs}: CAM of {article(sub)} {sub} test positive ({cells})",
                    Path(row["output"]),
                    "Class activation maps (last feature map weighted by the classifier's "
                    "positive-class weights) of U-Ones (left) and PU-RM (right), seed 0 at "
                    f"the checkpoints chosen on validation; p = predicted probability. {cells}"
                    + (
                        " — each cell covers a large part of the lung, so the map shows where "
                        "the evidence is only coarsely."
                        if cells.endswith("localisation")
                        else "."
                    ),
                )
            )
    return figures


def write_outputs(
    out: str | Path,
    specs: Sequence[RunSpec],
    *,
    preset: Preset,
    methods: Sequence[str] | None = None,
    taus: Sequence[float] | None = None,
    config: dict | None = None,
    cams: bool = True,
) -> Outputs:
    """Read the finished runs of ``specs`` under ``out/runs`` and write every output:
    collect -> aggregate -> tables -> figures -> files and report."""
    out = Path(out)
    grid = get_selections(preset.selections)
    selections, notes = collect(specs, out / "runs", preset)
    results = aggregate(selections, notes, grid, preset, methods=methods, cams=cams)
    tables = make_tables(results, grid, preset, methods=methods, taus=taus)
    located = localisation_figures(out, results)
    figures = make_figures(out, results, grid, preset, methods, cams=cams) + located
    paths = write_tables(out, results, tables, preset)
    paths["report.html"] = out / "report.html"
    write_report(
        paths["report.html"],
        title=f"finegrain benchmark — {preset.name}",
        lead=(
            f"{len(selections)} finished runs of {len(specs)}; observations: "
            f"{', '.join(preset.observations)}; seeds: {preset.seeds}; "
            f"{describe_runs(selections)}."
        ),
        tables=tables,
        figures=figures,
        config=config or {"preset": preset.to_dict()},
        notes=results.notes,
    )
    return Outputs(
        tables, results.results, results.summary, results.stats, selections, results.notes,
        paths, results.paired, results.run_stats, results.localisation, located,
    )  # fmt: skip


def write_tables(
    out: Path, results: Results, tables: Sequence[Table], preset: Preset
) -> dict[str, Path]:
    """``results.csv``, ``fine-labels.csv``, ``localisation.csv``, ``paired-differences.csv``,
    ``run-auc-ci.csv``, ``truth.csv`` and ``control.csv`` (phantom), ``summary.md`` and
    ``summary.tex``; returns their paths."""
    files = {
        "results": ("results.csv", results.results),
        "fine_labels": ("fine-labels.csv", results.fine),
        "localisation": ("localisation.csv", results.localisation),
        "paired": ("paired-differences.csv", results.paired),
        "run_stats": ("run-auc-ci.csv", results.run_stats),
        "truth": ("truth.csv", results.truth),
        "control": ("control.csv", results.control),
    }
    paths: dict[str, Path] = {}
    for key, (name, frame) in files.items():
        if key in ("fine_labels", "localisation", "truth", "control") and frame.empty:
            continue
        paths[key] = out / name
        atomic_write_csv(paths[key], frame)
    header = f"# finegrain benchmark ({preset.name} preset)\n\n"
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
    """The split the figures, the fine-label and the localisation tables read: ``test`` when
    any run has test predictions, else ``validate``."""
    return "test" if any(s.run.has_predictions("test") for s in selections) else "validate"


def localisation_figures(out: Path, results: Results) -> list[Figure]:
    """Figure 5, measured, on a phantom benchmark: one CAM comparison figure per observation
    (nothing on data without true lesion masks)."""
    from finegrain.experiment import plots

    figures = []
    for obs, fig in results.localisation_figures:
        stem = out / "figures" / f"localisation-{obs.lower().replace(' ', '-')}"
        plots.save_figure(fig, stem)
        names = " and ".join(plots.display_name(m) for m in COMPARED)
        figures.append(
            Figure(
                f"{obs}: CAMs of {names} against the true lesion ({results.cells})",
                stem.with_suffix(".png"),
                f"Seed 0 at the checkpoints chosen on validation, on the first {results.split} "
                "typical positive, atypical positive and negative; green: the true lesion "
                "outline; one colour scale per row (logit-difference units).",
            )
        )
    return figures


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


def paired_differences(
    selections: Sequence[RunSelection],
    grid: Sequence[Selection],
    tau: float,
    methods: Sequence[str] | None = None,
) -> pd.DataFrame:
    """:func:`paired_difference` of every table method of each selection against the
    selection's reference (validate and test), for every combination of the extra axes."""
    settings = list(dict.fromkeys(s.spec.settings for s in selections)) or [()]
    frames, done = [], set()
    for selection in grid:
        reference = selection.reference
        if not any(s.spec.method == reference for s in selections):
            continue
        for method in selection.table_methods(methods):
            t = method_tau(method, tau)
            for values in settings:
                request = (method, t, values, reference)
                if method == reference or request in done:
                    continue
                done.add(request)
                frames.append(
                    paired_difference(
                        selections, method=method, tau=t, reference=reference, settings=values
                    )
                )
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)
