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
pce        dropped            PCE        PCE        --               (Menon et al.)
pu-rm      positive (1)       CE         PCE        PCE (target 1)   (paper, Eq. 3)
u-ones-ls  positive (soft)    CE         CE         soft CE (target 0.85)
========== ================= ========== ========== =====================

Methods trained on the fine subcategory (:class:`FineMethod`; ``needs_fine``; formulas in
``docs/training.md``), each with the option ``no_cue`` (``typical``: the paper's rule;
``unknown``: a positive without a cue counts for the coarse term only):

=========== ======= =================================== =================================
method      outputs positive probability                fine score (AUC^FG ranks it)
=========== ======= =================================== =================================
graded      2       softmax p1 (soft targets by grade)  = positive probability
ordinal     2       σ(z0) = P(grade >= atypical)        σ(z0) σ(z1) = P(grade >= typical)
three-class 3       p_atypical + p_typical              p_typical / (p_atypical + p_typical)
=========== ======= =================================== =================================

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

from finegrain.constraints import Interval, check
from finegrain.data.batch import (
    CUE,
    CUE_NO,
    FINE,
    FINE_ATYPICAL,
    FINE_NONE,
    FINE_TYPICAL,
    LABEL,
    Batch,
)
from finegrain.errors import FinegrainError
from finegrain.losses import ce_loss, pce_loss, upcast_half
from finegrain.observations import NEGATIVE, POSITIVE, UNCERTAIN
from finegrain.registry import Registry

MAPPINGS = ("ignore", "zero", "one")
#: PCE's τ (Eq. 2) of a method that does not set its own: the paper's value, written once.
TAU = 0.3
#: The rule a τ obeys (wherever one is given: a method's option, ``--tau``, ``--taus``).
TAU_RULE = Interval(float, 0, 1, closed="neither")
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
    def tau(self) -> float | None:
        """PCE's τ (Eq. 2) when the method's loss uses it, else ``None``: an option of the
        methods that use it (:class:`CoarseMethod`), :data:`TAU` unless set."""
        return None

    @property
    def uses_tau(self) -> bool:
        """Whether the loss depends on τ (a run's τ is then part of its identity)."""
        return self.tau is not None

    def at_tau(self, tau: float | None) -> Method:
        """This method at ``tau`` when its loss uses τ, else itself (``None``: its own τ)."""
        if tau is None or not self.uses_tau:
            return self
        return self.configure({"tau": float(tau)})

    @property
    def keep_uncertain(self) -> bool:
        """Whether the training set keeps uncertain (-1) images for this method."""
        return True

    @property
    def needs_cue(self) -> bool:
        """Whether the loss reads the batch's ``cue`` field (the index's ``<Obs> cue``)."""
        return False

    def loss(self, logits: Tensor, batch: Batch) -> Tensor:
        """The mean training loss of ``logits [B, outputs]`` on ``batch`` (a scalar)."""
        raise NotImplementedError(f"method {self.name!r} defines no loss")

    def positive_probability(self, logits: Tensor) -> Tensor:
        """P(positive) ``[B]`` (float32) from ``logits [B, outputs]``: class 1 of a 2-way
        softmax here."""
        self._check_width(logits)
        return torch.softmax(logits.float(), dim=1)[:, 1]

    def fine_score(self, logits: Tensor) -> Tensor:
        """The score AUC^FG ranks (higher: more typical) ``[B]``; the positive probability
        unless the method learns a fine score of its own (:mod:`finegrain.scores`)."""
        return self.positive_probability(logits)

    @property
    def own_fine_score(self) -> bool:
        """Whether the method's fine score is its own, not its positive probability: AUC^FG then
        ranks it, with the paper's AUC^FG of the positive probability shown beside
        (:mod:`finegrain.scores`). Declared by overriding :meth:`fine_score`."""
        return type(self).fine_score is not Method.fine_score

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
    (label smoothing, Pham et al.); it requires ``uncertain_loss="ce"``. ``tau``: PCE's τ
    where a loss is PCE (default :data:`TAU`); a method without PCE has none (setting one is
    an error).
    """

    uncertain: str
    negative_loss: str = "ce"
    positive_loss: str = "ce"
    uncertain_loss: str = "ce"
    uncertain_soft_target: float | None = None
    tau: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self._uses_pce():
            tau = TAU if self.tau is None else self.tau
            check(f"method {self.name!r}: tau", tau, [TAU_RULE])
            object.__setattr__(self, "tau", float(tau))
        elif self.tau is not None:
            raise FinegrainError(
                f"method {self.name!r} has no PCE loss, so no τ: tau={self.tau} does not apply"
            )
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

    def _uses_pce(self) -> bool:
        """Whether some class that is trained on gets PCE (then the method has a τ)."""
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

    def per_sample_loss(self, logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
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
        by_loss = {"ce": ce_loss(logits, safe, reduction="none")}
        if self.uses_tau:
            by_loss["pce"] = pce_loss(logits, safe, tau=self.tau, reduction="none")
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

    def loss(self, logits: Tensor, batch: Batch) -> Tensor:
        """Mean loss over the samples of ``batch`` that count (0 with a gradient path if none
        do); reads the batch's ``label``."""
        loss, keep = self.per_sample_loss(logits, batch[LABEL])
        return (loss * keep).sum() / keep.sum().clamp(min=1)


