"""On a phantom, AUC^FG against the **image truth** (slight vs significant lesion, from the
phantom's truth file), which no mined label limits, and the **oracle** (the true severity as a
score) that shows the headroom of every AUC^FG.

Cases: the split's positives (label 1). Against mined labels: atypical (0) vs typical (1)
subcategory; against image truth: ``slight`` (0) vs ``significant`` (1) in
``phantom-truth.csv`` (positives whose image truth is ``absent`` or ``other`` are left out).
Every method is scored on the score it ranks (:mod:`finegrain.scores`: its fine score, the
positive probability for the paper's methods), with the paper's AUC^FG of the positive
probability beside it (``*_probability``; equal unless the fine score is the method's own).
Beside them, ``rho_truth``: Spearman's ρ of the same score with the **true severity** among the
positives the image shows (a continuum phantom grades severity as a number; 1 for the oracle).
Each row also says its **headroom**: what is left of each AUC^FG, to the
oracle's against the mined labels and to 1 against the image truth (and of ρ, to 1). A
comparison whose effect is larger than its headroom cannot show it there (docs/study.md,
section 5.3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.errors import NotFound
from finegrain.observations import ATYPICAL, POSITIVE, TYPICAL
from finegrain.scores import RANKED, SCORE

#: The oracle's variant name in :func:`truth_table`.
ORACLE = "oracle"
TRUTH_COLUMNS: list[str] = [
    "observation",
    "variant",
    "display",
    "seeds",
    "auc_fg_mined",
    "auc_fg_truth",
    "rho_truth",
    "n_atypical",
    "n_typical",
    "n_slight",
    "n_significant",
    "headroom_mined",
    "headroom_truth",
    "headroom_rho",
    "method",
    "auc_fg_mined_probability",
    "auc_fg_truth_probability",
]


def case_truth(truth, image_ids: Sequence[str], observation: str) -> pd.DataFrame:
    """``severity`` (true, 0 = absent) and ``image_truth`` of ``observation`` for each image
    of a :class:`~finegrain.data.phantom.truth.PhantomTruth`, in the order given."""
    studies = truth.images["study_id"].reindex(list(image_ids)).to_numpy()
    if pd.isna(studies).any():
        missing = list(np.asarray(image_ids)[pd.isna(studies)][:3])
        raise NotFound(f"images {missing} are not in the phantom at {truth.root}")
    keys = pd.MultiIndex.from_arrays([studies, [observation] * len(studies)])
    rows = truth.findings.reindex(keys)
    return pd.DataFrame(
        {
            "severity": rows["severity"].astype(float).to_numpy(),
            "image_truth": rows["image_truth"].astype(str).to_numpy(),
        }
    )


def fine_cases(predictions: pd.DataFrame, truth, observation: str) -> pd.DataFrame:
    """The split's positives with ``image_id``, ``subcategory``, the ranked score, the positive
    probability, ``severity`` and ``image_truth`` (one row per positive, in the predictions'
    order)."""
    positives = predictions[pd.to_numeric(predictions["label"]) == POSITIVE]
    out = positives[["image_id", "subcategory", *dict.fromkeys([RANKED, SCORE])]]
    out = out.reset_index(drop=True)
    return pd.concat([out, case_truth(truth, out["image_id"], observation)], axis=1)


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from finegrain.metrics import auc_fg

    return auc_fg(y, score) if 0 < y.sum() < len(y) else math.nan


def fine_aucs(cases: pd.DataFrame, score: np.ndarray) -> dict[str, float | int]:
    """AUC^FG of ``score`` (one per case) against mined labels and against image truth, and
    Spearman's ρ of ``score`` with the true severity among the positives the image shows."""
    from finegrain.metrics import severity_rho

    mined = cases["subcategory"].isin([ATYPICAL, TYPICAL]).to_numpy()
    drawn = cases["image_truth"].isin(["slight", "significant"]).to_numpy()
    typical = (cases["subcategory"] == TYPICAL).to_numpy()[mined].astype(int)
    significant = (cases["image_truth"] == "significant").to_numpy()[drawn].astype(int)
    return {
        "auc_fg_mined": _auc(typical, score[mined]),
        "auc_fg_truth": _auc(significant, score[drawn]),
        "rho_truth": severity_rho(score[drawn], cases["severity"].to_numpy(dtype=float)[drawn])
        if drawn.sum() > 1
        else math.nan,
        "n_atypical": int((typical == 0).sum()),
        "n_typical": int(typical.sum()),
        "n_slight": int((significant == 0).sum()),
        "n_significant": int(significant.sum()),
    }


