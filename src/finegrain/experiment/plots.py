"""Benchmark figures (matplotlib, Agg backend): the τ ablation (the paper's Figure 4), and for
each method the atypical-vs-typical score distributions and ROC curves.

Every figure is saved as PNG and SVG through :mod:`finegrain.io` (atomic writes).
"""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.experiment.aggregate import fg_cases
from finegrain.experiment.grid import display_name, format_tau
from finegrain.io import atomic_write_bytes
from finegrain.observations import TYPICAL
from finegrain.scores import RANKED, SCORE


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, stem: str | Path) -> dict[str, Path]:
    """Write ``<stem>.png`` (150 dpi) and ``<stem>.svg`` atomically; close the figure. A dot in
    the stem stays (``cam-edema-lr0.001``: an axis value), it is not a suffix."""
    plt = _pyplot()
    stem = Path(stem)
    paths = {}
    for fmt in ("png", "svg"):
        buffer = io.BytesIO()
        # a fixed date and no hash salt keep SVGs identical across reruns
        metadata = {"Date": None} if fmt == "svg" else {"Software": "finegrain"}
        fig.savefig(buffer, format=fmt, dpi=150, bbox_inches="tight", metadata=metadata)
        path = stem.with_name(f"{stem.name}.{fmt}")
        atomic_write_bytes(path, buffer.getvalue())
        paths[fmt] = path
    plt.close(fig)
    return paths


def tau_ablation_figure(
    summary: pd.DataFrame,
    observations: Sequence[str],
    *,
    swept: str,
    baselines: Sequence[str],
    split: str = "validate",
):
    """The ``swept`` method's AUC^FG against τ (mean line, ±std band) with the ``baselines``
    as horizontal lines (Figure 4: PU-RM with U-Ones and U-Ignore)."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        1, len(observations), figsize=(4.2 * len(observations), 3.4), squeeze=False
    )
    for ax, obs in zip(axes[0], observations, strict=True):
        rows = summary[
            (summary["observation"] == obs)
            & (summary["method"] == swept)
            & (summary["split"] == split)
            & summary["tau"].notna()
        ].sort_values("tau")
        taus = rows["tau"].astype(float).to_numpy()
        mean = rows["auc_fg_mean"].astype(float).to_numpy()
        std = np.nan_to_num(rows["auc_fg_std"].astype(float).to_numpy())
        ax.plot(taus, mean, "o-", color="C3", label=display_name(swept))
        ax.fill_between(taus, mean - std, mean + std, color="C3", alpha=0.2, linewidth=0)
        for i, b in enumerate(baselines):
            base = summary[
                (summary["observation"] == obs)
                & (summary["method"] == b)
                & (summary["split"] == split)
            ]
            if base.empty or np.isnan(base["auc_fg_mean"].iloc[0]):
                continue
            ax.axhline(
                float(base["auc_fg_mean"].iloc[0]),
                color=f"C{i}",
                linestyle="--",
                label=display_name(b),
            )
        ax.set_title(obs)
        ax.set_xlabel("τ")
        ax.set_ylabel(f"AUC$^{{FG}}$ ({split})")
        if len(taus):
            ax.set_xticks(taus, [format_tau(t) for t in taus])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _score_label(variant: str, own_fine: Collection[str]) -> str:
    return "fine score" if variant in own_fine else "P(positive)"


def score_distribution_figure(
    scores: Mapping[str, pd.DataFrame], observation: str, split: str, own_fine: Collection[str] = ()
):
    """Histograms of the score AUC^FG ranks (:mod:`finegrain.scores`) of atypical vs typical
    positives, one panel per variant (``scores``: its name -> seed-averaged predictions of
    ``observation`` on ``split``): the positive probability, or the fine score of a variant in
    ``own_fine`` (a method with a fine score of its own)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    methods = list(scores)
    fig, axes = plt.subplots(
        1, max(1, len(methods)), figsize=(3.2 * max(1, len(methods)), 2.9), squeeze=False
    )
    for ax, method in zip(axes[0], methods, strict=False):
        cases = fg_cases(scores[method])
        values = cases[RANKED].to_numpy(dtype=float)
        low, top = 0.0, 1.0  # a fine score may have its own scale: every value is binned
        if method in own_fine and np.isfinite(values).any():
            low, top = min(low, float(np.nanmin(values))), max(top, float(np.nanmax(values)))
        bins = np.linspace(low, top, 21)
        typical = (cases["subcategory"] == TYPICAL).to_numpy()
        ax.hist(values[~typical], bins=bins, alpha=0.6, color="C0", label="atypical")
        ax.hist(values[typical], bins=bins, alpha=0.6, color="C3", label="typical")
        ax.set_title(display_name(method), fontsize=10)
        ax.set_xlabel(_score_label(method, own_fine))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of cases
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(f"{observation} positives ({split})")
    fig.tight_layout()
    return fig


