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

How severity is drawn depends on the design (:mod:`~finegrain.data.phantom.finding`):

- ``continuum``: a new positive's severity is slight (uniform below the cut) with the knob
  ``slight_share``, else significant (uniform above it); a finding present in the previous study
  drifts from its severity there (normal steps of :data:`COURSE_SD`, reflected at the ends), so
  that it improves, worsens or stays; each lesion has its own extent, density and offset
  (``spread``), kept while it persists. A reader then words the report
  (:mod:`~finegrain.data.phantom.reader`), with degree-word rates solved on a pilot of the same
  course (:func:`pilot_positives`) so that the atypical and no-cue shares are the real ones.
- ``bands``: the report's cue is drawn first and the severity band follows it; a finding that
  persists within its band keeps its severity (stable, small noise); moving from the significant
  to the slight band is an improvement, so improving findings are slight, as in v0.1.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace

import numpy as np

from finegrain.data.phantom.calibration import CALIBRATED, STATES, Calibration
from finegrain.data.phantom.finding import (
    LOBES,
    SEVERITY_CUT,
    SEVERITY_MIN,
    SIGNIFICANT_BAND,
    SLIGHT_BAND,
    Finding,
    band,
    truth_of,
)
from finegrain.data.phantom.knobs import OTHER_FINDING, UNCERTAIN_TRUTHS, PhantomKnobs
from finegrain.data.phantom.noise import before_noise
from finegrain.data.phantom.reader import read, reader_for
from finegrain.data.phantom.wording import describe, word
from finegrain.errors import FinegrainError
from finegrain.observations import OBSERVATIONS, TYPICAL

#: Probability that a finding keeps the label state of the subject's previous study.
PERSISTENCE = 0.5
#: Findings shown on the image but not mentioned, as a share of the positive share.
UNREPORTED = 0.03
#: ``continuum``: standard deviation of a persisting finding's change of severity per study.
COURSE_SD = 0.15
#: ``continuum``: standard deviation of a lesion's offset from its site (Consolidation's lobe
#: centre, Edema's hila), in normalised image coordinates.
OFFSET_SD = 0.05
#: ``continuum``: studies (and seed) of the pilot course on which the reader's degree-word
#: rates are solved; the rates' sampling error is about a point.
PILOT_STUDIES = 20_000
PILOT_SEED = 20_261_207
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
    knobs: PhantomKnobs = field(default_factory=PhantomKnobs)
    #: ``continuum``, per observation: the reader's noise (sd of the cut-points) and
    #: P(degree word | the reader sees it slight / significant)
    reader_noise: dict[str, float] = field(default_factory=dict)
    word_slight: dict[str, float] = field(default_factory=dict)
    word_significant: dict[str, float] = field(default_factory=dict)

    @property
    def design(self) -> str:
        return self.knobs.design

    @classmethod
    def build(cls, calibration: Calibration, knobs: PhantomKnobs) -> LabelPlan:
        """The plan that reproduces ``calibration`` under the labeler noise, with ``knobs``
        (``continuum``: with each observation's reader solved on a pilot course)."""
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
        plan = cls(
            states=states,
            cue=cue,
            slight_cued=slight_cued,
            slight_nocue=float(knobs.nocue_severity) if knobs.design == "bands" else math.nan,
            uncertain=mixture,
            unreported=unreported,
            knobs=knobs,
        )
        if knobs.design == "bands":
            return plan
        readers = _readers(plan, calibration)
        return replace(
            plan,
            reader_noise={obs: r[0] for obs, r in readers.items()},
            word_slight={obs: r[1] for obs, r in readers.items()},
            word_significant={obs: r[2] for obs, r in readers.items()},
        )

    def reader(self) -> dict[str, dict[str, float]]:
        """``continuum``: each observation's solved reader (``phantom.json``'s ``reader``)."""
        return {
            obs: {
                "noise": round(self.reader_noise[obs], 4),
                "word_slight": round(self.word_slight[obs], 4),
                "word_significant": round(self.word_significant[obs], 4),
            }
            for obs in self.reader_noise
        }


