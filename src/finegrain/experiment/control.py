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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from finegrain.experiment.grid import RunSpec
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


@dataclass
class _Variant:
    """One variant's runs at a checkpoint rule: its spec, each seed's scores by image id and
    each run's noisy-validation AUC there."""

    spec: RunSpec
    scores: dict[int, pd.Series] = field(default_factory=dict)
    validate_auc: list[float] = field(default_factory=list)


def _scores(runs: Sequence[RunSelection], checkpoint: str, split: str) -> dict[str, _Variant]:
    """The runs' ``split`` predictions at the checkpoint ``checkpoint`` chooses, by variant."""
    from finegrain.experiment.aggregate import selected_predictions

    variants: dict[str, _Variant] = {}
    for sel in sorted(runs, key=lambda s: s.spec.seed):
        at = dataclasses.replace(sel, iteration=_iteration(sel, checkpoint))
        frame = selected_predictions(at, split)
        if frame is None:
            continue
        frame = frame.drop_duplicates("image_id", keep="last").set_index("image_id")
        variant = variants.setdefault(sel.spec.variant, _Variant(sel.spec))
        variant.scores[sel.spec.seed] = frame["score"]
        row = at.row("validate")
        variant.validate_auc.append(float(row["auc"]) if row else float("nan"))
    return variants


def control_table(
    selections: Sequence[RunSelection], truth, split: str = "test", *, level: float = 0.95
) -> pd.DataFrame:
    """:data:`CONTROL_COLUMNS` for the runs trained with label noise (empty when there are
    none, or without the phantom's ``truth``: :func:`~finegrain.experiment.truth.phantom_truth`):
    per observation, noise level and checkpoint rule, CE and every PCE τ with the mean AUC
    against image truth, and each PCE τ's paired difference from CE with its CI; ``chosen``
    marks the τ chosen on noisy validation; ``level``: the CI's coverage."""
    from finegrain.experiment.aggregate import paired_difference_ci
    from finegrain.experiment.truth import case_truth
    from finegrain.metrics import auc

    noisy = [s for s in selections if float(s.config.get("label_noise") or 0) > 0]
    if not noisy or truth is None:
        return pd.DataFrame(columns=CONTROL_COLUMNS)
    groups: dict[tuple, list[RunSelection]] = {}
    for sel in noisy:
        if sel.spec.method in (CE_METHOD, PCE_METHOD):
            key = (sel.spec.observation, float(sel.config["label_noise"]))
            groups.setdefault(key, []).append(sel)
    rows = []
    for (obs, noise), runs in sorted(groups.items()):
        for checkpoint in CHECKPOINTS:
            variants = _scores(runs, checkpoint, split)
            ce = next((v for v in variants.values() if v.spec.method == CE_METHOD), None)
            if ce is None:
                continue
            cases = next(iter(ce.scores.values())).index
            found = case_truth(truth, list(cases), obs)["image_truth"]
            y = truth_present(found).to_numpy()
            taus = [v for v in variants.values() if v is not ce]
            chosen = max(taus, key=lambda v: np.nanmean(v.validate_auc), default=None)
            for v in [ce, *taus]:
                seeds = sorted(set(v.scores) & set(ce.scores))
                if not seeds:
                    continue
                a = np.column_stack([v.scores[k].reindex(cases) for k in seeds])
                b = np.column_stack([ce.scores[k].reindex(cases) for k in seeds])
                delta, low, high = (
                    paired_difference_ci(y, a, b, level=level) if v is not ce else (np.nan,) * 3
                )
                rows.append(
                    {
                        "observation": obs,
                        "label_noise": noise,
                        "checkpoint": checkpoint,
                        "variant": v.spec.variant,
                        "display": v.spec.display,
                        "tau": v.spec.tau,
                        "seeds": len(seeds),
                        "validate_auc_noisy": float(np.nanmean(v.validate_auc)),
                        "test_auc_truth": float(np.mean([auc(y, c) for c in a.T])),
                        "delta": delta,
                        "low": low,
                        "high": high,
                        "chosen": v is chosen,
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
