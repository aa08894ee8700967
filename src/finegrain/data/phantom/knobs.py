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

The ``continuum`` design (the default; ``design``) has three knobs of its own, and no
``nocue_severity`` (there the severity behind a positive without a cue follows from the reader):

- ``slight_share``: the share of new positives whose true severity lies below the slight /
  significant cut (one number or ``{observation: share}``, the others at their defaults,
  :data:`DEFAULT_SLIGHT_SHARE`); severities are uniform within each side.
- ``spread``: how much lesions of one severity differ in appearance: the standard deviation of
  the log of each lesion's extent and density multipliers (one number or per observation). 0
  draws every lesion of a severity alike; larger values make neighbouring severities overlap.
- ``reader_agreement``: how often the report's degree word agrees with the image's slight /
  significant, among the positives graded with one (default 0.865: as often as two
  radiologists agree, :mod:`~finegrain.data.phantom.reader`); the phantom solves each
  observation's reader noise (the spread of the cut-points from report to report) for it.

>>> PhantomKnobs(uncertain_mixture={"absent": 1}).uncertain_mixture["slight"]
0.0
>>> knobs = PhantomKnobs(visibility={"Consolidation": 2})
>>> knobs.visibility_of("Consolidation"), knobs.visibility_of("Edema")
(2.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from finegrain.data.phantom.calibration import CALIBRATED
from finegrain.data.phantom.finding import DEFAULT_DESIGN, DESIGNS, SEVERITY_CUT, Finding
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
#: Default share of slight image truth behind a positive without a cue (maximum ignorance;
#: ``bands`` design only).
DEFAULT_NOCUE_SEVERITY = 0.5
#: ``continuum`` design: defaults of its own knobs (see the module docstring and
#: docs/phantom.md for where each comes from).
#: The share of slight positives is what the bands design implied at its maximum-ignorance
#: ``nocue_severity`` (0.5): the real atypical share plus half the real no-cue share
#: (calibration profile ``chexpert-frontal``, rounded; a test checks it).
DEFAULT_SLIGHT_SHARE: dict[str, float] = {
    "Consolidation": 0.59,
    "Edema": 0.69,
    "Pleural Effusion": 0.73,
    "Cardiomegaly": 0.63,
    "Atelectasis": 0.65,
}
DEFAULT_SPREAD = 0.35
DEFAULT_READER_AGREEMENT = 0.865
#: The knobs that only one design has (the others apply to both).
DESIGN_KNOBS: dict[str, tuple[str, ...]] = {
    "continuum": ("slight_share", "spread", "reader_agreement"),
    "bands": ("nocue_severity",),
}
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
    return _checked(value, knob, lambda v: v > 0, "multipliers must be > 0")


def _per_observation(
    value: float | Mapping[str, float], knob: str, low: float, high: float
) -> float | dict[str, float]:
    """One number in [low, high], or ``{observation: number}`` over drawn observations."""
    return _checked(value, knob, lambda v: low <= v <= high, f"must be in [{low:g}, {high:g}]")


def _checked(
    value: float | Mapping[str, float], knob: str, ok: Callable[[float], bool], rule: str
) -> float | dict[str, float]:
    """``value`` (one number, or ``{observation: number}`` over drawn observations) with each
    number ``ok``; an observation the phantom does not draw, or a number against ``rule``, is
    an error naming ``knob``."""
    if isinstance(value, Mapping):
        values = {str(k): float(v) for k, v in value.items()}
        unknown = sorted(set(values) - set(CALIBRATED))
        if unknown:
            raise FinegrainError(
                f"{knob}: {unknown} not drawn by the phantom; use {list(CALIBRATED)}"
            )
        bad = {k: v for k, v in values.items() if not ok(v)}
        result: float | dict[str, float] = values
    else:
        result = float(value)
        bad = {} if ok(result) else {"all": result}
    if bad:
        raise FinegrainError(f"{knob} {rule}, got {bad}")
    return result


def multiplier_of(
    value: float | Mapping[str, float], observation: str, default: float = 1.0
) -> float:
    """A per-observation knob's value for ``observation``: the one number, or its entry in
    ``{observation: multiplier}`` (``default`` when not given)."""
    if isinstance(value, Mapping):
        return float(value.get(observation, default))
    return float(value)


@dataclass(frozen=True)
class PhantomKnobs:
    """The phantom's unknowns (see the module docstring); validated and normalised."""

    uncertain_mixture: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_UNCERTAIN_MIXTURE)
    )
    #: ``bands`` only (``None``: :data:`DEFAULT_NOCUE_SEVERITY`)
    nocue_severity: float | Mapping[str, float] | None = None
    visibility: float | Mapping[str, float] = 1.0
    prevalence: float | Mapping[str, float] = 1.0
    conspicuity: float | Mapping[str, float] = 1.0
    #: ``continuum`` only (``None``: the ``DEFAULT_*`` above)
    slight_share: float | Mapping[str, float] | None = None
    spread: float | Mapping[str, float] | None = None
    reader_agreement: float | None = None
    #: how severity is drawn: ``continuum`` or ``bands`` (finding.DESIGNS)
    design: str = DEFAULT_DESIGN

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise FinegrainError(f"design must be one of {list(DESIGNS)}, got {self.design!r}")
        other = "bands" if self.design == "continuum" else "continuum"
        given = [k for k in DESIGN_KNOBS[other] if getattr(self, k) is not None]
        if given:
            raise FinegrainError(
                f"{', '.join(given)}: a knob of the {other} design, not of the {self.design} "
                "design (docs/phantom.md)"
            )
        object.__setattr__(self, "uncertain_mixture", _mixture(self.uncertain_mixture))
        if self.design == "bands":
            nocue = DEFAULT_NOCUE_SEVERITY if self.nocue_severity is None else self.nocue_severity
            object.__setattr__(self, "nocue_severity", _nocue(nocue))
        else:
            share = self.slight_share
            if share is None or isinstance(share, Mapping):  # the defaults, with those given
                share = {**DEFAULT_SLIGHT_SHARE, **(share or {})}
            object.__setattr__(self, "slight_share", _per_observation(share, "slight_share", 0, 1))
            spread = DEFAULT_SPREAD if self.spread is None else self.spread
            object.__setattr__(self, "spread", _per_observation(spread, "spread", 0.0, 2.0))
            agreement = self.reader_agreement
            agreement = DEFAULT_READER_AGREEMENT if agreement is None else float(agreement)
            if not 0.5 < agreement <= 1.0:
                raise FinegrainError(f"reader_agreement must be in (0.5, 1], got {agreement}")
            object.__setattr__(self, "reader_agreement", agreement)
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

    def slight_share_of(self, observation: str) -> float:
        """``continuum``: the share of ``observation``'s positives drawn slight."""
        return multiplier_of(self.slight_share, observation)  # type: ignore[arg-type]

    def spread_of(self, observation: str) -> float:
        """``continuum``: the log-sd of ``observation``'s lesion extent and density."""
        return multiplier_of(self.spread, observation, DEFAULT_SPREAD)  # type: ignore[arg-type]

    def contrast(self, finding: Finding, observation: str) -> float:
        """The contrast multiplier of ``observation``'s drawn ``finding``: its visibility when
        slight (else 1), times its conspicuity (every severity). (The cut divides the bands
        design's two bands as well.)"""
        slight = 0 < finding.severity < SEVERITY_CUT
        visibility = self.visibility_of(observation) if slight else 1.0
        return visibility * self.conspicuity_of(observation)

    def as_dict(self) -> dict:
        """JSON-ready form (written to ``phantom.json``, whose ``design`` is written beside the
        knobs, not among them): the knobs of the phantom's design; in the bands design
        ``conspicuity`` only when it is not 1, so a phantom drawn before it existed keeps its
        bytes."""

        def plain(value):
            return dict(value) if isinstance(value, Mapping) else value

        found: dict = {"uncertain_mixture": dict(self.uncertain_mixture)}
        if self.design == "bands":
            found["nocue_severity"] = {
                "slight": self.nocue_severity,
                "significant": 1.0 - float(self.nocue_severity),  # type: ignore[arg-type]
            }
        found["visibility"] = plain(self.visibility)
        found["prevalence"] = plain(self.prevalence)
        if self.design == "continuum" or self.conspicuity != 1.0:
            found["conspicuity"] = plain(self.conspicuity)
        if self.design == "continuum":
            found.update(
                slight_share=plain(self.slight_share),
                spread=plain(self.spread),
                reader_agreement=self.reader_agreement,
            )
        return found

    @classmethod
    def recorded(cls, settings: Mapping) -> PhantomKnobs:
        """The knobs a phantom was drawn with, from its ``phantom.json`` ``settings`` (a phantom
        without a ``design`` there was drawn by the bands design)."""
        return cls(design=settings.get("design", "bands"), **settings["knobs"])
