"""Does each method's probability mean what it says, and how often is its tier right? Two result
tables of every benchmark report (:data:`finegrain.experiment.outputs.RESULT_TABLES`):

* ``calibration`` (``calibration.csv``, one row per run): on the reported split at the
  checkpoint chosen on validation, the positive probability's expected calibration error (15
  equal-mass bins, :mod:`finegrain.calibration`) and Brier score, each with its bootstrap CI,
  the equal-width ECE, and ECE and Brier after temperature scaling fitted on the run's
  validation predictions at the same checkpoint (``finegrain calibrate``'s default); for a
  method with a fine score of its own, the ECE and Brier of P(typical | positive) among the
  positives with a mined subcategory. Cases: label 1 against label 0 (as the AUC's). The
  summary shows the mean ± std over seeds; the report draws a reliability diagram per
  observation (scikit-learn's ``CalibrationDisplay``, each variant's seeds pooled).
* ``tiers`` (``tiers.csv``): the reading a clinician meets — the 3 × 3 table of the predicted
  tier (negative / atypical positive / typical positive; thresholds fitted on validation after
  temperature scaling: sensitivity 0.95 for the positive cut, Youden's J for the typical cut)
  against the mined label (negative, atypical, typical) and, on a phantom, against the image
  truth (absent, slight, significant), the seeds' counts summed, with the share right per row.

Both come from one pass over the runs (:func:`run_calibration`), made once per report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from finegrain.calibration import (
    BRIER,
    ECE,
    N_BINS,
    brier_score,
    calibration_ci,
    expected_calibration_error,
)
from finegrain.errors import FinegrainError
from finegrain.observations import ATYPICAL, TYPICAL

#: Bootstrap replicates of each run's ECE and Brier CI in a report (few: a report covers many
#: runs and must stay quick; ``finegrain evaluate`` and the study use 2,000).
N_BOOT = 200
#: The tier reading's positive cut: the sensitivity ``finegrain calibrate`` keeps by default.
SENSITIVITY = 0.95
CALIBRATION_COLUMNS: list[str] = [
    "observation",
    "variant",
    "display",
    "method",
    "seed",
    "iteration",
    "split",
    "n_positive",
    "n_negative",
    "ece",
    "ece_low",
    "ece_high",
    "brier",
    "brier_low",
    "brier_high",
    "ece_uniform",
    "temperature",
    "ece_scaled",
    "brier_scaled",
    "ece_fine",
    "brier_fine",
]
TIER_COLUMNS: list[str] = [
    "observation",
    "variant",
    "display",
    "seeds",
    "against",
    "row",
    "negative",
    "atypical positive",
    "typical positive",
    "n",
    "share_right",
]
MINED, TRUTH = "mined label", "image truth"


def run_calibration(
    sel, split: str, truth=None, *, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, Any] | None:
    """One run's calibration and tier reading on ``split`` at its chosen checkpoint (``None``
    without predictions there): the row of :data:`CALIBRATION_COLUMNS` (``row``), the pooled
    arrays of the reliability diagram (``y``, ``p``) and the tier tables (``tiers``:
    against -> :func:`finegrain.predict.tiers.tier_table`)."""
    from finegrain.experiment.aggregate import selected_predictions
    from finegrain.predict.tiers import TRUTH_ROWS, fit_reading, mined_class, tier_table, tiers

    frame = selected_predictions(sel, split)
    if frame is None:
        return None
    label = pd.to_numeric(frame["label"], errors="coerce").to_numpy(dtype=float)
    known = np.isin(label, (0.0, 1.0))
    y = (label[known] == 1).astype(int)
    p = frame["score"].to_numpy(dtype=float)
    if not known.any() or np.nanmin(p) < 0 or np.nanmax(p) > 1:
        return None
    pk = p[known]
    from finegrain.metrics import bootstrap_indices

    common = {"indices": bootstrap_indices(y, n_boot, seed=seed)}
    row: dict[str, Any] = {
        "observation": sel.spec.observation,
        "variant": sel.spec.variant,
        "method": sel.spec.method,
        "seed": sel.spec.seed,
        "iteration": sel.iteration,
        "split": split,
        "n_positive": int(y.sum()),
        "n_negative": int((y == 0).sum()),
        "ece": expected_calibration_error(y, pk),
        "brier": brier_score(y, pk),
        "ece_uniform": expected_calibration_error(y, pk, strategy="uniform"),
    }
    row["ece_low"], row["ece_high"] = calibration_ci(y, pk, measure=ECE, **common)
    row["brier_low"], row["brier_high"] = calibration_ci(y, pk, measure=BRIER, **common)
    own_fine = sel.method.own_fine_score
    sub = frame["subcategory"].fillna("").astype(str).str.strip().str.lower().to_numpy()
    if own_fine:
        fg = (label == 1) & np.isin(sub, (ATYPICAL, TYPICAL))
        if fg.any():
            typical = (sub[fg] == TYPICAL).astype(int)
            fine = frame["fine_score"].to_numpy(dtype=float)[fg]
            row["ece_fine"] = expected_calibration_error(typical, fine)
            row["brier_fine"] = brier_score(typical, fine)
    out: dict[str, Any] = {"row": row, "y": y, "p": pk, "tiers": {}, "note": ""}
    validate = selected_predictions(sel, "validate")
    if validate is None:
        out["note"] = "no validation predictions at the chosen checkpoint"
        return out

    def reading_of(calibration: str):
        return fit_reading(
            pd.to_numeric(validate["label"], errors="coerce").to_numpy(dtype=float),
            validate["subcategory"].fillna("").astype(str).tolist(),
            validate["score"].to_numpy(dtype=float),
            fine_scores=validate["fine_score"].to_numpy(dtype=float) if own_fine else None,
            calibration=calibration,
            sensitivity=SENSITIVITY,
            iteration=sel.iteration,
        )

    try:
        reading = reading_of("temperature")
    except (FinegrainError, ValueError) as exc:  # no validation negatives, a shift, ...
        out["note"] = f"temperature scaling not fitted ({exc})"
        try:  # the cuts are rank-based: any increasing map reads the same tiers
            reading = reading_of("none")
        except (FinegrainError, ValueError) as again:
            out["note"] += f"; the tier reading not fitted either ({again})"
            return out
        out["note"] += "; its tiers read the model's own probability (the same tiers)"
    scaled = reading.recalibration.apply(p) if reading.recalibration is not None else p
    if reading.recalibration is not None:
        row["temperature"] = reading.recalibration.temperature
        row["ece_scaled"] = expected_calibration_error(y, scaled[known])
        row["brier_scaled"] = brier_score(y, scaled[known])
    got = tiers(
        scaled, reading.thresholds, frame["fine_score"].to_numpy(dtype=float) if own_fine else None
    )
    out["tiers"][MINED] = tier_table(mined_class(label, sub.tolist()), got)
    if truth is not None:
        from finegrain.experiment.truth import case_truth

        image_truth = case_truth(truth, frame["image_id"], sel.spec.observation)["image_truth"]
        out["tiers"][TRUTH] = tier_table(image_truth.to_numpy(), got, TRUTH_ROWS)
    return out


def calibration_runs(
    selections, truth, split: str, notes: list[str] | None = None, *, n_boot: int = N_BOOT
) -> list[dict]:
    """:func:`run_calibration` of every selected run that has ``split``'s predictions, each
    with its ``display`` name; a run whose temperature scaling and tiers could not be fitted
    is a line of ``notes`` saying why (its calibration is still measured)."""
    from finegrain.experiment.truth import _display

    found = []
    for sel in selections:
        one = run_calibration(sel, split, truth, n_boot=n_boot)
        if one is not None:
            one["row"]["display"] = _display(sel.spec, selections)
            found.append(one)
            if one["note"] and notes is not None:
                notes.append(
                    f"{sel.spec.observation} {one['row']['display']} seed {sel.spec.seed}: "
                    f"{one['note']}"
                )
    return found


def calibration_table(runs: Sequence[dict]) -> pd.DataFrame:
    """One row per run (:data:`CALIBRATION_COLUMNS`)."""
    return pd.DataFrame([r["row"] for r in runs], columns=CALIBRATION_COLUMNS)


def tier_rows(runs: Sequence[dict]) -> pd.DataFrame:
    """The tier tables per observation, variant and reference (mined label, image truth), the
    seeds' counts summed (:data:`TIER_COLUMNS`)."""
    from finegrain.predict.tiers import TIERS

    groups: dict[tuple[str, str, str], list[pd.DataFrame]] = {}
    names: dict[str, str] = {}
    for run in runs:
        row = run["row"]
        names[row["variant"]] = row["display"]
        for against, table in run["tiers"].items():
            groups.setdefault((row["observation"], row["variant"], against), []).append(table)
    rows = []
    for (obs, variant, against), tables in groups.items():
        counts = sum(t[list(TIERS)] for t in tables)
        n = counts.sum(axis=1)
        right = np.diag(counts.to_numpy())
        for i, (name, values) in enumerate(counts.iterrows()):
            rows.append(
                {
                    "observation": obs,
                    "variant": variant,
                    "display": names[variant],
                    "seeds": len(tables),
                    "against": against,
                    "row": name,
                    **{k: int(v) for k, v in values.items()},
                    "n": int(n.iloc[i]),
                    "share_right": right[i] / n.iloc[i] if n.iloc[i] else math.nan,
                }
            )
    return pd.DataFrame(rows, columns=TIER_COLUMNS)


