"""The paper's tables: rows = methods, columns = observations, AUC^FG as mean ± std (4 decimals).

Every AUC^FG column names the cases it was computed on (atypical / typical positives of the
split), every AUC column the positives / negatives, so a reader can judge each number's noise.
AUC^FG ranks the score each method declares (:mod:`finegrain.scores`); a row of a method with a
fine score of its own shows the paper's AUC^FG of its positive probability beside it.

Tables are built once as plain data (:class:`Table`) and rendered to Markdown, LaTeX or HTML.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from finegrain.experiment.grid import RunSpec, Selection, check_method, display_name, format_tau
from finegrain.scores import PROBABILITY_METRIC, RANKED_METRIC

if TYPE_CHECKING:  # pragma: no cover
    from finegrain.experiment.plan import Plan

DASH = "–"


@dataclass
class Table:
    """A rendered-agnostic table: a title, a caption, a header row and string cells."""

    key: str
    title: str
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    notes: list[str] = field(default_factory=list)


def mean_std(mean: float, std: float, *, digits: int = 4) -> str:
    """``0.7123 ± 0.0101``; a missing mean is a dash, a missing std (one seed) is left out."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return DASH
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _number(x: float, digits: int = 4) -> str:
    return DASH if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def p_value(p: float) -> str:
    """``0.0123``, ``< 0.0001``, or a dash when missing."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return DASH
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


@dataclass(frozen=True)
class Row:
    """A row of a table: its label and the variant of the grid it shows
    (:attr:`finegrain.experiment.grid.RunSpec.variant`)."""

    label: str
    variant: str
    method: str = ""

    @property
    def own_fine_score(self) -> bool:
        """Whether the row's method ranks a fine score of its own (the paper's AUC^FG of its
        positive probability is then shown beside)."""
        return bool(self.method) and check_method(self.method).own_fine_score


def variant_rows(
    cells: Sequence[tuple[str, float | None]], settings: Sequence[tuple] = ((),)
) -> list[Row]:
    """A row per cell (method, τ) and per combination of the grid's other axes
    (``settings``)."""
    rows = []
    for method, tau in cells:
        for values in settings:
            spec = RunSpec("", method, tau, 0, tuple(values))
            rows.append(Row(spec.display, spec.variant, method))
    return rows


def ranked_cell(summary_row: dict, row: Row) -> str:
    """``0.7123 ± 0.0101``: the mean ± std of the ranked AUC^FG, and for a method with a fine
    score of its own the paper's AUC^FG of its positive probability beside
    (``0.7123 ± 0.0101 (P(positive) 0.6012 ± 0.0200)``)."""
    text = mean_std(
        summary_row.get(f"{RANKED_METRIC}_mean"), summary_row.get(f"{RANKED_METRIC}_std")
    )
    if row.own_fine_score and text != DASH:
        paper = mean_std(
            summary_row.get(f"{PROBABILITY_METRIC}_mean"),
            summary_row.get(f"{PROBABILITY_METRIC}_std"),
        )
        text += f" (P(positive) {paper})"
    return text


def _lookup(frame: pd.DataFrame, observation: str, variant: str, **eq) -> dict:
    if frame is None or frame.empty:
        return {}
    sel = (frame["observation"] == observation) & (frame["variant"] == variant)
    for column, value in eq.items():
        sel &= frame[column] == value
    rows = frame[sel]
    return {} if rows.empty else rows.iloc[0].to_dict()


#: What each metric's class counts are, for the column headers.
COUNT_LABELS: dict[str, tuple[str, str, str, str]] = {
    "auc_fg": ("n_atypical", "n_typical", "atypical", "typical"),
    "auc_fg_fine": ("n_atypical", "n_typical", "atypical", "typical"),
    "auc": ("n_positive", "n_negative", "pos.", "neg."),
}


def _counts(frame: pd.DataFrame, observation: str, split: str, metric: str) -> str:
    """``"412 atypical / 388 typical"`` for ``observation`` on ``split`` ("" when unknown).

    Every method sees the same split, so one count per column; should the runs disagree, the
    range is shown instead of hiding it.
    """
    first, second, name1, name2 = COUNT_LABELS[metric]
    if frame is None or frame.empty or first not in frame.columns:
        return ""
    rows = frame[(frame["observation"] == observation) & (frame["split"] == split)]
    parts = []
    for column, name in ((first, name1), (second, name2)):
        values = sorted({int(v) for v in rows[column].dropna() if int(v) >= 0})
        if not values:
            return ""
        text = str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"
        parts.append(f"{text} {name}")
    return " / ".join(parts)


def _with_counts(title: str, counts: str) -> str:
    return f"{title} (n = {counts})" if counts else title


def _reference_of(stats: pd.DataFrame | None, reference: str) -> dict:
    """``{"reference": reference}`` when the statistics carry one per reference, else ``{}``."""
    return {"reference": reference} if stats is not None and "reference" in stats else {}


def method_table(
    key: str,
    title: str,
    variants: Sequence[Row],
    observations: Sequence[str],
    summary: pd.DataFrame,
    *,
    split: str = "validate",
    metric: str = RANKED_METRIC,
) -> Table:
    """Rows = variants, columns = observations, ``metric`` mean ± std over seeds on ``split``
    (the ranked AUC^FG by default, with the paper's beside it where it differs)."""
    rows = []
    for row in variants:
        cells = [row.label]
        for obs in observations:
            r = _lookup(summary, obs, row.variant, split=split)
            if metric == RANKED_METRIC:
                cells.append(ranked_cell(r, row))
            else:
                cells.append(mean_std(r.get(f"{metric}_mean"), r.get(f"{metric}_std")))
        rows.append(cells)
    header = ["Method"] + [
        _with_counts(obs, _counts(summary, obs, split, metric)) for obs in observations
    ]
    return Table(key, title, header, rows)


def test_table(
    key: str,
    title: str,
    variants: Sequence[Row],
    observations: Sequence[str],
    summary: pd.DataFrame,
    stats: pd.DataFrame,
    *,
    reference: str,
) -> Table:
    """Test AUC^FG at the validation-chosen checkpoints, its bootstrap CI and DeLong p against
    the ``reference`` method."""
    header = ["Method"]
    for obs in observations:
        header += [
            _with_counts(f"{obs} AUC^FG", _counts(summary, obs, "test", RANKED_METRIC)),
            f"{obs} 95% CI",
            f"{obs} p vs {display_name(reference)}",
        ]
    rows = []
    for row in variants:
        cells = [row.label]
        for obs in observations:
            r = _lookup(summary, obs, row.variant, split="test")
            s = _lookup(stats, obs, row.variant, **_reference_of(stats, reference))
            cells.append(ranked_cell(r, row))
            lo, hi = s.get("ci_low", math.nan), s.get("ci_high", math.nan)
            cells.append(DASH if math.isnan(lo) else f"[{_number(lo)}, {_number(hi)}]")
            cells.append(p_value(s.get("delong_p", math.nan)))
        rows.append(cells)
    return Table(key, title, header, rows)


def signed(x: float, digits: int = 4) -> str:
    """``+0.0123`` / ``−0.0045`` (a true minus sign); a dash when missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    return f"{x:+.{digits}f}".replace("-", "−")


def difference_with_ci(row: dict) -> str:
    """``+0.0123 [−0.0100, +0.0345]`` from a paired-difference row."""
    d = row.get("difference", math.nan)
    if d is None or (isinstance(d, float) and math.isnan(d)):
        return DASH
    return f"{signed(d)} [{signed(row['ci_low'])}, {signed(row['ci_high'])}]"


def paired_line(row: dict) -> str:
    """One sentence for a paired difference (the CLI prints these under Table 2), naming the
    values of the grid's other axes both runs share (``PU-RM − U-Ones (Edema, test,
    lr=0.001)``)."""
    what = f"{display_name(row['method'])} − {display_name(row['reference'])}"
    parts = (row["observation"], row["split"], row.get("settings"))
    where = ", ".join(p for p in parts if isinstance(p, str) and p)
    if row.get("note"):
        return f"{what} ({where}): {row['note']}"
    return (
        f"{what} ({where}): Δ AUC^FG {signed(row['difference'])}, 95% CI "
        f"[{signed(row['ci_low'])}, {signed(row['ci_high'])}] over {int(row['seeds'])} paired "
        f"seed(s); DeLong p {p_value(row['delong_p'])} (seed-averaged scores); "
        f"n = {int(row['n_atypical'])} atypical / {int(row['n_typical'])} typical"
        + (
            f"; the paper's AUC^FG (positive probability): Δ {signed(paper)}"
            if (paper := paper_difference(row)) is not None
            else ""
        )
    )


def paper_difference(row: dict) -> float | None:
    """The paired difference of the paper's AUC^FG (of the positive probability) where it
    differs from the ranked one (a method with a fine score of its own), else ``None``."""
    paper = row.get("difference_probability", math.nan)
    if paper is None or math.isnan(paper) or paper == row.get("difference"):
        return None
    return float(paper)


def paired_table(
    key: str,
    title: str,
    paired: pd.DataFrame,
    observations: Sequence[str],
    *,
    variants: Sequence[Row] | None = None,
    splits: Sequence[str] = ("validate", "test"),
) -> Table:
    """Paired differences (variant − reference) of AUC^FG: rows = comparison × split, columns
    per observation = difference [95% CI], DeLong p, seeds and cases."""
    header = ["Comparison"]
    for obs in observations:
        header += [f"{obs} Δ AUC^FG [95% CI]", f"{obs} DeLong p", f"{obs} seeds; n"]
    rows = []
    found = paired[["variant", "reference"]].drop_duplicates() if len(paired) else []
    labels = {row.variant: row.label for row in variants} if variants is not None else None
    for _, v in found.iterrows() if len(paired) else []:
        if labels is not None and v["variant"] not in labels:
            continue
        for split in splits:
            label = labels[v["variant"]] if labels is not None else v["variant"]
            cells = [f"{label} − {display_name(v['reference'])} ({split})"]
            for obs in observations:
                r = _lookup(paired, obs, v["variant"], split=split, reference=v["reference"])
                if not r or r.get("note"):
                    cells += [DASH, DASH, DASH]
                    continue
                paper = paper_difference(r)
                cells += [
                    difference_with_ci(r)
                    + (f" (P(positive) {signed(paper)})" if paper is not None else ""),
                    p_value(r["delong_p"]),
                    f"{int(r['seeds'])}; {int(r['n_atypical'])} atypical / "
                    f"{int(r['n_typical'])} typical",
                ]
            rows.append(cells)
    return Table(key, title, header, rows)


def tau_table(
    selection: Selection,
    observations: Sequence[str],
    summary: pd.DataFrame,
    *,
    sweep: Sequence[tuple[str, float | None]],
    baselines: Sequence[tuple[str, float | None]],
    settings: Sequence[tuple] = ((),),
) -> Table:
    """A τ sweep as numbers (Figure 4): the swept method's validation AUC^FG for each of its
    ``sweep`` cells, then the ``baselines``."""
    variants = []
    for method, tau in sweep:
        for values in settings:
            spec = RunSpec("", method, tau, 0, tuple(values))
            variants.append(Row(f"{spec.display} τ = {format_tau(tau)}", spec.variant, method))
    variants += variant_rows(baselines, settings)
    table = method_table(selection.name, selection.title, variants, observations, summary)
    table.header[0] = ""
    return table


def _taus_text(cells: Sequence[tuple[str, float | None]]) -> str:
    """``; risk-modulated methods at τ = 0.3`` for the cells that have a τ (``""`` if none)."""
    taus = sorted({t for _, t in cells if t is not None})
    return f"; risk-modulated methods at τ = {', '.join(map(format_tau, taus))}" if taus else ""


def build_tables(
    plan: Plan,
    summary: pd.DataFrame,
    stats: pd.DataFrame | None,
    *,
    paired: pd.DataFrame | None = None,
) -> list[Table]:
    """The tables of the plan's selections (each with its title, its cells and its reference
    cell); with ``paired`` (:func:`finegrain.experiment.aggregate.paired_difference` rows) each
    table is followed by its paired differences against the reference. A row per cell and per
    combination of the grid's extra axes."""
    has_test = summary is not None and not summary.empty and (summary["split"] == "test").any()
    observations, settings = list(plan.observations), plan.settings
    tables: list[Table] = []
    for selection in plan.selections:
        cells = plan.table_cells(selection)
        if selection.is_sweep:
            tables.append(
                tau_table(selection, observations, summary, sweep=plan.sweep_cells(selection),
                          baselines=cells, settings=settings)
            )  # fmt: skip
            continue
        name, short = selection.name, selection.title.split(":")[0]
        variants = variant_rows(cells, settings)
        table = method_table(name, selection.title, variants, observations, summary)
        own = any(row.own_fine_score for row in variants)
        table.caption = (
            "AUC^FG of the score each method ranks: its positive probability (the paper's "
            "definition), or a fine score of its own"
            + (
                " (ordinal: P(grade ≥ typical); three-class: P(typical | positive)), with the "
                "paper's AUC^FG of its positive probability beside it"
                if own
                else ""
            )
            + ". Mean ± std over seeds of each run's AUC^FG (the seed mean of per-run values, "
            "not the AUC^FG of seed-averaged scores) at its checkpoint with the best validation "
            f"AUC^FG{_taus_text(cells)}; n = the split's cases."
        )
        tables.append(table)
        auc = method_table(
            f"{name}-auc",
            f"{short}: AUC, positive vs negative (validation)",
            variants,
            observations,
            summary,
            metric="auc",
        )
        auc.caption = "Same checkpoints; the ordinary AUC of positives against negatives."
        tables.append(auc)
        reference = display_name(selection.reference)
        if has_test and stats is not None:
            test = test_table(
                f"{name}-test",
                f"{short}: test split at the checkpoints chosen on validation",
                variants,
                observations,
                summary,
                stats,
                reference=selection.reference,
            )
            test.caption = (
                "AUC^FG mean ± std over seeds; 95% percentile bootstrap CI of the seed-mean "
                f"AUC^FG (test cases resampled); two-sided paired DeLong p-value against "
                f"{reference} on seed-averaged scores."
            )
            tables.append(test)
        if paired is not None and not paired.empty:
            others = [r for r in variants if r.method != selection.reference]
            diff = paired_table(
                f"{name}-paired",
                f"{short}: paired difference against {reference}",
                paired[paired["reference"] == selection.reference],
                observations,
                variants=others,
            )
            diff.caption = (
                "Mean over seeds of the per-seed AUC^FG difference (same seed and data order, "
                "same cases, each run at its checkpoint chosen on validation); 95% CI from a "
                "hierarchical bootstrap (seeds resampled, then cases, stratified by subcategory, "
                "2,000 replicates); DeLong p of the seed-averaged (pooled) scores."
            )
            if diff.rows:
                tables.append(diff)
    return tables