def _readers(plan: LabelPlan, calibration: Calibration) -> dict[str, tuple[float, float, float]]:
    """Each calibrated observation's reader (noise, word rates), solved on the pilot course
    (once per calibration and knobs in a process: the pilot takes a second or two)."""
    key = (calibration.profile, json.dumps(plan.knobs.as_dict(), sort_keys=True))
    if key not in _READERS:
        agreement = float(plan.knobs.reader_agreement)  # type: ignore[arg-type]
        _READERS[key] = {
            obs: reader_for(
                severities,
                changes,
                agreement=agreement,
                atypical=calibration.atypical[obs],
                no_cue=calibration.no_cue[obs],
                observation=obs,
            )
            for obs, (severities, changes) in pilot_positives(plan, calibration).items()
        }
    return _READERS[key]


_READERS: dict[tuple[str, str], dict[str, tuple[float, float, float]]] = {}


def pilot_positives(
    plan: LabelPlan, calibration: Calibration, studies: int = PILOT_STUDIES
) -> dict[str, tuple[list[float], list[str]]]:
    """``continuum``: per calibrated observation, the severities and disease-course changes of
    the positives of a pilot course of ``studies`` studies (a fixed seed; no report, no image)."""
    from finegrain.data.phantom.splits import subject_plan

    rng = np.random.default_rng(PILOT_SEED)
    found: dict[str, tuple[list[float], list[str]]] = {obs: ([], []) for obs in CALIBRATED}
    for _, count in subject_plan(rng, calibration.studies_per_subject, studies, None):
        prev = None
        for _ in range(count):
            out = {obs: Finding() for obs in CALIBRATED}
            _continuum_course(rng, prev, plan, out)
            for obs in CALIBRATED:
                if out[obs].state == "positive":
                    found[obs][0].append(out[obs].severity)
                    found[obs][1].append(out[obs].change)
            prev = out
    return found


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


def _state(rng: np.random.Generator, before: Finding | None, plan: LabelPlan, obs: str) -> str:
    """A study's label state: the previous study's (with :data:`PERSISTENCE`) or a fresh draw."""
    if before is not None and rng.random() < PERSISTENCE:
        return before.state
    return _pick(rng, plan.states[obs], STATES)


def _where(rng: np.random.Generator, obs: str, before: Finding | None) -> str:
    """Where the finding lies: a subject keeps its lobe (Consolidation) or side (effusion)."""
    if obs == "Consolidation":
        return before.where if before and before.where else word(rng, tuple(LOBES))
    if obs == "Pleural Effusion":
        return (
            before.where
            if before and before.where
            else word(rng, ("right", "left", "bilateral", "left", "right"))
        )
    return "bases" if obs == "Atelectasis" else ""


def _continuum_severity(
    rng: np.random.Generator, obs: str, truth: str, prior: float, plan: LabelPlan
) -> float:
    """``truth``: ``present`` (a positive: drifts from ``prior`` if the finding was there, else
    slight with the observation's ``slight_share``), ``slight`` / ``significant`` (fresh, on
    that side of the cut) or anything else (absent: 0)."""
    if truth == "present" and prior > 0:
        s = prior + rng.normal(0.0, COURSE_SD)
        if s > 1.0:
            s = 2.0 - s
        if s < SEVERITY_MIN:
            s = 2 * SEVERITY_MIN - s
        return float(np.clip(s, SEVERITY_MIN, 1.0))
    if truth == "present":
        truth = "slight" if rng.random() < plan.knobs.slight_share_of(obs) else "significant"
    if truth == "slight":
        return float(rng.uniform(SEVERITY_MIN, SEVERITY_CUT))
    if truth == "significant":
        return float(rng.uniform(SEVERITY_CUT, 1.0))
    return 0.0


def _lesion(
    rng: np.random.Generator, obs: str, f: Finding, before: Finding | None, plan: LabelPlan
) -> None:
    """A drawn finding's own extent, density and offset: kept while it persists, else new."""
    if before is not None and before.severity > 0:
        f.extent, f.density = before.extent, before.density
        f.offset_x, f.offset_y = before.offset_x, before.offset_y
        return
    spread = plan.knobs.spread_of(obs)
    f.extent, f.density = (float(v) for v in np.exp(rng.normal(0.0, spread, 2)))
    f.offset_x, f.offset_y = (float(v) for v in rng.normal(0.0, OFFSET_SD, 2))


