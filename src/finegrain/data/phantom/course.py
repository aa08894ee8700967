"""A subject's disease course: how each drawn finding's severity moves from study to study."""

from __future__ import annotations

import numpy as np

from finegrain.data.phantom.finding import (
    DRAWN,
    LOBES,
    SIGNIFICANT_BAND,
    SLIGHT_BAND,
    Finding,
    band,
)
from finegrain.data.phantom.wording import describe, word
from finegrain.observations import OBSERVATIONS, TYPICAL


def _next_severity(rng: np.random.Generator, obs: str, prev: float) -> float:
    """One step of a subject's disease course for a drawn observation."""
    chronic = obs == "Cardiomegaly"
    onset = {"Consolidation": 0.22, "Edema": 0.18, "Pleural Effusion": 0.22, "Cardiomegaly": 0.16}
    if prev <= 0:
        return band(rng, rng.random() < 0.5) if rng.random() < onset[obs] else 0.0
    slight = prev < SIGNIFICANT_BAND[0]
    u = rng.random()
    if not chronic and u < 0.18:
        return 0.0  # resolved
    if u < 0.50:  # improving: an improving finding is mostly slight now
        if slight:
            return max(SLIGHT_BAND[0], prev * rng.uniform(0.35, 0.7))
        return band(rng, True) if rng.random() < 0.75 else max(0.6, prev - rng.uniform(0.2, 0.3))
    if u < 0.75:  # worsening
        if slight and rng.random() < 0.6:
            return band(rng, False)
        return min(SLIGHT_BAND[1] if slight else 1.0, prev + rng.uniform(0.15, 0.3))
    lo, hi = SLIGHT_BAND if slight else SIGNIFICANT_BAND
    return float(np.clip(prev + rng.normal(0, 0.03), lo, hi))  # stable


def study_findings(rng, prev: dict[str, Finding] | None, view: str) -> dict[str, Finding]:
    out: dict[str, Finding] = {obs: Finding() for obs in OBSERVATIONS}
    for obs in DRAWN:
        p = prev[obs].severity if prev else 0.0
        s = _next_severity(rng, obs, p)
        f = out[obs]
        f.severity, f.prior = s, p
        if prev and p > 0 and s > 0:
            d = s - p
            f.change = "improved" if d < -0.08 else "worsened" if d > 0.08 else "stable"
        elif prev and p > 0:
            f.change = "resolved"
        elif prev and s > 0:
            f.change = "new"
        if obs == "Consolidation":
            f.where = prev[obs].where if prev and prev[obs].where else word(rng, tuple(LOBES))
        if obs == "Pleural Effusion":
            f.where = (
                prev[obs].where
                if prev and prev[obs].where
                else word(rng, ("right", "left", "bilateral", "left", "right"))
            )
        describe(rng, obs, f)
        if s <= 0:
            negate = {"Pleural Effusion": 0.6, "Cardiomegaly": 0.45}.get(obs, 0.4)
            if f.change == "resolved" or rng.random() < negate:
                f.status = 0
    # text-mostly findings
    a = out["Atelectasis"]
    if rng.random() < 0.15:
        a.severity = band(rng, rng.random() < 0.6)
        a.where = "bases"
        describe(rng, "Atelectasis", a)
    px = out["Pneumothorax"]
    if rng.random() < 0.02:
        px.severity = band(rng, True)
        describe(rng, "Pneumothorax", px)
    elif rng.random() < 0.6:
        px.status = 0
    sd = out["Support Devices"]
    if rng.random() < (0.5 if view == "AP" else 0.05):
        sd.status, sd.subcategory = 1, TYPICAL
    if out["Consolidation"].status in (1, -1) and rng.random() < 0.3:
        out["Pneumonia"].status, out["Pneumonia"].subcategory = -1, TYPICAL
    if rng.random() < 0.03:
        out["Fracture"].status, out["Fracture"].subcategory = 1, TYPICAL
    pathology = [o for o in OBSERVATIONS if o not in ("No Finding", "Support Devices")]
    if not any(out[o].status in (1, -1) for o in pathology):
        out["No Finding"].status = 1  # no fine label for "No Finding"
    return out