def fine_label_table(frame: pd.DataFrame, *, source_name: str = "MeSH, human") -> Table:
    """AUC^FG against the text-mined subcategories next to AUC^FG against human ones
    (:func:`finegrain.experiment.aggregate.fine_label_summary` rows), with their agreement."""
    rows = []
    for _, r in frame.iterrows():
        tau = "" if r["tau"] is None or pd.isna(r["tau"]) else f" (τ = {format_tau(r['tau'])})"
        kappa = DASH if pd.isna(r["kappa"]) else f"{r['kappa']:.2f}"
        rows.append(
            [
                r["observation"],
                display_name(r["method"]) + tau,
                f"{_number(r['auc_fg_text'])} ({r['n_atypical_text']}/{r['n_typical_text']})",
                f"{_number(r['auc_fg_human'])} ({r['n_atypical_human']}/{r['n_typical_human']})",
                f"{r['agree']}/{r['n_both']}, κ {kappa}",
            ]
        )
    split = frame["split"].iloc[0] if len(frame) else "test"
    return Table(
        "fine-labels",
        f"AUC^FG against text-mined and human fine labels ({split})",
        [
            "Observation",
            "Method",
            "AUC^FG, text-mined (atypical/typical)",
            f"AUC^FG, {source_name} (atypical/typical)",
            "Agreement on positives (agree/both, Cohen's κ)",
        ],
        rows,
        caption=(
            "Seed mean of each run's AUC^FG at its checkpoint chosen on validation, once with the "
            "report labeler's subcategories and once with the human ones (OpenI's manual MeSH "
            "severity modifiers mapped to Table 1); agreement of the two on the split's "
            "positives that both label."
        ),
    )


