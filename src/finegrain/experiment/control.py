"""The positive control: can this pipeline detect PCE's published effect against label noise?

Runs trained with ``label_noise`` (a share of the observation's training and validation labels
flipped, :meth:`finegrain.data.dataset.CXRDataset.flip_labels`) on a phantom are scored on the
**coarse** task against the **image truth** (the finding drawn on the image, slight or
significant, vs not drawn), which the noise never touched. Protocol of Menon et al. (ICLR 2020):
everything is chosen on the *noisy* validation split: each run's checkpoint (the highest noisy
validation coarse AUC, ties to the earliest; also reported: the last checkpoint) and PCE's τ (the
τ whose runs have the highest mean noisy-validation coarse AUC at their chosen checkpoints).

Each PCE τ is compared with the reference (CE: ``u-ignore``) on the same seeds: the mean over
seeds of the paired difference in AUC against image truth, with the hierarchical bootstrap CI of
:func:`~finegrain.experiment.aggregate.paired_difference_ci`. The control passes when the chosen
τ's CI (best checkpoints) lies above 0.

>>> truth_present(pd.Series(["absent", "slight", "significant", "other"])).tolist()
[0, 1, 1, 0]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.experiment.selection import RunSelection, select_iteration

#: The reference (plain cross-entropy on the noisy labels) and the method under control.
CE_METHOD, PCE_METHOD = "u-ignore", "pce"
#: How each run's checkpoint is chosen: on the noisy validation split, or the last one.
CHECKPOINTS: tuple[str, ...] = ("best noisy-validation AUC", "last")
CONTROL_COLUMNS: list[str] = [
    "observation",
    "label_noise",
    "checkpoint",
    "variant",
    "display",
    "tau",
    "seeds",
    "validate_auc_noisy",
    "test_auc_truth",
    "delta",
    "low",
    "high",
    "chosen",
    "n_present",
    "n_absent",
]


def truth_present(image_truth: pd.Series) -> pd.Series:
    """1 where the finding is drawn on the image (``slight`` or ``significant``), else 0."""
    return image_truth.isin(["slight", "significant"]).astype(int)


def _iteration(sel: RunSelection, checkpoint: str) -> int | None:
    if checkpoint == CHECKPOINTS[0]:
        return select_iteration(sel.metrics, split="validate", metric="auc")
    its = sel.metrics.loc[sel.metrics["split"] == "validate", "iteration"]
    return int(its.max()) if len(its) else None


def _validate_auc(sel: RunSelection, iteration: int | None) -> float:
    m = sel.metrics
    row = m[(m["split"] == "validate") & (m["iteration"] == iteration)]
    return float(row["auc"].iloc[-1]) if len(row) else float("nan")


def control_table(
    selections: Sequence[RunSelection], split: str = "test", *, level: float = 0.95
) -> pd.DataFrame:
    """:data:`CONTROL_COLUMNS` for the runs trained with label noise on a phantom (empty when
    there are none): per observation, noise level and checkpoint rule, CE and every PCE τ with
    the mean AUC against image truth, and each PCE τ's paired difference from CE with its CI;
    ``chosen`` marks the τ chosen on noisy validation; ``level``: the CI's coverage."""
    from finegrain.data.phantom import read_truth
    from finegrain.experiment.aggregate import paired_difference_ci, selected_predictions
    from finegrain.experiment.localisation import phantom_of_index
    from finegrain.experiment.truth import case_truth
    from finegrain.metrics import auc_fg

    noisy = [s for s in selections if float(s.config.get("label_noise") or 0) > 0]
    if not noisy:
        return pd.DataFrame(columns=CONTROL_COLUMNS)
    root = phantom_of_index(Path(noisy[0].config.get("index", "")))
    if root is None:
        return pd.DataFrame(columns=CONTROL_COLUMNS)
    truth = read_truth(root)
    rows = []
    groups: dict[tuple, list[RunSelection]] = {}
    for sel in noisy:
        if sel.spec.method in (CE_METHOD, PCE_METHOD):
            key = (sel.spec.observation, float(sel.config["label_noise"]))
            groups.setdefault(key, []).append(sel)
    for (obs, noise), runs in sorted(groups.items()):
        for checkpoint in CHECKPOINTS:
            scored: dict[str, dict[int, pd.Series]] = {}
            valid: dict[str, list[float]] = {}
            labels: pd.Series | None = None
            info: dict[str, tuple[str, float | None, str]] = {}
            for sel in sorted(runs, key=lambda s: s.spec.seed):
                it = _iteration(sel, checkpoint)
                frame = selected_predictions(dataclasses.replace(sel, iteration=it), split)
                if frame is None:
                    continue
                frame = frame.drop_duplicates("image_id", keep="last").set_index("image_id")
                variant = sel.spec.variant
                scored.setdefault(variant, {})[sel.spec.seed] = frame["score"]
                valid.setdefault(variant, []).append(_validate_auc(sel, it))
                info[variant] = (sel.spec.display, sel.spec.tau, sel.spec.method)
                if labels is None:
                    found = case_truth(truth, list(frame.index), obs)["image_truth"]
                    labels = pd.Series(truth_present(found).to_numpy(), index=frame.index)
            ce = next((v for v in scored if info[v][2] == CE_METHOD), None)
            if labels is None or ce is None:
                continue
            taus = [v for v in scored if v != ce]
            chosen = max(taus, key=lambda v: np.nanmean(valid[v]), default=None)
            for variant in [ce, *taus]:
                seeds = sorted(set(scored[variant]) & set(scored[ce]))
                if not seeds:
                    continue
                y = labels.to_numpy()
                a = np.column_stack([scored[variant][k].reindex(labels.index) for k in seeds])
                b = np.column_stack([scored[ce][k].reindex(labels.index) for k in seeds])
                mean_a = np.mean([auc_fg(y, a[:, k]) for k in range(a.shape[1])])
                delta, low, high = (
                    paired_difference_ci(y, a, b, level=level) if variant != ce else (np.nan,) * 3
                )
                rows.append(
                    {
                        "observation": obs,
                        "label_noise": noise,
                        "checkpoint": checkpoint,
                        "variant": variant,
                        "display": info[variant][0],
                        "tau": info[variant][1],
                        "seeds": len(seeds),
                        "validate_auc_noisy": float(np.nanmean(valid[variant])),
                        "test_auc_truth": float(mean_a),
                        "delta": delta,
                        "low": low,
                        "high": high,
                        "chosen": variant == chosen,
                        "n_present": int(y.sum()),
                        "n_absent": int(len(y) - y.sum()),
                    }
                )
    return pd.DataFrame(rows, columns=CONTROL_COLUMNS)


def passes(frame: pd.DataFrame) -> dict[str, bool]:
    """Per observation: whether the τ chosen on noisy validation beats CE (best checkpoints)
    with a CI above 0 — the control's decision rule."""
    rows = frame[(frame["checkpoint"] == CHECKPOINTS[0]) & frame["chosen"].astype(bool)]
    return {str(r["observation"]): bool(r["low"] > 0) for _, r in rows.iterrows()}
