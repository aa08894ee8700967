"""Write the benchmark's outputs from its run directories: ``results.csv``, ``summary.md``,
``summary.tex``, figures (PNG + SVG) and ``report.html``.

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
from finegrain.experiment.grid import (
    METHOD_NAMES,
    REFERENCE_METHOD,
    SELECTIONS,
    RunSpec,
    method_tau,
)
from finegrain.experiment.localisation import (
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
    fine_label_table,
    to_latex,
    to_markdown,
)
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


def collect(specs: Sequence[RunSpec], runs_root: Path) -> tuple[list[RunSelection], list[str]]:
    """Select the checkpoint of every finished run of ``specs``; notes for the others."""
    selections, notes = [], []
    missing = []
    for spec in specs:
        run_dir = spec.directory(runs_root)
        if not RunDirectory(run_dir).is_done():
            missing.append(spec.label)
            continue
        sel = select_run(run_dir)
        if sel.spec != spec:
            notes.append(
                f"{run_dir}: its recorded config describes {sel.spec.label}, expected {spec.label}"
            )
        notes += [f"{spec.label}: {n}" for n in sel.notes]
        selections.append(sel)
    if missing:
        notes.insert(
            0,
            f"{len(missing)} of {len(specs)} runs not finished (left out of the tables): "
            + ", ".join(missing),
        )
    return selections, notes


def _table_methods(preset: Preset, methods: Sequence[str] | None) -> list[str]:
    names: list[str] = []
    for sel in preset.selections if "all" not in preset.selections else SELECTIONS:
        if sel == "figure4":
            continue
        for m in methods if methods is not None else SELECTIONS[sel]:
            if m not in names:
                names.append(m)
    return names


def write_figures(
    out: Path,
    selections: Sequence[RunSelection],
    summary: pd.DataFrame,
    preset: Preset,
    methods: Sequence[str] | None,
    split: str,
) -> list[Figure]:
    """τ ablation (if Figure 4 is selected), score distributions and ROC curves on ``split``."""
    from finegrain.experiment import plots

    figures: list[Figure] = []
    fig_dir = out / "figures"
    wanted = set(preset.selections) if "all" not in preset.selections else set(SELECTIONS)
    if "figure4" in wanted and not summary.empty:
        plots.save_figure(
            plots.tau_ablation_figure(summary, preset.observations), fig_dir / "tau-ablation"
        )
        figures.append(
            Figure(
                "Figure 4: τ ablation",
                fig_dir / "tau-ablation.png",
                "PU-RM validation AUC^FG against τ (line: mean over seeds; band: ± std); dashed: "
                "U-Ones and U-Ignore.",
            )
        )
    for obs in preset.observations:
        scores = {}
        for m in _table_methods(preset, methods):
            t = method_tau(m, preset.tau)
            group = [
                s
                for s in selections
                if s.spec.observation == obs and s.spec.method == m and s.spec.tau == t
            ]
            frame = averaged_scores(group, split) if group else None
            if frame is not None:
                scores[m] = frame
        if not scores:
            continue
        slug = obs.lower().replace(" ", "-")
        plots.save_figure(
            plots.score_distribution_figure(scores, obs, split), fig_dir / f"scores-{slug}"
        )
        figures.append(
            Figure(
                f"{obs}: score distributions",
                fig_dir / f"scores-{slug}.png",
                f"P(positive) of atypical and typical positives on the {split} split "
                "(seed-averaged scores at the checkpoints chosen on validation; counts of cases).",
            )
        )
        plots.save_figure(plots.roc_figure(scores, obs, split), fig_dir / f"roc-{slug}")
        figures.append(
            Figure(
                f"{obs}: atypical vs typical ROC",
                fig_dir / f"roc-{slug}.png",
                f"ROC of typical (1) against atypical (0) positives on the {split} split. The "
                "curves and the legend's AUC^FG use seed-averaged scores (each case's probability "
                "averaged over the seeds), so they differ from the tables, which give the mean "
                "of the per-seed AUC^FG.",
            )
        )
    return figures


def write_cams(
    out: Path, selections: Sequence[RunSelection], preset: Preset, notes: list[str]
) -> list[Figure]:
    """Class activation maps (the paper's Figure 5) of U-Ones vs PU-RM (seed 0, chosen
    checkpoints) on one atypical and one typical test positive per observation.

    Skipped with a note when ``finegrain.predict.cam`` is unavailable or a piece is missing.
    """
    try:
        from finegrain.predict.cam import cam_images
    except ImportError as exc:
        notes.append(f"CAMs not drawn: {exc}")
        return []
    from finegrain.data.index import read_index

    figures = []
    for obs in preset.observations:
        pair = []
        for method in ("u-ones", "pu-rm"):
            t = method_tau(method, preset.tau)
            found = [
                s
                for s in selections
                if s.spec.observation == obs
                and s.spec.method == method
                and s.spec.tau == t
                and s.spec.seed == 0
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
        index = read_index(config["index"]).set_index("image_id")  # paths resolved by read_index
        paths = [Path(str(index.loc[image_id, "path"])) for image_id in picks["image_id"]]
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
    """Read the finished runs of ``specs`` under ``out/runs`` and write every output."""
    out = Path(out)
    selections, notes = collect(specs, out / "runs")
    results = results_table(selections)
    summary = summary_table(results)
    has_test = (results["split"] == "test").any() if not results.empty else False
    stats = split_statistics(selections) if has_test else pd.DataFrame()
    paired = paired_differences(selections, _table_methods(preset, methods), preset.tau)
    run_stats = run_statistics(selections) if selections else pd.DataFrame()
    if not stats.empty:
        for _, r in stats[stats["note"] != ""].iterrows():
            tau = "" if pd.isna(r["tau"]) else f" τ={r['tau']:g}"
            notes.append(
                f"{r['observation']} {METHOD_NAMES.get(r['method'], r['method'])}{tau}: {r['note']}"
            )
    tables = build_tables(
        list(preset.selections),
        list(preset.observations),
        summary,
        stats,
        tau=preset.tau,
        methods=methods,
        taus=taus,
        paired=paired,
    )
    split = reported_split(selections)
    fine = fine_label_results(selections, notes, split)
    if not fine.empty:
        tables.append(fine_label_table(fine))
    localisation, loc_figures = pd.DataFrame(), []
    if cams and selections:
        localisation, loc_figures = write_localisation(
            out, selections, preset, split, tables, notes
        )
    paths = {"results": out / "results.csv"}
    if not localisation.empty:
        paths["localisation"] = out / "localisation.csv"
    atomic_write_csv(paths["results"], results)
    if not fine.empty:
        paths["fine_labels"] = out / "fine-labels.csv"
        atomic_write_csv(paths["fine_labels"], fine)
    paths["paired"] = out / "paired-differences.csv"
    atomic_write_csv(paths["paired"], paired)
    paths["run_stats"] = out / "run-auc-ci.csv"
    atomic_write_csv(paths["run_stats"], run_stats)
    header = f"# finegrain benchmark ({preset.name} preset)\n\n"
    note_md = "".join(f"- {n}\n" for n in notes)
    paths["summary.md"] = out / "summary.md"
    atomic_write_text(
        paths["summary.md"],
        header
        + "\n".join(to_markdown(t) for t in tables)
        + ("\n## Notes\n\n" + note_md if notes else ""),
    )
    paths["summary.tex"] = out / "summary.tex"
    atomic_write_text(
        paths["summary.tex"],
        "% finegrain benchmark tables; needs \\usepackage{booktabs}\n"
        + "\n".join(to_latex(t) for t in tables),
    )
    figures = write_figures(out, selections, summary, preset, methods, split) if selections else []
    if cams and selections:
        figures += write_cams(out, selections, preset, notes)
    figures += loc_figures
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
        notes=notes,
    )
    return Outputs(
        tables, results, summary, stats, selections, notes, paths, paired, run_stats,
        localisation, loc_figures,
    )  # fmt: skip


def reported_split(selections: Sequence[RunSelection]) -> str:
    """The split the figures, the fine-label and the localisation tables read: ``test`` when
    any run has test predictions, else ``validate``."""
    return "test" if any(s.run.has_predictions("test") for s in selections) else "validate"


def write_localisation(
    out: Path,
    selections: Sequence[RunSelection],
    preset: Preset,
    split: str,
    tables: list,
    notes: list[str],
) -> tuple[pd.DataFrame, list[Figure]]:
    """Figure 5, measured, on a phantom benchmark's ``split``: ``localisation.csv``, its table
    (appended to ``tables``) and one CAM comparison figure per observation. Nothing on data
    without true lesion masks (real data)."""
    from finegrain.experiment import plots

    try:
        table, loc_figures, cells = measure_localisation(
            selections, preset.observations, tau=preset.tau, split=split
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        notes.append(f"CAM localisation not measured: {exc}")
        return pd.DataFrame(), []
    if table.empty:
        return table, []
    atomic_write_csv(out / "localisation.csv", table)
    tables.append(localisation_summary_table(table, cells))
    figures = []
    for obs, fig in loc_figures:
        stem = out / "figures" / f"localisation-{obs.lower().replace(' ', '-')}"
        plots.save_figure(fig, stem)
        figures.append(
            Figure(
                f"{obs}: CAMs of U-Ones and PU-RM against the true lesion ({cells})",
                stem.with_suffix(".png"),
                f"Seed 0 at the checkpoints chosen on validation, on the first {split} typical "
                "positive, atypical positive and negative; green: the true lesion outline; one "
                "colour scale per row (logit-difference units).",
            )
        )
    return table, figures


def fine_label_results(
    selections: Sequence[RunSelection], notes: list[str], split: str
) -> pd.DataFrame:
    """:func:`fine_label_summary` on ``split`` when the runs' index has human fine labels
    (OpenI's ``<Obs> subcategory mesh``); empty otherwise."""
    from finegrain.data.index import OPTIONAL_COLUMNS, read_index

    index_path = next((s.config.get("index") for s in selections if s.config.get("index")), None)
    if index_path is None or not Path(index_path).is_file():
        return pd.DataFrame()
    index = read_index(index_path)
    if not any(c in index.columns for c in OPTIONAL_COLUMNS):
        return pd.DataFrame()
    fine = fine_label_summary(selections, index, split=split)
    if fine.empty:
        notes.append(
            "AUC^FG against the human (MeSH) fine labels not computed: no run of an observation "
            "with MeSH labels has predictions at a chosen checkpoint"
        )
    return fine


def paired_differences(
    selections: Sequence[RunSelection], methods: Sequence[str], tau: float
) -> pd.DataFrame:
    """:func:`paired_difference` of every table method against U-Ones (validate and test)."""
    frames = [
        paired_difference(selections, method=m, tau=method_tau(m, tau))
        for m in methods
        if m != REFERENCE_METHOD
    ]
    has_reference = any(s.spec.method == REFERENCE_METHOD for s in selections)
    if not frames or not has_reference:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)
