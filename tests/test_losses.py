"""ce_loss and pce_loss (the paper's Eq. 2): reference values, gradient shape, stability."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from finegrain.losses import ce_loss, pce_loss


def logits_for(p: float, dtype=torch.float64) -> torch.Tensor:
    """Logits [1, 2] whose softmax gives the positive class (index 1) probability ``p``."""
    if p == 0.0:
        return torch.tensor([[0.0, -math.inf]], dtype=dtype)
    if p == 1.0:
        return torch.tensor([[-math.inf, 0.0]], dtype=dtype)
    return torch.tensor([[0.0, math.log(p / (1 - p))]], dtype=dtype)


@pytest.mark.parametrize(
    ("p", "expected"),
    [(0.0, 2.203973), (0.1, 1.870639), (0.3, 1.203973), (0.5, 0.693147), (1.0, 0.0)],
)
def test_pce_reference_values(p, expected):
    loss = pce_loss(logits_for(p), torch.tensor([1]), tau=0.3)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_pce_equals_ce_above_tau_and_linear_below():
    for p in (0.31, 0.6, 0.99):
        x = logits_for(p)
        assert pce_loss(x, torch.tensor([1]), tau=0.3).item() == pytest.approx(
            -math.log(p), rel=1e-6
        )
        assert ce_loss(x, torch.tensor([1])).item() == pytest.approx(-math.log(p), rel=1e-6)
    for tau in (0.1, 0.3, 0.7):
        for p in (0.01, tau / 2, tau):
            expected = -(p - tau) / tau - math.log(tau)
            assert pce_loss(logits_for(p), torch.tensor([1]), tau=tau).item() == pytest.approx(
                expected, rel=1e-6
            )


def _dloss_dp(p: float, tau: float) -> float:
    """dL/dp through the probability itself (autograd on p, via logits = log-odds of p)."""
    prob = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    logits = torch.stack([torch.zeros((), dtype=torch.float64), torch.log(prob / (1 - prob))])
    pce_loss(logits[None], torch.tensor([1]), tau=tau).backward()
    return prob.grad.item()


@pytest.mark.parametrize("tau", [0.2, 0.3, 0.5])
def test_pce_gradient_below_tau_is_constant(tau):
    for p in (0.01, 0.05, tau / 2, tau * 0.99):
        assert _dloss_dp(p, tau) == pytest.approx(-1.0 / tau, rel=1e-6)
    # above tau it is the cross-entropy slope -1/p; continuous at p = tau
    assert _dloss_dp(tau * 1.5, tau) == pytest.approx(-1.0 / (tau * 1.5), rel=1e-6)
    assert _dloss_dp(tau * (1 + 1e-7), tau) == pytest.approx(-1.0 / tau, rel=1e-5)


def test_pce_value_continuous_at_tau():
    tau = 0.3
    below = pce_loss(logits_for(tau - 1e-9), torch.tensor([1]), tau=tau).item()
    above = pce_loss(logits_for(tau + 1e-9), torch.tensor([1]), tau=tau).item()
    assert below == pytest.approx(above, abs=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("loss_fn", [ce_loss, functools.partial(pce_loss, tau=0.3)])
def test_finite_loss_and_gradient_for_extreme_logits(dtype, loss_fn):
    logits = torch.tensor(
        [[1e4, -1e4], [-1e4, 1e4], [0.0, 0.0], [6e4 if dtype == torch.float16 else 1e30, 0.0]],
        dtype=dtype,
        requires_grad=True,
    )
    target = torch.tensor([1, 1, 0, 1])
    loss = loss_fn(logits, target, reduction="sum")
    loss.backward()
    assert torch.isfinite(loss).item()
    assert torch.isfinite(logits.grad).all().item()
    # the wrong-class logit at 1e4 gives p ~ 0: PCE is bounded by 1 - log(tau), CE is huge
    per_sample = loss_fn(logits.detach(), target, reduction="none")
    if loss_fn is not ce_loss:
        assert per_sample[0].item() == pytest.approx(1 - math.log(0.3), rel=1e-3)
    else:
        assert per_sample[0].item() > 1e3


def test_gradcheck_float64():
    torch.manual_seed(0)
    logits = (torch.randn(6, 2, dtype=torch.float64) * 2).requires_grad_()
    target = torch.tensor([0, 1, 1, 0, 1, 1])
    weight = torch.rand(6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: pce_loss(x, target, tau=0.3), (logits,))
    assert torch.autograd.gradcheck(lambda x: pce_loss(x, target, 0.3, "none", weight), (logits,))
    assert torch.autograd.gradcheck(lambda x: ce_loss(x, target), (logits,))


def test_reductions_and_weights():
    logits = torch.randn(5, 2, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 1, 0, 1, 1])
    none = pce_loss(logits, target, tau=0.3, reduction="none")
    assert none.shape == (5,)
    assert pce_loss(logits, target, tau=0.3, reduction="sum").item() == pytest.approx(
        none.sum().item()
    )
    assert pce_loss(logits, target, tau=0.3).item() == pytest.approx(none.mean().item())
    weight = torch.tensor([1.0, 0.0, 2.0, 0.0, 1.0])
    assert pce_loss(
        logits, target, tau=0.3, reduction="sum", weight=weight
    ).item() == pytest.approx((none * weight).sum().item())


def test_bad_arguments():
    logits, target = torch.zeros(2, 2), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="tau"):
        pce_loss(logits, target, tau=1.0)
    with pytest.raises(ValueError, match="reduction"):
        ce_loss(logits, target, reduction="avg")
    with pytest.raises(ValueError, match="target"):
        ce_loss(logits, torch.tensor([0, 1, 1]))
