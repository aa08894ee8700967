"""The methods trained on fine labels (graded, ordinal, three-class): losses and gradients
against hand-computed values, their scores, ``no_cue``, and the refusal of an index without
fine labels (or without cue flags when ``no_cue="unknown"``)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from finegrain.errors import FinegrainError
from finegrain.train.methods import METHODS, get_method

LN2, LN3 = math.log(2.0), math.log(3.0)


def batch(label, fine, cue=None):
    """A batch of coarse labels, fine codes (0 atypical / 1 typical / -1) and cue codes."""
    n = len(label)
    return {
        "label": torch.tensor(label),
        "fine": torch.tensor(fine),
        "cue": torch.tensor(cue if cue is not None else [-1] * n),
        "row": torch.arange(n),
    }


def loss_and_grad(name, logits, b, **options):
    logits = torch.tensor(logits, requires_grad=True)
    loss = get_method(name, options).loss(logits, b)
    loss.backward()
    return loss.item(), logits.grad


def test_the_fine_methods_are_registered_presets_that_need_fine_labels():
    for name, outputs in (("graded", 2), ("ordinal", 2), ("three-class", 3)):
        method = METHODS.get(name)
        assert method.needs_fine and method.outputs == outputs and method.no_cue == "typical"
        assert not method.needs_cue and get_method(name, {"no_cue": "unknown"}).needs_cue
    assert not METHODS.get("u-ones").needs_fine and not METHODS.get("u-ones").needs_cue
    with pytest.raises(FinegrainError, match="no_cue must be one of"):
        get_method("ordinal", {"no_cue": "atypical"})
    with pytest.raises(FinegrainError, match="q_atypical must lie in"):
        get_method("graded", {"q_atypical": 1.5})


def test_graded_soft_targets_value_and_gradient():
    # atypical at p1 = 1/2 (target 0.5), typical at p1 = 3/4 (target 1)
    b = batch([1, 1], [0, 1])
    loss, grad = loss_and_grad("graded", [[0.0, 0.0], [0.0, LN3]], b)
    assert loss == pytest.approx((LN2 - math.log(0.75)) / 2)
    # d/dz1 = (p1 - t) / B, d/dz0 = -(p1 - t) / B
    torch.testing.assert_close(grad, torch.tensor([[0.0, 0.0], [0.125, -0.125]]))


def test_graded_targets_by_grade_and_no_cue():
    method = get_method("graded", {"q_atypical": 0.2, "q_uncertain": 0.9})
    # negative, atypical, typical (cue), typical without cue, uncertain, positive w/o subcategory
    b = batch([0, 1, 1, 1, -1, 1], [-1, 0, 1, 1, 1, -1], [-1, 1, 1, 0, 0, -1])
    torch.testing.assert_close(method.targets(b), torch.tensor([0.0, 0.2, 1.0, 1.0, 0.9, 0.6]))
    unknown = method.configure({"no_cue": "unknown"})
    torch.testing.assert_close(unknown.targets(b), torch.tensor([0.0, 0.2, 1.0, 0.6, 0.9, 0.6]))
    # its fine score is its positive probability
    logits = torch.tensor([[0.0, LN3]])
    assert method.fine_score(logits).item() == pytest.approx(0.75)
    assert method.positive_probability(logits).item() == pytest.approx(0.75)


def test_ordinal_value_and_gradient():
    # a negative at z0 = 0; an atypical positive at z0 = ln 3, z1 = 0
    b = batch([0, 1], [-1, 0])
    loss, grad = loss_and_grad("ordinal", [[0.0, 0.0], [LN3, 0.0]], b)
    # task 0 over both: (ln 2 - ln 0.75) / 2; task 1 over the atypical one: ln 2
    assert loss == pytest.approx((LN2 - math.log(0.75)) / 2 + LN2)
    # d/dz0 = (σ(z0) - y0) / 2; d/dz1 = (σ(z1) - y1) / 1 on the graded positive only
    torch.testing.assert_close(grad, torch.tensor([[0.25, 0.0], [-0.125, 0.5]]))


def test_ordinal_uncertain_and_no_cue_positives_get_the_presence_term_only():
    method = get_method("ordinal", {"no_cue": "unknown"})
    logits = torch.zeros(3, 2, requires_grad=True)
    # uncertain; typical without a cue; typical with a cue
    method.loss(logits, batch([-1, 1, 1], [1, 1, 1], [0, 0, 1])).backward()
    assert logits.grad[:, 1].tolist() == [0.0, 0.0, pytest.approx(-0.5)]
    assert logits.grad[:, 0].tolist() == pytest.approx([-1 / 6] * 3)
    # with the paper's rule the cue-less typical positive trains the second threshold too
    logits.grad = None
    get_method("ordinal").loss(logits, batch([-1, 1, 1], [1, 1, 1], [0, 0, 1])).backward()
    assert logits.grad[:, 1].tolist() == pytest.approx([0.0, -0.25, -0.25])


def test_ordinal_cumulative_probabilities_stay_ordered_through_training():
    method = METHODS.get("ordinal")
    torch.manual_seed(0)
    logits = torch.randn(64, 2) * 20
    cumulative = method.cumulative(logits)
    assert (cumulative[:, 1] <= cumulative[:, 0]).all()
    assert (method.fine_score(logits) <= method.positive_probability(logits)).all()
    torch.testing.assert_close(method.fine_score(torch.tensor([[LN3, 0.0]])), torch.tensor([0.375]))
    # a linear head trained on the ordinal loss keeps them ordered on every input
    head = torch.nn.Linear(4, 2)
    features = torch.randn(32, 4)
    b = batch([0, 1, 1, -1] * 8, [-1, 0, 1, 1] * 8)
    optimiser = torch.optim.SGD(head.parameters(), lr=1.0)
    for _ in range(50):
        optimiser.zero_grad()
        method.loss(head(features), b).backward()
        optimiser.step()
    cumulative = method.cumulative(head(torch.randn(256, 4) * 5))
    assert (cumulative[:, 1] <= cumulative[:, 0]).all()
    torch.testing.assert_close(method.evidence(), torch.tensor([1.0, 0.0]))


def test_three_class_value_gradient_and_scores():
    # a typical positive and an uncertain one (unknown grade), both at uniform logits
    b = batch([1, -1], [1, 1])
    loss, grad = loss_and_grad("three-class", [[0.0, 0.0, 0.0]] * 2, b)
    assert loss == pytest.approx((LN3 - math.log(2 / 3)) / 2)
    # typical: (p - onehot) / 2; unknown grade: (p - [0, 1/2, 1/2]) / 2
    expected = torch.tensor([[1 / 6, 1 / 6, -1 / 3], [1 / 6, -1 / 12, -1 / 12]])
    torch.testing.assert_close(grad, expected)
    method = METHODS.get("three-class")
    logits = torch.tensor([[0.0, 0.0, LN3]])  # p = 1/5, 1/5, 3/5
    assert method.positive_probability(logits).item() == pytest.approx(0.8)
    assert method.fine_score(logits).item() == pytest.approx(0.75)
    # negative: -log p0; atypical: -log p1; a cue-less typical under "unknown": -log(p1 + p2)
    b = batch([0, 1, 1], [-1, 0, 1], [-1, 1, 0])
    unknown = method.configure({"no_cue": "unknown"})
    value = unknown.loss(logits.repeat(3, 1), b).item()
    assert value == pytest.approx((math.log(5) + math.log(5) - math.log(0.8)) / 3)
    assert method.loss(logits.repeat(3, 1), b).item() == pytest.approx(
        (math.log(5) + math.log(5) - math.log(0.6)) / 3
    )


@pytest.mark.parametrize("name", ["graded", "ordinal", "three-class"])
def test_a_fine_method_refuses_an_index_without_fine_labels(name):
    from finegrain.train.loop import _check_datasets

    config = SimpleNamespace(eval_splits=("validate",), index="bare.csv", observation="Edema")
    bare = SimpleNamespace(has_fine=False, has_cue=False)
    datasets = {"train": bare, "validate": bare}
    with pytest.raises(FinegrainError, match="'Edema subcategory' column is absent"):
        _check_datasets(datasets, config, get_method(name))
    fine_only = SimpleNamespace(has_fine=True, has_cue=False)
    with pytest.raises(FinegrainError, match="no 'Edema cue' column"):
        _check_datasets(
            {"train": fine_only, "validate": bare}, config, get_method(name, {"no_cue": "unknown"})
        )
