"""Training methods: what a method reads from the batch, the head it needs, its loss, and
how its outputs become the two scores every consumer uses.

A :class:`Method` owns its head and its scores: it declares ``outputs`` (the width of the
model's last layer) and how the logits become (a) the **positive probability** (coarse AUC,
thresholds, tiers; :meth:`Method.positive_probability`) and (b) the **fine score** that AUC^FG
ranks (:meth:`Method.fine_score`; the positive probability unless the method learns another),
and the linear **evidence** of the logits that a class activation map draws
(:meth:`Method.evidence`). The model factory, evaluation, ``predict``, ``export``, CAM and the
tiers all ask the method; a checkpoint records the method's name and options, so they rebuild
it by name from :data:`METHODS` (a :class:`~finegrain.registry.Registry`, filled at import).

The paper's methods are :class:`CoarseMethod` presets (2 outputs, softmax, trained on the
coarse label only): an uncertainty policy plus a loss per class.

========== ================= ========== ========== =====================
method     uncertain (-1) ->  negative   positive   uncertain (mapped)
========== ================= ========== ========== =====================
u-ignore   dropped            CE         CE         --
u-zeros    negative (0)       CE         CE         CE (target 0)
u-ones     positive (1)       CE         CE         CE (target 1)
p-rm       dropped            CE         PCE        --
u-rm       positive (1)       CE         CE         PCE (target 1)
pu-rm      positive (1)       CE         PCE        PCE (target 1)   (paper, Eq. 3)
u-ones-ls  positive (soft)    CE         CE         soft CE (target 0.85)
========== ================= ========== ========== =====================

A new method is a subclass (or a preset of an existing class) registered at import with
:func:`register_method`; see ``docs/training.md`` and ``tests/test_extension.py``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from finegrain.data.batch import LABEL, Batch
from finegrain.errors import FinegrainError
from finegrain.losses import ce_loss, pce_loss, upcast_half
from finegrain.observations import NEGATIVE, POSITIVE, UNCERTAIN
from finegrain.registry import Registry

MAPPINGS = ("ignore", "zero", "one")
LOSSES = ("ce", "pce")


@dataclass(frozen=True)
class Method:
    """A training method (abstract): the head it needs, its loss over a batch, its scores.

    Subclasses set ``outputs`` (default 2) and ``needs_fine`` (whether the loss reads the
    batch's ``fine`` field), implement :meth:`loss`, and override :meth:`positive_probability`,
    :meth:`fine_score` and :meth:`evidence` when their head is not a 2-way softmax. Their
    dataclass fields are the method's options (:meth:`configure`), part of a run's identity.
    """

    name: str
    _: KW_ONLY
    description: str = ""
    #: the name tables and figures use (the paper's, e.g. "PU-RM")
    display_name: str = ""

    #: width of the model's head
    outputs: ClassVar[int] = 2
    #: whether the loss reads the batch's fine subcategory (the index must have it)
    needs_fine: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)

    @property
    def uses_tau(self) -> bool:
        """Whether the loss depends on τ (a run's τ is then part of its identity)."""
        return False

    @property
    def keep_uncertain(self) -> bool:
        """Whether the training set keeps uncertain (-1) images for this method."""
        return True

    def loss(self, logits: Tensor, batch: Batch, tau: float = 0.3) -> Tensor:
        """The mean training loss of ``logits [B, outputs]`` on ``batch`` (a scalar)."""
        raise NotImplementedError(f"method {self.name!r} defines no loss")

    def positive_probability(self, logits: Tensor) -> Tensor:
        """P(positive) ``[B]`` (float32) from ``logits [B, outputs]``: class 1 of a 2-way
        softmax here."""
        self._check_width(logits)
        return torch.softmax(logits.float(), dim=1)[:, 1]

    def fine_score(self, logits: Tensor) -> Tensor:
        """The score AUC^FG ranks (higher: more typical) ``[B]``; the positive probability
        unless the method learns a fine score of its own."""
        return self.positive_probability(logits)

    def scores(self, logits: Tensor) -> dict[str, Tensor]:
        """``{"score": positive probability, "fine_score": fine score}``, each ``[B]``."""
        return {"score": self.positive_probability(logits), "fine_score": self.fine_score(logits)}

    def evidence(self) -> Tensor:
        """Coefficients ``c [outputs]`` of the logit combination a CAM draws (``c · logits``):
        positive outputs against output 0 (negative); for 2 outputs the logit difference."""
        c = torch.full((self.outputs,), 1.0 / max(1, self.outputs - 1))
        c[0] = -1.0
        return c

    def configure(self, options: Mapping[str, Any] | None) -> Method:
        """A copy with ``options`` (method fields, e.g. ``{"q_atypical": 0.5}``) applied;
        an unknown option is a :class:`FinegrainError` naming the known ones."""
        if not options:
            return self
        known = [f.name for f in dataclasses.fields(self) if f.name not in _NOT_OPTIONS]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise FinegrainError(
                f"method {self.name!r} has no option(s) {unknown}; its options: "
                f"{', '.join(known) or '(none)'}"
            )
        return dataclasses.replace(self, **dict(options))

    def _check_width(self, logits: Tensor) -> None:
        if torch.jit.is_tracing():  # export traces it: the shape is checked before
            return
        if logits.ndim != 2 or logits.shape[1] != self.outputs:
            raise FinegrainError(
                f"method {self.name!r} expects logits [B, {self.outputs}], got "
                f"{tuple(logits.shape)}"
            )


#: Method fields that are not options (identity and presentation).
_NOT_OPTIONS = frozenset({"name", "description", "display_name"})


@dataclass(frozen=True)
class CoarseMethod(Method):
    """A 2-way softmax trained on the coarse label only: an uncertainty policy plus a loss per
    class.

    ``uncertain``: ``"ignore"`` (uncertain samples are dropped from training), ``"zero"`` or
    ``"one"`` (mapped to negative / positive). ``negative_loss``, ``positive_loss``,
    ``uncertain_loss``: ``"ce"`` or ``"pce"``. ``uncertain_soft_target``: when set, mapped
    uncertain samples get a soft cross-entropy towards this positive-class probability
    (label smoothing, Pham et al.); it requires ``uncertain_loss="ce"``.
    """

    uncertain: str
    negative_loss: str = "ce"
    positive_loss: str = "ce"
    uncertain_loss: str = "ce"
    uncertain_soft_target: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.uncertain not in MAPPINGS:
            raise FinegrainError(f"method {self.name!r}: uncertain must be one of {MAPPINGS}")
        for field in ("negative_loss", "positive_loss", "uncertain_loss"):
            if getattr(self, field) not in LOSSES:
                raise FinegrainError(f"method {self.name!r}: {field} must be one of {LOSSES}")
        q = self.uncertain_soft_target
        if q is not None and (not 0.0 <= q <= 1.0 or self.uncertain_loss != "ce"):
            raise FinegrainError(
                f"method {self.name!r}: uncertain_soft_target needs a value in [0, 1] and "
                "uncertain_loss='ce'"
            )

    @property
    def uses_tau(self) -> bool:
        """Whether the loss depends on τ (PCE on some class that is trained on)."""
        losses = [self.negative_loss, self.positive_loss]
        if self.uncertain != "ignore" and self.uncertain_soft_target is None:
            losses.append(self.uncertain_loss)
        return "pce" in losses

    @property
    def keep_uncertain(self) -> bool:
        """Whether the dataset should keep uncertain (-1) samples for this method."""
        return self.uncertain != "ignore"

    def targets(self, labels: Tensor) -> Tensor:
        """Class targets (int64, 0/1) for coarse ``labels`` in {1, 0, -1}; -1 where ignored."""
        labels = labels.long()
        mapped = {"ignore": -1, "zero": NEGATIVE, "one": POSITIVE}[self.uncertain]
        return torch.where(labels == UNCERTAIN, torch.full_like(labels, mapped), labels)

    def per_sample_loss(self, logits: Tensor, labels: Tensor, tau: float) -> tuple[Tensor, Tensor]:
        """Loss of each sample (``[B]``, at least float32) and the mask of samples that count.

        Each class gets its own loss; ignored samples have loss 0 and mask False.
        """
        labels = labels.long().to(logits.device)
        bad = ~((labels == POSITIVE) | (labels == NEGATIVE) | (labels == UNCERTAIN))
        if bad.any():
            raise FinegrainError(
                f"method {self.name!r}: labels must be 1, 0 or -1, got {labels[bad][0].item()}"
            )
        targets = self.targets(labels)
        keep = targets >= 0
        safe = targets.clamp(min=0)
        by_loss = {
            "ce": ce_loss(logits, safe, reduction="none"),
            "pce": pce_loss(logits, safe, tau=tau, reduction="none"),
        }
        loss = torch.zeros(labels.shape, dtype=by_loss["ce"].dtype, device=logits.device)
        loss = torch.where(labels == NEGATIVE, by_loss[self.negative_loss], loss)
        loss = torch.where(labels == POSITIVE, by_loss[self.positive_loss], loss)
        if self.uncertain_soft_target is not None:
            q = self.uncertain_soft_target
            log_probs = torch.log_softmax(upcast_half(logits), dim=1)
            soft = -(q * log_probs[:, POSITIVE] + (1.0 - q) * log_probs[:, NEGATIVE])
            uncertain = soft
        else:
            uncertain = by_loss[self.uncertain_loss]
        loss = torch.where((labels == UNCERTAIN) & keep, uncertain, loss)
        return loss, keep

    def loss(self, logits: Tensor, batch: Batch, tau: float = 0.3) -> Tensor:
        """Mean loss over the samples of ``batch`` that count (0 with a gradient path if none
        do); reads the batch's ``label``."""
        loss, keep = self.per_sample_loss(logits, batch[LABEL], tau)
        return (loss * keep).sum() / keep.sum().clamp(min=1)


#: The paper's method and the baseline it is compared with (Table 2: PU-RM vs U-Ones).
PAPER_METHOD, BASELINE_METHOD = "pu-rm", "u-ones"

#: Every registered method by name (filled at import; see :func:`register_method`).
METHODS: Registry[Method] = Registry("method")


def register_method(method: Method) -> Method:
    """Register ``method`` under its name (at import, in the module that defines it, so that
    every worker process finds it); returns it."""
    caller = sys._getframe(1).f_globals.get("__name__", "")
    return METHODS.register(method.name, method, module=caller)


for _method in (
    CoarseMethod(
        "u-ignore", "ignore", description="uncertain dropped; CE", display_name="U-Ignore"
    ),
    CoarseMethod(
        "u-zeros", "zero", description="uncertain -> negative; CE", display_name="U-Zeros"
    ),
    CoarseMethod("u-ones", "one", description="uncertain -> positive; CE", display_name="U-Ones"),
    CoarseMethod(
        "u-ones-ls",
        "one",
        uncertain_soft_target=0.85,
        description="uncertain -> soft positive target 0.85 (label smoothing, Pham et al.); CE",
        display_name="U-Ones + LS",
    ),
    CoarseMethod(
        "p-rm",
        "ignore",
        positive_loss="pce",
        description="uncertain dropped; PCE on positives",
        display_name="U-Ignore + P-RM",
    ),
    CoarseMethod(
        "u-rm",
        "one",
        uncertain_loss="pce",
        description="uncertain -> positive with PCE; CE on positives and negatives",
        display_name="U-RM",
    ),
    CoarseMethod(
        "pu-rm",
        "one",
        positive_loss="pce",
        uncertain_loss="pce",
        description="the paper's method (Eq. 3): CE on negatives, PCE on positives and "
        "on uncertain mapped to positive",
        display_name="PU-RM",
    ),
):
    register_method(_method)


def get_method(name: str, options: Mapping[str, Any] | None = None) -> Method:
    """The method called ``name`` with ``options`` applied (:meth:`Method.configure`); a
    :class:`FinegrainError` lists the known names."""
    return METHODS.get(name).configure(options)