def _continuum_course(
    rng: np.random.Generator,
    prev: dict[str, Finding] | None,
    plan: LabelPlan,
    out: dict[str, Finding],
) -> list[str]:
    """``continuum``: the label state, severity, lesion and change of each calibrated finding
    (into ``out``); returns the findings an uncertain label's "other finding" draws."""
    others: list[str] = []
    for obs in CALIBRATED:
        before = prev[obs] if prev else None
        f = out[obs]
        f.state = _state(rng, before, plan, obs)
        if f.state == "positive":
            truth = "present"
        elif f.state == "uncertain":
            truth = _pick(rng, plan.uncertain, UNCERTAIN_TRUTHS)
            if truth == "other" and OTHER_FINDING[obs]:
                others.append(OTHER_FINDING[obs])  # type: ignore[arg-type]
        elif f.state == "blank" and rng.random() < plan.unreported[obs]:
            truth = "slight"
        else:
            truth = "absent"
        f.prior = before.severity if before else 0.0
        f.severity = _continuum_severity(rng, obs, truth, f.prior, plan)
        f.image_truth = "other" if truth == "other" else truth_of(f.severity)
        if f.severity > 0:
            _lesion(rng, obs, f, before, plan)
        f.change = _change(prev, f.prior, f.severity)
        f.status = _STATUS[f.state]
        f.where = _where(rng, obs, before)
    return others


def study_findings(
    rng: np.random.Generator, prev: dict[str, Finding] | None, view: str, plan: LabelPlan
) -> dict[str, Finding]:
    """The findings of one study given the subject's previous study ``prev`` (or None)."""
    out: dict[str, Finding] = {obs: Finding() for obs in OBSERVATIONS}
    if plan.design == "bands":
        others = _bands_findings(rng, prev, plan, out)
        for obs in others:  # an uncertain label over another finding: draw that one (slight)
            f = out[obs]
            if f.severity < SLIGHT_BAND[0]:
                f.severity = band(rng, True)
                f.image_truth = "slight"
    else:
        others = _continuum_course(rng, prev, plan, out)
        for obs in others:  # an uncertain label over another finding: draw that one (slight)
            f = out[obs]
            if f.severity <= 0:
                f.severity = _continuum_severity(rng, obs, "slight", 0.0, plan)
                f.image_truth = "slight"
                _lesion(rng, obs, f, None, plan)
        for obs in CALIBRATED:
            read(
                rng,
                obs,
                out[obs],
                reader_noise=plan.reader_noise[obs],
                word_slight=plan.word_slight[obs],
                word_significant=plan.word_significant[obs],
            )
    _text_findings(rng, out, view)
    return out


def _bands_findings(
    rng: np.random.Generator,
    prev: dict[str, Finding] | None,
    plan: LabelPlan,
    out: dict[str, Finding],
) -> list[str]:
    """``bands``: each calibrated finding, its cue drawn first and its band after it (the
    random draws of finegrain 0.2-0.3, in their order); returns the "other findings"."""
    others: list[str] = []
    for obs in CALIBRATED:
        before = prev[obs] if prev else None
        f = out[obs]
        f.state = _state(rng, before, plan, obs)
        cued = False
        if f.state == "positive":
            cued = rng.random() < plan.cue[obs]
            slight = rng.random() < (plan.slight_cued[obs] if cued else plan.slight_nocue)
            f.image_truth = "slight" if slight else "significant"
        elif f.state == "uncertain":
            f.image_truth = _pick(rng, plan.uncertain, UNCERTAIN_TRUTHS)
            cued = f.image_truth in ("slight", "significant") and rng.random() < plan.cue[obs]
            if f.image_truth == "other" and OTHER_FINDING[obs]:
                others.append(OTHER_FINDING[obs])  # type: ignore[arg-type]
        elif f.state == "blank" and rng.random() < plan.unreported[obs]:
            f.image_truth = "slight"
        else:
            f.image_truth = "absent"
        f.prior = before.severity if before else 0.0
        f.severity = _severity(rng, f.image_truth, f.prior)
        f.change = _change(prev, f.prior, f.severity)
        f.status = _STATUS[f.state]
        f.where = _where(rng, obs, before)
        describe(rng, obs, f, cued)
    return others


def _text_findings(rng: np.random.Generator, out: dict[str, Finding], view: str) -> None:
    """The text-mostly findings (not calibrated; as in v0.1) and No Finding."""
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