def to_markdown(table: Table) -> str:
    lines = [f"### {table.title}", ""]
    lines.append("| " + " | ".join(table.header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(table.header) - 1)) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(row) + " |")
    if table.caption:
        lines += ["", table.caption]
    for note in table.notes:
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = {"&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$"}


def _tex(text: str) -> str:
    out = "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)
    out = out.replace("AUC^FG", r"AUC$^{\mathrm{FG}}$").replace("±", r"$\pm$")
    out = out.replace("τ", r"$\tau$").replace("–", "--").replace("< ", "$<$ ")
    return out


def to_latex(table: Table) -> str:
    """A booktabs ``table`` environment."""
    cols = "l" + "c" * (len(table.header) - 1)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{_tex(table.title)}}}",
        rf"\begin{{tabular}}{{{cols}}}",
        r"\toprule",
        " & ".join(_tex(h) for h in table.header) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_tex(c) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.caption:
        lines.append(rf"\par\smallskip{{\footnotesize {_tex(table.caption)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_html(table: Table) -> str:
    esc = html.escape
    parts = [
        f'<table class="results" id="{esc(table.key)}">',
        f"<caption>{esc(table.title)}</caption>",
    ]
    parts.append(
        "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in table.header) + "</tr></thead>"
    )
    parts.append("<tbody>")
    for row in table.rows:
        parts.append(
            "<tr>"
            + f"<th>{esc(row[0])}</th>"
            + "".join(f"<td>{esc(c)}</td>" for c in row[1:])
            + "</tr>"
        )
    parts.append("</tbody></table>")
    if table.caption:
        parts.append(f'<p class="caption">{esc(table.caption)}</p>')
    return "\n".join(parts)


def frame_rows(
    frame: pd.DataFrame,
    observations: Sequence[str],
    cells: Callable[[pd.DataFrame], list[str]],
    width: int,
) -> list[list[str]]:
    """The rows of a table of a result frame: one per ``frame["variant"]`` in order, its
    ``display`` name, then per observation the ``width`` cells ``cells(rows)`` of its rows
    there (dashes where it has none)."""
    rows = []
    for variant in dict.fromkeys(frame["variant"]):
        part = frame[frame["variant"] == variant]
        row = [str(part["display"].iloc[0])]
        for obs in observations:
            r = part[part["observation"] == obs]
            row += [DASH] * width if r.empty else cells(r)
        rows.append(row)
    return rows


def source_summary_table(frame: pd.DataFrame, split: str = "test") -> Table:
    """AUC^FG against the mined labels by where the atypical label comes from
    (:func:`finegrain.experiment.sources.source_table`): per observation, every atypical case,
    those from a severity word, those from a change word alone."""
    observations = list(dict.fromkeys(frame["observation"]))
    header = ["Method"]
    for obs in observations:
        first = frame[frame["observation"] == obs].iloc[0]
        header += [
            f"{obs}: all atypical (n = {first['n_severity'] + first['n_change']})",
            f"severity word (n = {first['n_severity']})",
            f"change word (n = {first['n_change']}, {first['change_share']:.0%})",
        ]
    keys = ("auc_fg_mined", "auc_fg_severity", "auc_fg_change")
    rows = frame_rows(
        frame, observations, lambda r: [_number(float(r[k].iloc[0])) for k in keys], 3
    )
    return Table(
        "sources",
        f"AUC^FG by where the atypical label comes from ({split} positives)",
        header,
        rows,
        caption="AUC^FG against the mined labels (the score each method ranks, mean over seeds), "
        "with every atypical case, with those whose report gave a severity word only, and with "
        "those called atypical by a change word alone (every typical case in each): one image "
        "cannot show that a finding improved, so the last column is about chance for any model "
        "that reads the image. The percentage: the share of atypical cases from change words.",
    )


def truth_summary_table(frame: pd.DataFrame, split: str = "test") -> Table:
    """On a phantom (:func:`finegrain.experiment.truth.truth_table`): rows = the oracle (true
    severity) and each method; per observation AUC^FG of its fine score against the mined
    labels and against the image truth."""
    observations = list(dict.fromkeys(frame["observation"]))
    header = ["Method"]
    for obs in observations:
        first = frame[frame["observation"] == obs].iloc[0]
        header += [
            f"{obs} vs mined labels (n = {first['n_atypical']} atypical / "
            f"{first['n_typical']} typical)",
            f"{obs} vs image truth (n = {first['n_slight']} slight / "
            f"{first['n_significant']} significant)",
            f"{obs} ρ with true severity",
        ]

    def cells(r: pd.DataFrame) -> list[str]:
        oracle = r["variant"].iloc[0] == "oracle"
        own = not oracle and check_method(str(r["method"].iloc[0])).own_fine_score
        shown = []
        for kind in ("mined", "truth"):
            cell = _number(float(r[f"auc_fg_{kind}"].iloc[0]))
            if own:  # the paper's AUC^FG of the positive probability beside
                cell += f" [P(positive) {_number(float(r[f'auc_fg_{kind}_probability'].iloc[0]))}]"
            left = float(r.get(f"headroom_{kind}", pd.Series([math.nan])).iloc[0])
            if not math.isnan(left):  # the oracle's is NaN: it is the ceiling
                cell += f" ({left:+.3f} left)"
            shown.append(cell)
        rho = float(r.get("rho_truth", pd.Series([math.nan])).iloc[0])
        return [*shown, DASH if math.isnan(rho) else f"{rho:.3f}"]

    rows = frame_rows(frame, observations, cells, 3)
    return Table(
        "truth",
        f"AUC^FG against the phantom's image truth ({split} positives)",
        header,
        rows,
        caption="The score each method ranks (its fine score: the positive probability for the "
        "paper's methods; in square brackets the positive probability's where a method's fine "
        "score is its own) ranked between mined atypical / typical positives and between positives that are "
        "slight / significant on the image (the phantom's truth file), mean over seeds at the "
        "checkpoints chosen on validation. The oracle ranks by the true severity: the ceiling "
        "that mined labels allow. In brackets, the headroom: what is left to the oracle (mined "
        "labels) or to 1 (image truth); a comparison whose effect is larger cannot show it "
        "there. ρ: Spearman's rank correlation of the same score with the true severity among "
        "the positives the image shows (1 for the oracle).",
    )


def control_summary_table(frame: pd.DataFrame, split: str = "test") -> Table:
    """The positive control (:func:`finegrain.experiment.control.control_table`): per checkpoint
    rule, CE and each PCE τ with the mean noisy-validation AUC, the AUC against image truth and
    the paired difference from CE with its 95 % CI; ``*`` marks the τ chosen on noisy
    validation."""
    header = [
        "Observation (noise)",
        "Checkpoint",
        "Method",
        "Validation AUC (noisy labels)",
        f"{split.capitalize()} AUC vs image truth",
        "Δ vs CE [95% CI]",
    ]
    rows = []
    for _, r in frame.iterrows():
        tau = "" if r["tau"] is None or pd.isna(r["tau"]) else f" τ={float(r['tau']):g}"
        delta = (
            DASH
            if pd.isna(r["delta"])
            else f"{signed(r['delta'])} [{signed(r['low'])}, {signed(r['high'])}]"
        )
        rows.append(
            [
                f"{r['observation']} ({float(r['label_noise']):.0%} flipped)",
                str(r["checkpoint"]),
                f"{r['display']}{tau}" + (" *" if bool(r["chosen"]) else ""),
                _number(float(r["validate_auc_noisy"])),
                _number(float(r["test_auc_truth"])),
                delta,
            ]
        )
    first = frame.iloc[0]
    return Table(
        "control",
        f"Positive control: CE vs PCE under label noise (coarse AUC against image truth, {split})",
        header,
        rows,
        caption=f"Coarse AUC of the positive probability between {split} images with the "
        f"finding drawn (n = {first['n_present']}) and without it (n = {first['n_absent']}), "
        "mean over seeds; Δ: paired difference from CE (U-Ignore) with the hierarchical "
        "bootstrap CI over images and seeds. Checkpoints and τ (*) are chosen on the noisy "
        "validation labels (Menon et al.). The control passes when the chosen τ's CI at the "
        "best checkpoints lies above 0.",
    )
