"""Losses for two-way (negative, positive) classifiers: cross-entropy and the paper's PCE.

The *partially Huberised* cross-entropy (PCE, Eq. 2 of Peng et al.) replaces the unbounded
``-log p`` below a threshold ``tau`` by its tangent line, so that hard examples (often the
atypical positives) contribute a bounded, constant gradient instead of being forced to ``p = 1``:

    pce(p) = -(p - tau) / tau - log(tau)    if p <= tau
           = -log(p)                        otherwise

with ``p`` the softmax probability of the target class. Value and slope are continuous at
``p = tau``. Both losses are computed from logits in at least float32 (fp16/bf16 are upcast), so the
loss and its gradient are finite for any finite logits, fp16/bf16 included.

>>> import torch
>>> logits = torch.tensor([[0.0, 0.0]])          # p = 0.5 for either class
>>> round(pce_loss(logits, torch.tensor([1]), tau=0.3).item(), 6)
0.693147
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from finegrain.errors import FinegrainError

REDUCTIONS = ("none", "mean", "sum")


def _target_log_prob(logits: Tensor, target: Tensor) -> Tensor:
    if logits.ndim != 2:
        raise FinegrainError(f"logits must be [batch, classes], got shape {tuple(logits.shape)}")
    if target.shape != logits.shape[:1]:
        raise FinegrainError(
            f"target must be [batch] = {tuple(logits.shape[:1])}, got {tuple(target.shape)}"
        )
    log_probs = torch.log_softmax(upcast_half(logits), dim=1)
    return log_probs.gather(1, target.long().unsqueeze(1)).squeeze(1)


def upcast_half(x: Tensor) -> Tensor:
    """fp16/bf16 -> float32 (float32/float64 kept, so float64 gradchecks stay exact)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _reduce(loss: Tensor, reduction: str, weight: Tensor | None) -> Tensor:
    if weight is not None:
        loss = loss * weight.to(loss.dtype)
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise FinegrainError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def ce_loss(
    logits: Tensor, target: Tensor, reduction: str = "mean", weight: Tensor | None = None
) -> Tensor:
    """Cross-entropy ``-log p_target`` of ``logits [B, C]`` against ``target [B]`` (int64).

    ``weight`` (optional, ``[B]``) multiplies each sample's loss before the reduction;
    ``"mean"`` divides by the batch size.
    """
    return _reduce(-_target_log_prob(logits, target), reduction, weight)


def pce_loss(
    logits: Tensor,
    target: Tensor,
    tau: float,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Partially Huberised cross-entropy (Eq. 2): linear in ``p`` below ``tau``, ``-log p`` above.

    ``tau`` must lie in (0, 1) (no default: a method's τ is its own option,
    :data:`finegrain.train.methods.TAU` unless set). Below ``tau`` the derivative with respect to ``p`` is the
    constant ``-1 / tau``. ``weight`` and ``reduction`` behave as in :func:`ce_loss`.

    >>> import torch
    >>> logits = torch.tensor([[0.0, math.log(0.1 / 0.9)]])  # p(positive) = 0.1
    >>> round(pce_loss(logits, torch.tensor([1]), tau=0.3).item(), 6)
    1.87064
    """
    if not 0.0 < tau < 1.0:
        raise FinegrainError(f"tau must lie in (0, 1), got {tau!r}")
    log_p = _target_log_prob(logits, target)
    log_tau = math.log(tau)
    below = log_p <= log_tau
    # Each branch is evaluated everywhere, so keep both finite (and their gradients) by clamping
    # the argument into the branch's own domain; torch.where then picks the right one.
    linear = 1.0 - torch.exp(torch.clamp(log_p, max=log_tau)) / tau - log_tau
    log_branch = -torch.clamp(log_p, min=log_tau)
    return _reduce(torch.where(below, linear, log_branch), reduction, weight)