#: What a positive without any severity / change cue is, for a method trained on fine labels:
#: ``typical`` (the paper's rule) or ``unknown`` (its grade is not known: the coarse term only).
NO_CUE = ("typical", "unknown")
#: Grades of :meth:`FineMethod.grades`: negative, atypical, typical, positive of unknown grade,
#: left out.
G_NEGATIVE, G_ATYPICAL, G_TYPICAL, G_UNKNOWN, G_NONE = 0, 1, 2, 3, -1


@dataclass(frozen=True)
class FineMethod(Method):
    """A method trained on the fine subcategory (abstract): each sample's **grade** is negative,
    atypical, typical or *positive of unknown grade* (see :meth:`grades`).

    ``no_cue``: ``"typical"`` (the paper's rule: a positive without a cue is typical) or
    ``"unknown"`` (its grade is unknown; needs the index's ``<Obs> cue`` column). Uncertain
    labels are positives of unknown grade (U-Ones for the coarse term).
    """

    needs_fine: ClassVar[bool] = True
    no_cue: str = "typical"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.no_cue not in NO_CUE:
            raise FinegrainError(f"method {self.name!r}: no_cue must be one of {NO_CUE}")

    @property
    def needs_cue(self) -> bool:
        """Whether the loss reads the batch's ``cue`` field (the index must have it)."""
        return self.no_cue == "unknown"

    def grades(self, batch: Batch) -> Tensor:
        """Grade of each sample (int64 ``[B]``): 0 negative, 1 atypical, 2 typical, 3 positive
        of unknown grade (uncertain; positive without subcategory; without a cue when
        ``no_cue="unknown"``)."""
        label = batch[LABEL].long()
        fine = batch[FINE].long().to(label.device)
        bad = ~((label == POSITIVE) | (label == NEGATIVE) | (label == UNCERTAIN))
        if bad.any():
            raise FinegrainError(
                f"method {self.name!r}: labels must be 1, 0 or -1, got {label[bad][0].item()}"
            )
        positive = torch.where(fine == FINE_ATYPICAL, G_ATYPICAL, G_TYPICAL)
        positive = torch.where(fine == FINE_NONE, G_UNKNOWN, positive)
        if self.needs_cue:
            cue = batch[CUE].long().to(label.device)
            positive = torch.where((fine == FINE_TYPICAL) & (cue == CUE_NO), G_UNKNOWN, positive)
        grade = torch.where(label == POSITIVE, positive, torch.full_like(label, G_UNKNOWN))
        return torch.where(label == NEGATIVE, torch.full_like(label, G_NEGATIVE), grade)


