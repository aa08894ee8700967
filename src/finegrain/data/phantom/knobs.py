"""The phantom's named knobs: what real labels cannot tell, stated as parameters a study sweeps.

- ``uncertain_mixture``: the image truth behind an **uncertain** label, a mixture over
  ``absent`` (nothing drawn: "cannot exclude consolidation" over a clear lung), ``slight``,
  ``significant`` and ``other`` (another finding drawn instead: atelectasis, see
  :data:`OTHER_FINDING`). Labels cannot reveal it; the default is an assumption.
- ``nocue_severity``: the share of **slight** image truth behind a positive whose report names
  the finding with no severity or change word (the paper's rule calls such a positive typical).
- ``visibility``: contrast-to-noise of slight findings, a multiplier on the drawn contrast of
  every slight-band lesion (1 = as drawn since v0.1; the image noise is unchanged): one number
  for all drawn observations, or ``{observation: multiplier}`` (the others 1), to set each
  observation's coarse difficulty on its own.
- ``conspicuity``: a multiplier on the drawn contrast of every lesion of an observation, at every
  severity (so slight stays as much fainter than significant as it is; for Cardiomegaly the
  heart's widening): one number, or ``{observation: multiplier}``. It sets an observation's
  coarse difficulty without changing what severity looks like (``visibility`` does change it:
  docs/study.md, section 5). 1 = as drawn since v0.1.
- ``prevalence``: a multiplier on the positive share of each calibrated observation (one number
  for all, or ``{observation: multiplier}``); the difference is taken from (or given to) blanks.

>>> PhantomKnobs(uncertain_mixture={"absent": 1}).uncertain_mixture["slight"]
0.0
>>> knobs = PhantomKnobs(visibility={"Consolidation": 2})
>>> knobs.visibility_of("Consolidation"), knobs.visibility_of("Edema")
(2.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from finegrain.data.phantom.calibration import CALIBRATED
from finegrain.data.phantom.finding import SIGNIFICANT_BAND, Finding
from finegrain.errors import FinegrainError

#: What may lie behind an uncertain label.
UNCERTAIN_TRUTHS: tuple[str, ...] = ("absent", "slight", "significant", "other")
#: Default uncertain mixture (an assumption, not a measurement: docs/phantom.md).
DEFAULT_UNCERTAIN_MIXTURE: dict[str, float] = {
    "absent": 0.40,
    "slight": 0.35,
    "significant": 0.10,
    "other": 0.15,
}
#: Default share of slight image truth behind a positive without a cue (maximum ignorance).
DEFAULT_NOCUE_SEVERITY = 0.5
#: The finding drawn when an uncertain label hides "another finding" (none for Atelectasis).
OTHER_FINDING: dict[str, str | None] = {
    "Consolidation": "Atelectasis",
    "Edema": "Atelectasis",
    "Pleural Effusion": "Atelectasis",
    "Cardiomegaly": "Atelectasis",
    "Atelectasis": None,
}


def _mixture(values: Mapping[str, float]) -> dict[str, float]:
    unknown = set(values) - set(UNCERTAIN_TRUTHS)
    if unknown:
        raise FinegrainError(
            f"uncertain_mixture: unknown parts {sorted(unknown)}; use {list(UNCERTAIN_TRUTHS)}"
        )
    weights = {k: float(values.get(k, 0.0)) for k in UNCERTAIN_TRUTHS}
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise FinegrainError(
            f"uncertain_mixture: weights must be >= 0 with a positive sum: {values}"
        )
    total = sum(weights.values())
    return {k: w / total for k, w in weights.items()}


def _nocue(value: float | Mapping[str, float]) -> float:
    if isinstance(value, Mapping):
        unknown = set(value) - {"slight", "significant"}
        if unknown:
            raise FinegrainError(f"nocue_severity: unknown parts {sorted(unknown)}")
        slight, significant = float(value.get("slight", 0)), float(value.get("significant", 0))
        if slight < 0 or significant < 0 or slight + significant <= 0:
            raise FinegrainError(
                f"nocue_severity: weights must be >= 0 with a positive sum: {value}"
            )
        return slight / (slight + significant)
    share = float(value)
    if not 0.0 <= share <= 1.0:
        raise FinegrainError(f"nocue_severity: share of slight must be in [0, 1], got {share}")
    return share


def _multiplier(value: float | Mapping[str, float], knob: str) -> float | dict[str, float]:
    """One contrast multiplier (a float) or ``{observation: multiplier}`` over drawn
    observations, for the knob called ``knob``."""
    if isinstance(value, Mapping):
        multipliers = {str(k): float(v) for k, v in value.items()}
        unknown = sorted(set(multipliers) - set(CALIBRATED))
        if unknown:
            raise FinegrainError(
                f"{knob}: {unknown} not drawn by the phantom; use {list(CALIBRATED)}"
            )
        bad = {k: v for k, v in multipliers.items() if not v > 0}
        result: float | dict[str, float] = multipliers
    else:
        result = float(value)
        bad = {} if result > 0 else {"all": result}
    if bad:
        raise FinegrainError(f"{knob} multipliers must be > 0, got {bad}")
    return result


def multiplier_of(value: float | Mapping[str, float], observation: str) -> float:
    """A per-observation knob's value for ``observation``: the one number, or its entry in
    ``{observation: multiplier}`` (1 when not given)."""
    if isinstance(value, Mapping):
        return float(value.get(observation, 1.0))
    return float(value)


@dataclass(frozen=True)
class PhantomKnobs:
    """The phantom's unknowns (see the module docstring); validated and normalised."""

    uncertain_mixture: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_UNCERTAIN_MIXTURE)
    )
    nocue_severity: float | Mapping[str, float] = DEFAULT_NOCUE_SEVERITY
    visibility: float | Mapping[str, float] = 1.0
    prevalence: float | Mapping[str, float] = 1.0
    conspicuity: float | Mapping[str, float] = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "uncertain_mixture", _mixture(self.uncertain_mixture))
        object.__setattr__(self, "nocue_severity", _nocue(self.nocue_severity))
        object.__setattr__(self, "visibility", _multiplier(self.visibility, "visibility"))
        object.__setattr__(self, "conspicuity", _multiplier(self.conspicuity, "conspicuity"))
        prevalence = self.prevalence
        if isinstance(prevalence, Mapping):
            prevalence = {str(k): float(v) for k, v in prevalence.items()}
            bad = {k: v for k, v in prevalence.items() if v < 0}
        else:
            prevalence = float(prevalence)
            bad = {"all": prevalence} if prevalence < 0 else {}
        if bad:
            raise FinegrainError(f"prevalence multipliers must be >= 0, got {bad}")
        object.__setattr__(self, "prevalence", prevalence)

    def visibility_of(self, observation: str) -> float:
        """The slight-band contrast multiplier of ``observation`` (1 when not given)."""
        return multiplier_of(self.visibility, observation)

    def conspicuity_of(self, observation: str) -> float:
        """The contrast multiplier of every lesion of ``observation`` (1 when not given)."""
        return multiplier_of(self.conspicuity, observation)

    def prevalence_of(self, observation: str) -> float:
        """The positive-share multiplier of ``observation`` (1 when not given)."""
        return multiplier_of(self.prevalence, observation)

    def contrast(self, finding: Finding, observation: str) -> float:
        """The contrast multiplier of ``observation``'s drawn ``finding``: its visibility in the
        slight band (else 1), times its conspicuity (every severity)."""
        slight = 0 < finding.severity < SIGNIFICANT_BAND[0]
        visibility = self.visibility_of(observation) if slight else 1.0
        return visibility * self.conspicuity_of(observation)

    def as_dict(self) -> dict:
        """JSON-ready form (written to ``phantom.json``); ``conspicuity`` only when it is not 1,
        so a phantom drawn before it existed keeps its bytes."""
        found = {
            "uncertain_mixture": dict(self.uncertain_mixture),
            "nocue_severity": {
                "slight": self.nocue_severity,
                "significant": 1.0 - float(self.nocue_severity),
            },
            "visibility": (
                dict(self.visibility) if isinstance(self.visibility, Mapping) else self.visibility
            ),
            "prevalence": (
                dict(self.prevalence) if isinstance(self.prevalence, Mapping) else self.prevalence
            ),
        }
        if self.conspicuity != 1.0:
            conspicuity = self.conspicuity
            found["conspicuity"] = (
                dict(conspicuity) if isinstance(conspicuity, Mapping) else conspicuity
            )
        return found