def reliability_figure(runs: Sequence[dict], observation: str, split: str):
    """Reliability diagrams of ``observation``: one curve per variant (its seeds pooled),
    scikit-learn's ``CalibrationDisplay`` with :data:`N_BINS` equal-mass bins."""
    from sklearn.calibration import CalibrationDisplay

    from finegrain.experiment.plots import _pyplot

    plt = _pyplot()
    pooled: dict[str, tuple[list, list]] = {}
    for run in runs:
        row = run["row"]
        if row["observation"] == observation:
            ys, ps = pooled.setdefault(row["display"], ([], []))
            ys.append(run["y"])
            ps.append(run["p"])
    fig, ax = plt.subplots(figsize=(6, 5.5))
    for name, (ys, ps) in pooled.items():
        CalibrationDisplay.from_predictions(
            np.concatenate(ys), np.concatenate(ps), n_bins=N_BINS, strategy="quantile",
            name=name, ax=ax,
        )  # fmt: skip
    ax.set_title(f"{observation}: reliability ({split}, seeds pooled)")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def _mean_std(values: pd.Series, digits: int = 3) -> str:
    from finegrain.experiment.tables import mean_std

    v = values.astype(float).dropna()
    if v.empty:
        return "–"
    return mean_std(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else None, digits=digits)


