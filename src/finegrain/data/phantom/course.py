"""A subject's course: per study, the coarse label of each calibrated finding and the image truth
behind it.

Labels come first. For each calibrated observation a study's label state (positive, uncertain,
negative, blank) is either the subject's previous state (probability :data:`PERSISTENCE`) or a
fresh draw from the calibrated shares, so every study, first or later, has exactly the calibrated
distribution while a subject's findings persist across studies. The image truth then follows the
state:

- **positive**: the report carries a cue with probability ``1 - no_cue`` (real reports). A cued
  positive is slight with probability ``atypical / (1 - no_cue)`` (so the share of atypical among
  positives is the real one); a positive without a cue is slight with the knob
  ``nocue_severity``.
- **uncertain**: the knob ``uncertain_mixture`` (absent / slight / significant / another finding).
- **negative**: absent.
- **blank**: absent, except that :data:`UNREPORTED` x (positive share) of the images show a slight
  finding that the report does not mention.

A finding that persists within its band keeps its severity (stable, small noise); moving from the
significant to the slight band is an improvement, so improving findings are slight, as in v0.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from finegrain.data.phantom.calibration import CALIBRATED, STATES, Calibration
from finegrain.data.phantom.finding import (
    LOBES,
    SIGNIFICANT_BAND,
    SLIGHT_BAND,
    Finding,
    band,
)
from finegrain.data.phantom.knobs import OTHER_FINDING, UNCERTAIN_TRUTHS, PhantomKnobs
from finegrain.data.phantom.noise import before_noise
from finegrain.data.phantom.wording import describe, word
from finegrain.errors import FinegrainError
from finegrain.observations import OBSERVATIONS, TYPICAL

#: Probability that a finding keeps the label state of the subject's previous study.
PERSISTENCE = 0.5
#: Findings shown on the image but not mentioned, as a share of the positive share.
UNREPORTED = 0.03
_STATUS = {"positive": 1, "uncertain": -1, "negative": 0, "blank": None}


@dataclass(frozen=True)
class LabelPlan:
    """Per calibrated observation, the probabilities the course draws from."""

    states: dict[str, np.ndarray]  # cumulative probabilities over STATES (before labeler noise)
    cue: dict[str, float]  # P(cue | positive)
    slight_cued: dict[str, float]  # P(slight | positive with a cue)
    slight_nocue: float  # P(slight | positive without a cue)
    uncertain: np.ndarray  # cumulative probabilities over UNCERTAIN_TRUTHS
    unreported: dict[str, float]  # P(slight finding drawn | blank)

    @classmethod
    def build(cls, calibration: Calibration, knobs: PhantomKnobs) -> LabelPlan:
        """The plan that reproduces ``calibration`` under the labeler noise, with ``knobs``."""
        if isinstance(knobs.prevalence, dict):
            unknown = set(knobs.prevalence) - set(CALIBRATED)
            if unknown:
                raise FinegrainError(
                    f"prevalence: {sorted(unknown)} not calibrated; use {list(CALIBRATED)}"
                )
        states, cue, slight_cued, unreported = {}, {}, {}, {}
        for obs in CALIBRATED:
            share = calibration.shares[obs]
            positive = share.positive * knobs.prevalence_of(obs)
            blank = share.blank - (positive - share.positive)
            if blank < 0:
                raise FinegrainError(
                    f"prevalence x{knobs.prevalence_of(obs)} for {obs}: positive share "
                    f"{positive:.3f} exceeds positive + blank ({share.positive + share.blank:.3f})"
                )
            try:
                drawn = before_noise(positive, share.uncertain, share.negative)
            except ValueError as exc:
                raise FinegrainError(
                    f"prevalence x{knobs.prevalence_of(obs)} for {obs}: {exc}; give a smaller "
                    "multiplier, or a per-observation one (prevalence={observation: multiplier})"
                ) from None
            states[obs] = np.cumsum(drawn)
            no_cue = calibration.no_cue[obs]
            cue[obs] = 1.0 - no_cue
            slight_cued[obs] = (
                min(1.0, calibration.atypical[obs] / cue[obs]) if cue[obs] > 0 else 0.0
            )
            unreported[obs] = min(1.0, UNREPORTED * drawn[0] / drawn[3]) if drawn[3] > 0 else 0.0
        mixture = np.cumsum([knobs.uncertain_mixture[k] for k in UNCERTAIN_TRUTHS])
        return cls(
            states=states,
            cue=cue,
            slight_cued=slight_cued,
            slight_nocue=float(knobs.nocue_severity),
            uncertain=mixture,
            unreported=unreported,
        )


def _pick(rng: np.random.Generator, cumulative: np.ndarray, names: tuple[str, ...]) -> str:
    return names[min(int(np.searchsorted(cumulative, rng.random(), side="right")), len(names) - 1)]


def _severity(rng: np.random.Generator, truth: str, prior: float) -> float:
    if truth not in ("slight", "significant"):
        return 0.0
    lo, hi = SLIGHT_BAND if truth == "slight" else SIGNIFICANT_BAND
    if lo <= prior <= hi:  # persists in its band: stable
        return float(np.clip(prior + rng.normal(0, 0.03), lo, hi))
    return band(rng, truth == "slight")


def _change(prev: dict[str, Finding] | None, prior: float, severity: float) -> str:
    if prev and prior > 0 and severity > 0:
        d = severity - prior
        return "improved" if d < -0.08 else "worsened" if d > 0.08 else "stable"
    if prev and prior > 0:
        return "resolved"
    if prev and severity > 0:
        return "new"
    return ""


def study_findings(
    rng: np.random.Generator, prev: dict[str, Finding] | None, view: str, plan: LabelPlan
) -> dict[str, Finding]:
    """The findings of one study given the subject's previous study ``prev`` (or None)."""
    out: dict[str, Finding] = {obs: Finding() for obs in OBSERVATIONS}
    others: list[str] = []
    for obs in CALIBRATED:
        before = prev[obs] if prev else None
        f = out[obs]
        if before is not None and rng.random() < PERSISTENCE:
            f.state = before.state
        else:
            f.state = _pick(rng, plan.states[obs], STATES)
        cued = False
        if f.state == "positive":
            cued = rng.random() < plan.cue[obs]
            slight = rng.random() < (plan.slight_cued[obs] if cued else plan.slight_nocue)
            f.image_truth = "slight" if slight else "significant"
        elif f.state == "uncertain":
            f.image_truth = _pick(rng, plan.uncertain, UNCERTAIN_TRUTHS)
            cued = f.image_truth in ("slight", "significant") and rng.random() < plan.cue[obs]
            if f.image_truth == "other" and OTHER_FINDING[obs]:
                others.append(OTHER_FINDING[obs])
        elif f.state == "blank" and rng.random() < plan.unreported[obs]:
            f.image_truth = "slight"
        else:
            f.image_truth = "absent"
        f.prior = before.severity if before else 0.0
        f.severity = _severity(rng, f.image_truth, f.prior)
        f.change = _change(prev, f.prior, f.severity)
        f.status = _STATUS[f.state]
        if obs == "Consolidation":
            f.where = before.where if before and before.where else word(rng, tuple(LOBES))
        elif obs == "Pleural Effusion":
            f.where = (
                before.where
                if before and before.where
                else word(rng, ("right", "left", "bilateral", "left", "right"))
            )
        elif obs == "Atelectasis":
            f.where = "bases"
        describe(rng, obs, f, cued)
    for obs in others:  # an uncertain label over another finding: draw that one (slight)
        f = out[obs]
        if f.severity < SLIGHT_BAND[0]:
            f.severity = band(rng, True)
            f.image_truth = "slight"
    # text-mostly findings (not calibrated; as in v0.1)
    px = out["Pneumothorax"]
    if rng.random() < 0.02:
        px.severity = band(rng, True)
        px.status = -1 if rng.random() < 0.25 else 1
        px.image_truth = "slight"
        describe(rng, "Pneumothorax", px, True)
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
