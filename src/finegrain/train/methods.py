"""Training methods as presets: how uncertain labels are mapped and which loss each class gets.

A method is data, not code: the training loop only calls :meth:`Method.loss`. Adding a method
(another uncertainty policy, label smoothing, another robust loss) means adding a preset to
:data:`METHODS`.

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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from finegrain.losses import ce_loss, pce_loss, upcast_half
from finegrain.observations import NEGATIVE, POSITIVE, UNCERTAIN

MAPPINGS = ("ignore", "zero", "one")
LOSSES = ("ce", "pce")


@dataclass(frozen=True)
class Method:
    """An uncertainty policy plus a loss per class.

    ``uncertain``: ``"ignore"`` (uncertain samples are dropped from training), ``"zero"`` or
    ``"one"`` (mapped to negative / positive). ``negative_loss``, ``positive_loss``,
    ``uncertain_loss``: ``"ce"`` or ``"pce"``. ``uncertain_soft_target``: when set, mapped
    uncertain samples get a soft cross-entropy towards this positive-class probability
    (label smoothing, Pham et al.); it requires ``uncertain_loss="ce"``.
    """

    name: str
    uncertain: str
    negative_loss: str = "ce"
    positive_loss: str = "ce"
    uncertain_loss: str = "ce"
    uncertain_soft_target: float | None = None
    description: str = ""
    #: the name tables and figures use (the paper's, e.g. "PU-RM")
    display_name: str = ""

    def __post_init__(self) -> None:
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)
        if self.uncertain not in MAPPINGS:
            raise ValueError(f"method {self.name!r}: uncertain must be one of {MAPPINGS}")
        for field in ("negative_loss", "positive_loss", "uncertain_loss"):
            if getattr(self, field) not in LOSSES:
                raise ValueError(f"method {self.name!r}: {field} must be one of {LOSSES}")
        q = self.uncertain_soft_target
        if q is not None and (not 0.0 <= q <= 1.0 or self.uncertain_loss != "ce"):
            raise ValueError(
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
            raise ValueError(
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

    def loss(self, logits: Tensor, labels: Tensor, tau: float = 0.3) -> Tensor:
        """Mean loss over the samples that count (0 with a gradient path if none do)."""
        loss, keep = self.per_sample_loss(logits, labels, tau)
        return (loss * keep).sum() / keep.sum().clamp(min=1)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("u-ignore", "ignore", description="uncertain dropped; CE", display_name="U-Ignore"),
        Method("u-zeros", "zero", description="uncertain -> negative; CE", display_name="U-Zeros"),
        Method("u-ones", "one", description="uncertain -> positive; CE", display_name="U-Ones"),
        Method(
            "p-rm",
            "ignore",
            positive_loss="pce",
            description="uncertain dropped; PCE on positives",
            display_name="U-Ignore + P-RM",
        ),
        Method(
            "u-rm",
            "one",
            uncertain_loss="pce",
            description="uncertain -> positive with PCE; CE on positives and negatives",
            display_name="U-RM",
        ),
        Method(
            "pu-rm",
            "one",
            positive_loss="pce",
            uncertain_loss="pce",
            description="the paper's method (Eq. 3): CE on negatives, PCE on positives and "
            "on uncertain mapped to positive",
            display_name="PU-RM",
        ),
        Method(
            "u-ones-ls",
            "one",
            uncertain_soft_target=0.85,
            description="uncertain -> soft positive target 0.85 (label smoothing, Pham et al.); CE",
            display_name="U-Ones + LS",
        ),
    )
}


def get_method(name: str) -> Method:
    """The preset called ``name``; a ``ValueError`` lists the known ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(
            f"unknown method {name!r}; expected one of: {', '.join(METHODS)}"
        ) from None
