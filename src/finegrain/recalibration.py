"""Recalibration: a monotone map of a model's positive probability, fitted on validation
predictions, that makes the probability mean what it says.

* :class:`TemperatureScaling` (the default; Guo et al., 2017): ``p' = σ(logit(p) / T)``, one
  parameter ``T > 0`` fitted by minimising the validation log-loss. For a method whose
  probability is a 2-way softmax it is the classic temperature on the logits (up to float32
  saturation: ``p`` is clipped to ``[2⁻²⁴, 1 − 2⁻²⁴]``, logits of ±16.6); for any other head it
  is the same one-parameter map of the log-odds. Strictly increasing: it changes no ranking, no
  AUC, and tier thresholds fitted after it give the same tiers.
* :class:`IsotonicCalibration`: scikit-learn's ``IsotonicRegression`` (non-decreasing, clipped
  to [0, 1] and to the fitted range), stored as its breakpoints and applied by linear
  interpolation between them. It can merge probabilities into one value (its flat steps), so it
  may change AUC by ties, and thresholds fitted after it cannot cut inside a step.

A map works on probabilities alone, so it is fitted from a run's ``predictions-validate.csv``
without the model, and applied to numpy arrays (:meth:`Recalibration.apply`: analysis, tier
thresholds) and to torch tensors (:meth:`Recalibration.apply_tensor`: ``predict``, ``cam`` and
the exported graph, with the same float32 operations). It is stored in a checkpoint as a plain
dict (:meth:`Recalibration.to_dict`, :func:`from_dict`) beside the tier thresholds.

>>> t = fit_recalibration([0, 0, 0, 1, 1, 1], [0.01, 0.1, 0.9, 0.2, 0.95, 0.99])
>>> round(t.temperature, 3), t.apply([0.5, 0.99]).round(3).tolist()  # overconfident: T > 1
(2.387, [0.5, 0.873])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from finegrain.calibration import check_probability
from finegrain.errors import FinegrainError, option
from finegrain.metrics import _BINARY_CODES, _check_classes

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

__all__ = [
    "KINDS",
    "EPS",
    "IsotonicCalibration",
    "Recalibration",
    "TemperatureScaling",
    "describe",
    "fit_recalibration",
    "from_dict",
]

#: Probabilities are clipped to ``[EPS, 1 − EPS]`` before their log-odds are taken: float32's
#: spacing just below 1, so that numpy (float64) and torch (float32) clip alike.
EPS = 2.0**-24
#: The maps ``finegrain calibrate --calibration`` fits (``none``: store none).
KINDS = ("temperature", "isotonic", "none")


@dataclass(frozen=True)
class Recalibration:
    """A fitted map of the positive probability (abstract); ``n_positive`` / ``n_negative``:
    the validation cases it was fitted on, ``iteration``: their checkpoint's."""

    kind: ClassVar[str] = ""
    n_positive: int = 0
    n_negative: int = 0
    iteration: int | None = None

    def apply(self, probability: Sequence | np.ndarray) -> np.ndarray:
        """The recalibrated probabilities (float64)."""
        raise NotImplementedError

    def apply_tensor(self, probability: Tensor) -> Tensor:
        """The same map on a float tensor, in torch operations that TorchScript and ONNX
        export (``predict``, ``cam``, ``export``)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """Plain str/float/int/list values (storable in a ``weights_only`` checkpoint)."""
        return {"kind": self.kind, **asdict(self)}

    def describe(self) -> str:
        """One line: ``temperature T = 1.83`` or ``isotonic (24 breakpoints)``."""
        raise NotImplementedError


@dataclass(frozen=True)
class TemperatureScaling(Recalibration):
    """``p' = σ(logit(clip(p)) / T)``."""

    kind: ClassVar[str] = "temperature"
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise FinegrainError(f"temperature must be > 0, got {self.temperature}")

    def apply(self, probability: Sequence | np.ndarray) -> np.ndarray:
        from scipy.special import expit, logit

        p = np.clip(np.asarray(probability, dtype=np.float64), EPS, 1.0 - EPS)
        return expit(logit(p) / self.temperature)

    def apply_tensor(self, probability: Tensor) -> Tensor:
        return (probability.clamp(EPS, 1.0 - EPS).logit() / self.temperature).sigmoid()

    def describe(self) -> str:
        return f"temperature T = {self.temperature:.4g}"


