"""The paper's tables: rows = methods, columns = observations, AUC^FG as mean ± std (4 decimals).

Every AUC^FG column names the cases it was computed on (atypical / typical positives of the
split), every AUC column the positives / negatives, so a reader can judge each number's noise.

Tables are built once as plain data (:class:`Table`) and rendered to Markdown, LaTeX or HTML.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from finegrain.experiment.grid import (
    FIGURE4_TAUS,
    METHOD_NAMES,
    REFERENCE_METHOD,
    SELECTIONS,
    format_tau,
    method_tau,
)

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


def _p_value(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return DASH
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _lookup(frame: pd.DataFrame, observation: str, method: str, tau: float | None, **eq) -> dict:
    if frame is None or frame.empty:
        return {}
    sel = (frame["observation"] == observation) & (frame["method"] == method)
    sel &= frame["tau"].isna() if tau is None else (frame["tau"].astype(float) - tau).abs() < 1e-9
    for column, value in eq.items():
        sel &= frame[column] == value
    rows = frame[sel]
    return {} if rows.empty else rows.iloc[0].to_dict()


#: What each metric's class counts are, for the column headers.
COUNT_LABELS: dict[str, tuple[str, str, str, str]] = {
    "auc_fg": ("n_atypical", "n_typical", "atypical", "typical"),
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


def method_table(
    key: str,
    title: str,
    methods: Sequence[str],
    observations: Sequence[str],
    summary: pd.DataFrame,
    *,
    tau: float,
    split: str = "validate",
    metric: str = "auc_fg",
) -> Table:
    """Rows = methods, columns = observations, ``metric`` mean ± std over seeds on ``split``."""
    rows = []
    for method in methods:
        t = method_tau(method, tau)
        cells = [METHOD_NAMES.get(method, method)]
        for obs in observations:
            r = _lookup(summary, obs, method, t, split=split)
            cells.append(mean_std(r.get(f"{metric}_mean"), r.get(f"{metric}_std")))
        rows.append(cells)
    header = ["Method"] + [
        _with_counts(obs, _counts(summary, obs, split, metric)) for obs in observations
    ]
    return Table(key, title, header, rows)


def test_table(
    key: str,
    title: str,
    methods: Sequence[str],
    observations: Sequence[str],
    summary: pd.DataFrame,
    stats: pd.DataFrame,
    *,
    tau: float,
    reference: str = REFERENCE_METHOD,
) -> Table:
    """Test AUC^FG at the validation-chosen checkpoints, its bootstrap CI and DeLong p."""
    header = ["Method"]
    for obs in observations:
        header += [
            _with_counts(f"{obs} AUC^FG", _counts(summary, obs, "test", "auc_fg")),
            f"{obs} 95% CI",
            f"{obs} p vs {METHOD_NAMES[reference]}",
        ]
    rows = []
    for method in methods:
        t = method_tau(method, tau)
        cells = [METHOD_NAMES.get(method, method)]
        for obs in observations:
            r = _lookup(summary, obs, method, t, split="test")
            s = _lookup(stats, obs, method, t)
            cells.append(mean_std(r.get("auc_fg_mean"), r.get("auc_fg_std")))
            lo, hi = s.get("ci_low", math.nan), s.get("ci_high", math.nan)
            cells.append(DASH if math.isnan(lo) else f"[{_number(lo)}, {_number(hi)}]")
            cells.append(_p_value(s.get("delong_p", math.nan)))
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
    """One sentence for a paired difference (the CLI prints these under Table 2)."""
    what = (
        f"{METHOD_NAMES.get(row['method'], row['method'])} − "
        f"{METHOD_NAMES.get(row['reference'], row['reference'])}"
    )
    where = f"{row['observation']}, {row['split']}"
    if row.get("note"):
        return f"{what} ({where}): {row['note']}"
    return (
        f"{what} ({where}): Δ AUC^FG {signed(row['difference'])}, 95% CI "
        f"[{signed(row['ci_low'])}, {signed(row['ci_high'])}] over {int(row['seeds'])} paired "
        f"seed(s); DeLong p {_p_value(row['delong_p'])} (seed-averaged scores); "
        f"n = {int(row['n_atypical'])} atypical / {int(row['n_typical'])} typical"
    )


def paired_table(
    key: str,
    title: str,
    paired: pd.DataFrame,
    observations: Sequence[str],
    *,
    methods: Sequence[str] | None = None,
    splits: Sequence[str] = ("validate", "test"),
) -> Table:
    """Paired differences (method − reference) of AUC^FG: rows = comparison × split, columns
    per observation = difference [95% CI], DeLong p, seeds and cases."""
    header = ["Comparison"]
    for obs in observations:
        header += [f"{obs} Δ AUC^FG [95% CI]", f"{obs} DeLong p", f"{obs} seeds; n"]
    rows = []
    variants = paired[["method", "tau", "reference"]].drop_duplicates() if len(paired) else []
    for _, v in variants.iterrows() if len(paired) else []:
        if methods is not None and v["method"] not in methods:
            continue
        for split in splits:
            name = (
                f"{METHOD_NAMES.get(v['method'], v['method'])} − "
                f"{METHOD_NAMES.get(v['reference'], v['reference'])} ({split})"
            )
            cells = [name]
            for obs in observations:
                tau = None if pd.isna(v["tau"]) else float(v["tau"])
                r = _lookup(paired, obs, v["method"], tau, split=split, reference=v["reference"])
                if not r or r.get("note"):
                    cells += [DASH, DASH, DASH]
                    continue
                cells += [
                    difference_with_ci(r),
                    _p_value(r["delong_p"]),
                    f"{int(r['seeds'])}; {int(r['n_atypical'])} atypical / "
                    f"{int(r['n_typical'])} typical",
                ]
            rows.append(cells)
    return Table(key, title, header, rows)


def tau_table(
    observations: Sequence[str],
    summary: pd.DataFrame,
    *,
    taus: Sequence[float] = FIGURE4_TAUS,
    baselines: Sequence[str] = ("u-ones", "u-ignore"),
) -> Table:
    """Figure 4 as numbers: PU-RM validation AUC^FG for each τ, then the baselines."""
    rows = []
    for t in taus:
        cells = [f"PU-RM τ = {format_tau(t)}"]
        for obs in observations:
            r = _lookup(summary, obs, "pu-rm", float(t), split="validate")
            cells.append(mean_std(r.get("auc_fg_mean"), r.get("auc_fg_std")))
        rows.append(cells)
    for b in baselines:
        cells = [METHOD_NAMES[b]]
        for obs in observations:
            r = _lookup(summary, obs, b, None, split="validate")
            cells.append(mean_std(r.get("auc_fg_mean"), r.get("auc_fg_std")))
        rows.append(cells)
    header = [""] + [
        _with_counts(obs, _counts(summary, obs, "validate", "auc_fg")) for obs in observations
    ]
    return Table("figure4", "Figure 4: PU-RM AUC^FG (validation) against τ", header, rows)


def build_tables(
    selections: Sequence[str],
    observations: Sequence[str],
    summary: pd.DataFrame,
    stats: pd.DataFrame | None,
    *,
    tau: float,
    methods: Sequence[str] | None = None,
    taus: Sequence[float] | None = None,
    paired: pd.DataFrame | None = None,
) -> list[Table]:
    """The tables of the named selections (``table2``, ``table3``, ``figure4``); with
    ``paired`` (:func:`finegrain.experiment.aggregate.paired_difference` rows) each table is
    followed by its paired differences against U-Ones."""
    if "all" in selections:
        selections = list(SELECTIONS)
    has_test = summary is not None and not summary.empty and (summary["split"] == "test").any()
    titles = {
        "table2": "Table 2: AUC^FG (validation) of the uncertainty policies and PU-RM",
        "table3": "Table 3: ablation of the risk-modulation (validation AUC^FG)",
    }
    tables: list[Table] = []
    for name in selections:
        if name == "figure4":
            tables.append(tau_table(observations, summary, taus=taus or FIGURE4_TAUS))
            continue
        names = list(methods) if methods is not None else list(SELECTIONS[name])
        table = method_table(name, titles[name], names, observations, summary, tau=tau)
        table.caption = (
            "Mean ± std over seeds of each run's AUC^FG (the seed mean of per-run values, not the "
            "AUC^FG of seed-averaged scores) at its checkpoint with the best validation AUC^FG; "
            f"risk-modulated methods at τ = {format_tau(tau)}; n = the split's cases."
        )
        tables.append(table)
        auc = method_table(
            f"{name}-auc",
            titles[name].split(":")[0] + ": AUC, positive vs negative (validation)",
            names,
            observations,
            summary,
            tau=tau,
            metric="auc",
        )
        auc.caption = "Same checkpoints; the ordinary AUC of positives against negatives."
        tables.append(auc)
        if has_test and stats is not None:
            test = test_table(
                f"{name}-test",
                titles[name].split(":")[0] + ": test split at the checkpoints chosen on validation",
                names,
                observations,
                summary,
                stats,
                tau=tau,
            )
            test.caption = (
                "AUC^FG mean ± std over seeds; 95% percentile bootstrap CI of the seed-mean "
                "AUC^FG (test cases resampled); two-sided paired DeLong p-value against U-Ones "
                "on seed-averaged scores."
            )
            tables.append(test)
        if paired is not None and not paired.empty:
            others = [m for m in names if m != REFERENCE_METHOD]
            diff = paired_table(
                f"{name}-paired",
                titles[name].split(":")[0]
                + f": paired difference against {METHOD_NAMES[REFERENCE_METHOD]}",
                paired,
                observations,
                methods=others,
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
                METHOD_NAMES.get(r["method"], r["method"]) + tau,
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