@dataclass(frozen=True)
class GradedMethod(FineMethod):
    """Soft cross-entropy on a 2-way softmax towards a positive-class target by grade:
    negative 0, atypical ``q_atypical``, typical 1, unknown grade ``(1 + q_atypical) / 2``,
    uncertain ``q_uncertain`` (1: U-Ones). Its fine score is its positive probability."""

    q_atypical: float = 0.5
    q_uncertain: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for field in ("q_atypical", "q_uncertain"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                raise FinegrainError(f"method {self.name!r}: {field} must lie in [0, 1]")

    def targets(self, batch: Batch) -> Tensor:
        """The positive-class target of each sample (float32 ``[B]``)."""
        grade = self.grades(batch)
        q = self.q_atypical
        table = torch.tensor([0.0, q, 1.0, (1.0 + q) / 2.0], device=grade.device)
        target = table[grade]
        uncertain = batch[LABEL].to(grade.device) == UNCERTAIN
        return torch.where(uncertain, torch.full_like(target, self.q_uncertain), target)

    def loss(self, logits: Tensor, batch: Batch) -> Tensor:
        """Mean of ``-(t log p1 + (1 - t) log p0)`` over the batch (t: :meth:`targets`)."""
        self._check_width(logits)
        t = self.targets(batch).to(logits.device)
        log_p = torch.log_softmax(upcast_half(logits), dim=1)
        return -(t * log_p[:, 1] + (1.0 - t) * log_p[:, 0]).mean()


@dataclass(frozen=True)
class OrdinalMethod(FineMethod):
    """Ordinal negative < atypical < typical with rank-consistent conditional thresholds (CORN,
    Shi et al. 2021) on a 2-output head: output 0 is the logit of P(grade > negative), output 1
    the logit of P(grade > atypical | grade > negative). The loss is the mean binary
    cross-entropy of task 0 over every sample plus that of task 1 over atypical and typical
    positives. P(grade >= typical) = σ(z0) σ(z1) <= σ(z0) = P(grade >= atypical) always."""

    def loss(self, logits: Tensor, batch: Batch) -> Tensor:
        """``mean_all BCE(z0, grade > 0) + mean_graded BCE(z1, grade == typical)``."""
        self._check_width(logits)
        z = upcast_half(logits)
        grade = self.grades(batch).to(logits.device)
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        present = bce(z[:, 0], (grade != G_NEGATIVE).to(z.dtype))
        graded = (grade == G_ATYPICAL) | (grade == G_TYPICAL)
        typical = (grade == G_TYPICAL).to(z.dtype)
        second = bce(z[:, 1], typical, reduction="none")
        return present + (second * graded).sum() / graded.sum().clamp(min=1)

    def cumulative(self, logits: Tensor) -> Tensor:
        """``[B, 2]``: P(grade >= atypical), P(grade >= typical) (float32; ordered)."""
        self._check_width(logits)
        p = torch.sigmoid(logits.float())
        return torch.stack([p[:, 0], p[:, 0] * p[:, 1]], dim=1)

    def positive_probability(self, logits: Tensor) -> Tensor:
        """P(grade >= atypical) = σ(z0)."""
        return self.cumulative(logits)[:, 0]

    def fine_score(self, logits: Tensor) -> Tensor:
        """P(grade >= typical) = σ(z0) σ(z1)."""
        return self.cumulative(logits)[:, 1]

    def evidence(self) -> Tensor:
        """The CAM draws output 0 (the presence logit)."""
        return torch.tensor([1.0, 0.0])


@dataclass(frozen=True)
class ThreeClassMethod(FineMethod):
    """Softmax over negative / atypical / typical: cross-entropy of the grade, and
    ``-log(p_atypical + p_typical)`` for a positive of unknown grade (the coarse term only).
    Positive probability p_a + p_t; fine score p_t / (p_a + p_t)."""

    outputs: ClassVar[int] = 3

    def loss(self, logits: Tensor, batch: Batch) -> Tensor:
        """Mean over the batch of ``-log p_grade`` (``-log(p_a + p_t)`` for unknown grades)."""
        self._check_width(logits)
        log_p = torch.log_softmax(upcast_half(logits), dim=1)
        grade = self.grades(batch).to(logits.device)
        known = grade.clamp(max=G_TYPICAL)
        nll = -log_p.gather(1, known[:, None])[:, 0]
        unknown = -torch.logsumexp(log_p[:, 1:], dim=1)
        return torch.where(grade == G_UNKNOWN, unknown, nll).mean()

    def positive_probability(self, logits: Tensor) -> Tensor:
        """p_atypical + p_typical."""
        self._check_width(logits)
        p = torch.softmax(logits.float(), dim=1)
        return p[:, 1] + p[:, 2]

    def fine_score(self, logits: Tensor) -> Tensor:
        """P(typical | positive) = p_t / (p_a + p_t)."""
        self._check_width(logits)
        log_p = torch.log_softmax(logits.float(), dim=1)
        return torch.softmax(log_p[:, 1:], dim=1)[:, 1]


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
        "pce",
        "ignore",
        negative_loss="pce",
        positive_loss="pce",
        description="uncertain dropped; PCE on positives and negatives (Menon et al.'s "
        "partially Huberised CE against label noise: the positive control)",
        display_name="PCE",
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

#: The methods trained on fine labels (the paper's rule for a positive without a cue); each
#: is also registered as ``<name>-nocue`` with ``no_cue="unknown"``.
_FINE: tuple[FineMethod, ...] = (
    GradedMethod(
        "graded",
        description="soft CE towards a target by subcategory: typical 1, atypical q_a=0.5, "
        "uncertain q_u=1 (U-Ones), negative 0",
        display_name="Graded",
    ),
    OrdinalMethod(
        "ordinal",
        description="negative < atypical < typical, rank-consistent conditional thresholds "
        "(CORN); fine score P(grade >= typical)",
        display_name="Ordinal",
    ),
    ThreeClassMethod(
        "three-class",
        description="softmax over negative / atypical / typical; fine score P(typical | positive)",
        display_name="Three-class",
    ),
)
for _fine in _FINE:
    register_method(_fine)
    register_method(
        dataclasses.replace(
            _fine,
            name=f"{_fine.name}-nocue",
            no_cue="unknown",
            description=f"{_fine.description}; no cue = grade unknown (coarse term only)",
            display_name=f"{_fine.display_name} (no cue = unknown)",
        )
    )


def get_method(name: str, options: Mapping[str, Any] | None = None) -> Method:
    """The method called ``name`` with ``options`` applied (:meth:`Method.configure`); a
    :class:`FinegrainError` lists the known names."""
    return METHODS.get(name).configure(options)