@dataclass(frozen=True)
class IsotonicCalibration(Recalibration):
    """Linear interpolation between the breakpoints ``(x, y)`` of an isotonic regression,
    constant beyond them."""

    kind: ClassVar[str] = "isotonic"
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        x = np.asarray(self.x, dtype=float)
        if x.size == 0 or x.size != len(self.y) or np.any(np.diff(x) <= 0):
            raise FinegrainError(
                "isotonic calibration needs increasing breakpoints x with one y each; got "
                f"{x.size} x and {len(self.y)} y"
            )

    def apply(self, probability: Sequence | np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(probability, dtype=np.float64), self.x, self.y)

    def apply_tensor(self, probability: Tensor) -> Tensor:
        # y0 + Σ slope_i · (clamp(p, x_i, x_i+1) − x_i): interpolation in clamps and sums only
        x = probability.new_tensor(self.x)
        y = probability.new_tensor(self.y)
        if len(self.x) == 1:
            return probability * 0 + y[0]
        slope = (y[1:] - y[:-1]) / (x[1:] - x[:-1])
        p = probability.unsqueeze(-1)
        steps = (p.clamp_min(x[:-1]).minimum(x[1:]) - x[:-1]) * slope
        return y[0] + steps.sum(-1)

    def describe(self) -> str:
        return f"isotonic ({len(self.x)} breakpoints)"


_CLASSES: dict[str, type[Recalibration]] = {
    c.kind: c for c in (TemperatureScaling, IsotonicCalibration)
}


def from_dict(data: dict[str, Any]) -> Recalibration:
    """Inverse of :meth:`Recalibration.to_dict`; an unknown kind is an error naming it."""
    kind = data.get("kind")
    if kind not in _CLASSES:
        raise FinegrainError(
            f"unknown calibration kind {kind!r} (known: {', '.join(_CLASSES)}): {data!r}"
        )
    cls = _CLASSES[kind]
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


def describe(recalibration: Recalibration | None) -> str:
    """One line for a map, ``none`` without one."""
    return "none" if recalibration is None else recalibration.describe()


def _fit_temperature(y: np.ndarray, p: np.ndarray) -> float:
    """The ``T`` minimising the log-loss of ``σ(logit(p) / T)`` (convex in ``1 / T``)."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_expit, logit

    z = logit(np.clip(p, EPS, 1.0 - EPS))
    sign = np.where(y == 1, 1.0, -1.0)

    def loss(a: float) -> float:
        return float(-np.mean(log_expit(sign * a * z)))

    gradient_at_zero = float(np.mean(sign * z))  # d(-loss)/da at a = 0
    if gradient_at_zero <= 0:  # the best T is infinite: every case at 0.5
        isotonic = option("calibration='isotonic'", "--calibration isotonic")
        raise FinegrainError(
            "temperature scaling cannot fit these probabilities: no temperature does better "
            "than 0.5 for every case (the positives' log-odds summed do not exceed the "
            "negatives', as when most negatives are called positive too: a shift, which a "
            f"temperature cannot remove); {isotonic} fits any increasing map"
        )
    found = minimize_scalar(loss, bounds=(1e-4, 1e4), method="bounded", options={"xatol": 1e-10})
    return float(1.0 / found.x)


def fit_recalibration(
    y_true: Sequence | np.ndarray,
    probability: Sequence | np.ndarray,
    *,
    kind: str = "temperature",
    iteration: int | None = None,
) -> Recalibration:
    """Fit a map of ``kind`` (:data:`KINDS` but ``none``) on validation outcomes (0/1) and
    probabilities; both classes are needed.

    >>> iso = fit_recalibration([0, 1, 0, 1], [0.1, 0.2, 0.7, 0.9], kind="isotonic")
    >>> iso.apply([0.1, 0.5, 0.9]).tolist()
    [0.0, 0.5, 1.0]
    """
    if kind not in KINDS or kind == "none":
        raise FinegrainError(f"unknown calibration {kind!r}; choose from {KINDS[:-1]}")
    y = _check_classes(y_true, "y_true", _BINARY_CODES, "0 (negative) or 1 (positive)")
    p = check_probability(probability, y.shape[0])
    n_pos, n_neg = int(y.sum()), int(y.shape[0] - y.sum())
    if not n_pos or not n_neg:
        none = option("calibration='none'", "--calibration none")
        raise FinegrainError(
            f"calibration needs validation positives and negatives; got {n_pos} positive and "
            f"{n_neg} negative ({none} keeps the model's own probability)"
        )
    common = {"n_positive": n_pos, "n_negative": n_neg, "iteration": iteration}
    if kind == "temperature":
        return TemperatureScaling(temperature=_fit_temperature(y, p), **common)
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    return IsotonicCalibration(
        x=[float(v) for v in iso.X_thresholds_], y=[float(v) for v in iso.y_thresholds_], **common
    )