def roc_figure(
    scores: Mapping[str, pd.DataFrame], observation: str, split: str, own_fine: Collection[str] = ()
):
    """ROC curves of atypical (0) vs typical (1) positives by the score AUC^FG ranks, one curve
    per variant, AUC^FG in the legend; a variant in ``own_fine`` is ranked by its fine score,
    the paper's AUC^FG of its positive probability beside in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    for i, (method, frame) in enumerate(scores.items()):
        cases = fg_cases(frame)
        y = (cases["subcategory"] == TYPICAL).to_numpy(dtype=int)
        if y.min(initial=1) == y.max(initial=0):
            continue
        values = cases[RANKED].to_numpy(dtype=float)
        fpr, tpr, _ = roc_curve(y, values)
        value = f"{roc_auc_score(y, values):.3f}"
        label = display_name(method)
        if method in own_fine:
            paper = roc_auc_score(y, cases[SCORE].to_numpy(dtype=float))
            label, value = f"{label}, fine score", f"{value}; P(positive) {paper:.3f}"
        ax.plot(fpr, tpr, color=f"C{i}", label=f"{label} ({value})")
    ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xlabel("false positive rate (atypical called typical)")
    ax.set_ylabel("true positive rate (typical)")
    ax.set_title(f"{observation}: atypical vs typical ({split})", fontsize=10)
    if ax.get_legend_handles_labels()[0]:  # no curve when a class is missing
        ax.legend(fontsize=7, loc="lower right", title="AUC$^{FG}$, seed-averaged scores",
                  title_fontsize=7)  # fmt: skip
    ax.set_aspect("equal")
    fig.tight_layout()
    return fig


def study_map_figure(table: pd.DataFrame, observation: str, *, split: str = "test"):
    """The study's map for one observation: the paired difference method − reference (dot; the
    table's ``method`` and ``reference`` columns, PU-RM − U-Ones in the paper's study) and its
    95% CI (bar) at every condition, grouped by knob, with the zero line."""
    plt = _pyplot()
    rows = table[(table["observation"] == observation) & (table["split"] == split)]
    rows = rows[rows["seeds"].fillna(0).astype(int) > 0]
    fig, ax = plt.subplots(figsize=(5.6, 0.9 + 0.32 * max(1, len(rows))))
    labels = []
    knobs = list(dict.fromkeys(rows["knob"]))
    for y, (_, r) in enumerate(rows.iloc[::-1].iterrows()):
        color = f"C{knobs.index(r['knob']) % 10}"
        d, lo, hi = float(r["difference"]), float(r["ci_low"]), float(r["ci_high"])
        ax.plot([lo, hi], [y, y], color=color, linewidth=2)
        ax.plot([d], [y], "o", color=color)
        label = "calibrated point" if r["knob"] == "calibrated" else f"{r['knob']} = {r['value']}"
        labels.append(f"{label} ({int(r['seeds'])} seeds)")
    ax.axvline(0.0, color="0.4", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    compared = table.iloc[0] if len(table) else {}
    what = f"{display_name(compared.get('method', ''))} − {display_name(compared.get('reference', ''))}"
    ax.set_xlabel(f"Δ AUC$^{{FG}}$ ({split}), {what}")
    ax.set_title(observation, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def learning_curve_figure(results: pd.DataFrame, observation: str, *, split: str = "validate"):
    """Whether and when risk modulation acts: per variant (seed mean), the ``split`` AUC^FG and
    coarse AUC, PCE's reach on the training positives (share with p <= τ) and whether they are
    memorised (their mean cross-entropy -log p, log scale), against the iteration."""
    plt = _pyplot()
    rows = results[(results["observation"] == observation) & (results["split"] == split)]
    panels = (
        ("auc_fg", f"AUC$^{{FG}}$ ({split})"),
        ("auc", f"AUC ({split})"),
        ("train_pce_reach", "training positives with p ≤ τ"),
        ("train_positive_ce", "training positives' −log p"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(15.0, 3.2), squeeze=False)
    for i, (variant, group) in enumerate(rows.groupby("variant", sort=False)):
        label = display_name(str(group["method"].iloc[0]))
        if variant != group["method"].iloc[0]:
            label = f"{label} ({variant})"
        curve = group.groupby("iteration")[[c for c, _ in panels if c in group]].mean(
            numeric_only=True
        )
        for ax, (column, _) in zip(axes[0], panels, strict=True):
            if column in curve and curve[column].notna().any():
                ax.plot(curve.index, curve[column], "o-", color=f"C{i % 10}", label=label)
    if axes[0][3].has_data():
        axes[0][3].set_yscale("log")  # memorised: towards 0, decades apart
    for ax, (_, title) in zip(axes[0], panels, strict=True):
        ax.set_xlabel("iteration")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    if axes[0][0].get_legend_handles_labels()[0]:
        axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{observation}: learning curves (mean over seeds)", fontsize=10)
    fig.tight_layout()
    return fig