def _display(spec, selections) -> str:
    """The variant's name in the table; with its τ when the method is there at several τ."""
    taus = {s.spec.tau for s in selections if s.spec.method == spec.method}
    return spec.display + (f" τ={spec.tau:g}" if len(taus) > 1 and spec.tau is not None else "")


def phantom_truth(selections):
    """The :class:`~finegrain.data.phantom.truth.PhantomTruth` of the phantom the runs' index
    table points into, read once for every table of a report that needs it; ``None`` on real
    data or a phantom without truth files."""
    from finegrain.data.phantom import read_truth
    from finegrain.experiment.localisation import phantom_of_index

    config = next((s.config for s in selections if s.config.get("index")), None)
    root = phantom_of_index(Path(config["index"])) if config is not None else None
    if root is None:
        return None
    try:
        return read_truth(root)
    except FileNotFoundError:
        return None


def truth_table(selections, truth, split: str = "test") -> pd.DataFrame:
    """Per observation: the oracle (true severity) and every variant (mean over its seeds) with
    AUC^FG against mined labels and image truth (:data:`TRUTH_COLUMNS`); empty without a
    phantom's ``truth`` (:func:`phantom_truth`)."""
    from finegrain.experiment.aggregate import selected_predictions

    if not selections or truth is None:
        return pd.DataFrame(columns=TRUTH_COLUMNS)
    per_run: dict[tuple[str, str], list[dict]] = {}
    oracle: dict[str, dict] = {}
    names: dict[str, str] = {}
    methods: dict[str, str] = {}
    for sel in selections:
        frame = selected_predictions(sel, split)
        if frame is None:
            continue
        obs = sel.spec.observation
        cases = fine_cases(frame, truth, obs)
        ranked = fine_aucs(cases, cases[RANKED].to_numpy(dtype=float))
        paper = fine_aucs(cases, cases[SCORE].to_numpy(dtype=float))
        ranked.update({f"{k}_probability": paper[k] for k in ("auc_fg_mined", "auc_fg_truth")})
        per_run.setdefault((obs, sel.spec.variant), []).append(ranked)
        names[sel.spec.variant] = _display(sel.spec, selections)
        methods[sel.spec.variant] = sel.spec.method
        oracle.setdefault(obs, fine_aucs(cases, cases["severity"].to_numpy(dtype=float)))
    rows = []
    for obs, values in oracle.items():
        rows.append({"observation": obs, "variant": ORACLE, "display": "Oracle (true severity)",
                     "seeds": 0, **values})  # fmt: skip
    for (obs, variant), runs in per_run.items():
        mean = {
            k: float(np.nanmean([r[k] for r in runs]))
            for k in ("auc_fg_mined", "auc_fg_truth", "rho_truth",
                      *(f"{m}_probability" for m in ("auc_fg_mined", "auc_fg_truth")))
        }  # fmt: skip
        counts = {k: runs[0][k] for k in ("n_atypical", "n_typical", "n_slight", "n_significant")}
        rows.append({"observation": obs, "variant": variant, "display": names[variant],
                     "seeds": len(runs), "method": methods[variant], **mean, **counts})  # fmt: skip
    for row in rows:  # the oracle's own: NaN (it is the ceiling)
        ceiling = oracle[row["observation"]]["auc_fg_mined"]
        methods = row["variant"] != ORACLE
        row["headroom_mined"] = ceiling - row["auc_fg_mined"] if methods else math.nan
        row["headroom_truth"] = 1.0 - row["auc_fg_truth"] if methods else math.nan
        row["headroom_rho"] = 1.0 - row["rho_truth"] if methods else math.nan
    return pd.DataFrame(rows, columns=TRUTH_COLUMNS)
