"""Method presets: which loss each class gets, how uncertain labels are mapped."""

from __future__ import annotations

import math

import pytest
import torch

from finegrain.losses import ce_loss, pce_loss
from finegrain.train.methods import METHODS, TAU, CoarseMethod, get_method

# method -> (loss on negatives, loss on positives, loss on uncertain: (kind, target) or None)
TABLE = {
    "u-ignore": ("ce", "ce", None),
    "u-zeros": ("ce", "ce", ("ce", 0)),
    "u-ones": ("ce", "ce", ("ce", 1)),
    "p-rm": ("ce", "pce", None),
    "u-rm": ("ce", "ce", ("pce", 1)),
    "pu-rm": ("ce", "pce", ("pce", 1)),
    "u-ones-ls": ("ce", "ce", ("soft", 0.85)),
    "pce": ("pce", "pce", None),
}


def _reference(kind: str, logits: torch.Tensor, target) -> torch.Tensor:
    if kind == "ce":
        return ce_loss(logits, torch.full((len(logits),), target), reduction="none")
    if kind == "pce":
        return pce_loss(logits, torch.full((len(logits),), target), tau=TAU, reduction="none")
    log_p = torch.log_softmax(logits, dim=1)
    return -(target * log_p[:, 1] + (1 - target) * log_p[:, 0])


def test_table_covers_every_coarse_preset():
    # the methods trained on fine labels are checked in test_fine_methods.py
    built_in = {m for m in METHODS if METHODS.module_of(m) == "finegrain.train.methods"}
    assert set(TABLE) == {m for m in built_in if isinstance(METHODS[m], CoarseMethod)}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_per_class_loss_assignment(name):
    method = get_method(name)
    negative, positive, uncertain = TABLE[name]
    # probabilities below and above tau for the positive class, so CE and PCE differ
    p = torch.tensor([0.05, 0.2, 0.6, 0.95], dtype=torch.float64)
    logits = torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1)
    for label, kind, target in ((0, negative, 0), (1, positive, 1)):
        labels = torch.full((4,), label)
        loss, keep = method.per_sample_loss(logits, labels)
        assert keep.all()
        torch.testing.assert_close(loss, _reference(kind, logits, target))
    loss, keep = method.per_sample_loss(logits, torch.full((4,), -1))
    if uncertain is None:
        assert not method.keep_uncertain
        assert not keep.any() and (loss == 0).all()
        assert (method.targets(torch.tensor([-1, 0, 1])) == torch.tensor([-1, 0, 1])).all()
    else:
        kind, target = uncertain
        assert method.keep_uncertain and keep.all()
        torch.testing.assert_close(loss, _reference(kind, logits, target))
        mapped = 0 if target == 0 else 1
        assert (method.targets(torch.tensor([-1, 0, 1])) == torch.tensor([mapped, 0, 1])).all()


def test_pce_differs_from_ce_below_tau():
    """Guard that the table test can fail: for p < tau the two losses differ."""
    logits = torch.tensor([[0.0, math.log(0.1 / 0.9)]], dtype=torch.float64)
    assert _reference("ce", logits, 1).item() != pytest.approx(_reference("pce", logits, 1).item())


def test_loss_is_mean_over_kept_samples():
    method = METHODS["pu-rm"]
    logits = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), requires_grad=True)
    labels = torch.tensor([1, 0, -1, 1, 0, -1])
    per, keep = method.per_sample_loss(logits, labels)
    assert method.loss(logits, {"label": labels}).item() == pytest.approx(per.mean().item())
    ignore = METHODS["u-ignore"]
    per, keep = ignore.per_sample_loss(logits, labels)
    loss = ignore.loss(logits, {"label": labels})
    assert loss.item() == pytest.approx(per[keep].mean().item())
    # no kept sample: zero loss that still backpropagates
    loss = ignore.loss(logits, {"label": torch.full((6,), -1)})
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_bad_labels_and_names():
    with pytest.raises(ValueError, match="labels must be 1, 0 or -1"):
        METHODS["pu-rm"].loss(torch.zeros(2, 2), {"label": torch.tensor([1, 2])})
    with pytest.raises(ValueError, match="unknown method 'pu_rm'"):
        get_method("pu_rm")
    with pytest.raises(ValueError, match="uncertain must be"):
        CoarseMethod("x", "maybe")
    with pytest.raises(ValueError, match="soft"):
        CoarseMethod("x", "one", uncertain_loss="pce", uncertain_soft_target=0.8)


def test_coarse_method_scores_are_the_positive_softmax():
    method = get_method("u-ones")
    logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)], [2.0, -1.0]])
    scores = method.scores(logits)
    expected = torch.softmax(logits, dim=1)[:, 1]
    torch.testing.assert_close(scores["score"], expected)
    torch.testing.assert_close(scores["fine_score"], expected)
    assert method.outputs == 2 and not method.needs_fine
    assert method.evidence().tolist() == [-1.0, 1.0]  # the logit difference
    with pytest.raises(ValueError, match=r"expects logits \[B, 2\]"):
        method.positive_probability(torch.zeros(3, 3))


def test_method_options_are_checked_and_applied():
    method = get_method("pu-rm", {"uncertain": "zero"})
    assert method.uncertain == "zero" and METHODS["pu-rm"].uncertain == "one"
    with pytest.raises(ValueError, match="has no option"):
        get_method("u-ones", {"q_atypical": 0.5})


def test_tau_is_an_option_of_the_methods_that_use_it():
    """τ has one owner: the PCE methods' option (default TAU, written once); a method without
    PCE has none, and setting one is an error instead of being ignored."""
    uses = {m for m in METHODS if METHODS.module_of(m) == "finegrain.train.methods"
            and METHODS[m].uses_tau}  # fmt: skip
    assert uses == {"p-rm", "u-rm", "pu-rm", "pce"}
    assert all(METHODS[m].tau == TAU for m in uses)
    assert METHODS["u-ones"].tau is None and METHODS["graded"].tau is None
    swept = get_method("pu-rm", {"tau": 0.1})
    assert swept.tau == 0.1 and METHODS["pu-rm"].at_tau(0.5).tau == 0.5
    assert METHODS["u-ones"].at_tau(0.5) is METHODS["u-ones"]
    p = torch.tensor([0.05, 0.2], dtype=torch.float64)
    logits = torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1)
    loss, _ = swept.per_sample_loss(logits, torch.ones(2, dtype=torch.long))
    expected = pce_loss(logits, torch.ones(2, dtype=torch.long), tau=0.1, reduction="none")
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="'u-ones' has no PCE loss, so no τ"):
        get_method("u-ones", {"tau": 0.2})
    with pytest.raises(ValueError, match=r"tau must be a number in \(0, 1\), got 1.5"):
        get_method("pu-rm", {"tau": 1.5})