def calibration_summary_table(frame: pd.DataFrame, split: str = "test"):
    """Rows = variants; per observation the ECE, Brier and ECE after temperature scaling (mean
    ± std over seeds), and a method's own fine score's ECE."""
    from finegrain.experiment.tables import Table, frame_rows

    observations = list(dict.fromkeys(frame["observation"]))
    fine = frame["ece_fine"].notna().any()
    header = ["Method"]
    for obs in observations:
        first = frame[frame["observation"] == obs].iloc[0]
        header += [
            f"{obs} ECE (n = {first['n_positive']} pos. / {first['n_negative']} neg.)",
            "Brier",
            "ECE after T",
        ] + (["fine score ECE"] if fine else [])
    keys = ["ece", "brier", "ece_scaled"] + (["ece_fine"] if fine else [])
    rows = frame_rows(frame, observations, lambda r: [_mean_std(r[k]) for k in keys], len(keys))
    return Table(
        "calibration",
        f"Calibration of the positive probability ({split}, checkpoints chosen on validation)",
        header,
        rows,
        caption=f"Expected calibration error ({N_BINS} equal-mass bins) and Brier score of "
        "P(positive) against the coarse label (positives against negatives), mean ± std over "
        "seeds (each run's bootstrap CI in calibration.csv); ECE after T: after temperature "
        "scaling fitted on the run's validation predictions at the same checkpoint"
        + (
            "; fine score ECE: of a method's own P(typical | positive) among the mined positives"
            if fine
            else ""
        )
        + ". Lower is better; 0 is calibrated.",
    )


def tier_summary_tables(frame: pd.DataFrame, split: str = "test") -> list:
    """One table per observation and reference: rows = each variant's reference classes, the
    predicted tiers' counts and the share right."""
    from finegrain.experiment.tables import Table, _number
    from finegrain.predict.tiers import TIERS

    tables = []
    for (obs, against), part in frame.groupby(["observation", "against"], sort=False):
        rows = [
            [str(r["display"]), str(r["row"]), *(str(int(r[t])) for t in TIERS), str(int(r["n"])),
             _number(r["share_right"], 3)]
            for _, r in part.iterrows()
        ]  # fmt: skip
        tables.append(
            Table(
                f"tiers-{obs}-{against}".lower().replace(" ", "-"),
                f"{obs}: predicted tier against the {against} ({split})",
                ["Method", against.capitalize(), *(f"→ {t}" for t in TIERS), "n", "share right"],
                rows,
                caption="The tier of each case (thresholds fitted on validation after "
                f"temperature scaling: sensitivity {SENSITIVITY:g} for the positive cut, "
                "Youden's J for the typical cut), the seeds' counts summed; share right: the "
                "share of the row read as its own tier (negative / atypical / typical positive"
                + (" for absent / slight / significant" if against == TRUTH else "")
                + ").",
            )
        )
    return tables
