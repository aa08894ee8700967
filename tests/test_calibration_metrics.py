"""ECE, Brier and the reliability bins: against scikit-learn and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from finegrain.calibration import (
    BRIER,
    brier_score,
    calibration_replicates,
    expected_calibration_error,
    reliability_bins,
)
from finegrain.metrics import bootstrap_ci, bootstrap_indices


def _overconfident(n=3000, seed=0):
    """Outcomes drawn from σ(z / 2) but reported as σ(z): an overconfident model."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z / 2))).astype(int)
    return y, 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("strategy", ["quantile", "uniform"])
@pytest.mark.parametrize("n_bins", [5, 15])
def test_the_bins_are_scikit_learns_calibration_curve(strategy, n_bins):
    y, p = _overconfident()
    p = np.round(p, 2)  # ties, and values on the edges: the lower bin, as scikit-learn's
    bins = reliability_bins(y, p, n_bins=n_bins, strategy=strategy)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    np.testing.assert_allclose(bins.fraction_positive, prob_true, rtol=0, atol=1e-12)
    np.testing.assert_allclose(bins.mean_probability, prob_pred, rtol=0, atol=1e-12)
    assert bins.count.sum() == len(y)
    ece = np.sum(bins.count * np.abs(bins.gap)) / len(y)
    assert expected_calibration_error(y, p, n_bins=n_bins, strategy=strategy) == pytest.approx(
        ece, abs=1e-12
    )


def test_ece_by_hand_and_its_extremes():
    # uniform bins [0, .5), [.5, 1]: (0.1, 0.3) with no positive, (0.6, 0.8) with one of two
    y, p = [0, 0, 0, 1], [0.1, 0.3, 0.6, 0.8]
    assert expected_calibration_error(y, p, n_bins=2, strategy="uniform") == pytest.approx(
        (2 * 0.2 + 2 * abs(0.5 - 0.7)) / 4
    )
    assert expected_calibration_error([0, 1, 1, 0], [0.5] * 4, n_bins=3) == 0.0
    assert expected_calibration_error([1, 1, 0, 0], [0.0, 0.0, 1.0, 1.0], n_bins=2) == 1.0


def test_an_overconfident_model_has_a_larger_ece_than_its_calibrated_self():
    y, p = _overconfident(n=20000)
    calibrated = 1 / (1 + np.exp(-np.log(p / (1 - p)) / 2))  # the true probability
    assert expected_calibration_error(y, p) > 0.05
    assert expected_calibration_error(y, calibrated) < 0.02
    assert brier_score(y, calibrated) < brier_score(y, p)


def test_brier_is_scikit_learns():
    y, p = _overconfident()
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-15)


@pytest.mark.parametrize("measure", ["ece", "brier"])
def test_replicates_are_the_measure_on_each_resample(measure):
    y, p = _overconfident(n=400)
    idx = bootstrap_indices(y, 50, seed=3)
    reps = calibration_replicates(y, p, idx, measure=measure)
    one = expected_calibration_error if measure == "ece" else brier_score
    np.testing.assert_allclose(reps, [one(y[r], p[r]) for r in idx], rtol=0, atol=1e-12)
    # bootstrap_ci resamples the same cases (stratified by outcome): the same interval
    low, high = bootstrap_ci(one, y, p, n_boot=50, seed=3)
    assert (low, high) == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])))


@pytest.mark.parametrize("strategy", ["quantile", "uniform"])
def test_vectorised_replicates_keep_the_edge_rule_with_ties(strategy, monkeypatch):
    """Probabilities on a 0.05 grid put many cases exactly on bin edges (each goes to the lower
    bin): the vectorised replicates still equal the measure of each resample, block by block,
    and calibration_ci equals bootstrap_ci's interval."""
    from finegrain.calibration import calibration_ci

    rng = np.random.default_rng(7)
    p = np.round(rng.random(700) * 20) / 20
    y = (rng.random(700) < p).astype(int)
    monkeypatch.setattr("finegrain.calibration._BLOCK_CELLS", 700 * 150)  # blocks of 150 rows
    idx = bootstrap_indices(y, 400, seed=2)
    reps = calibration_replicates(y, p, idx, n_bins=10, strategy=strategy)
    one = [expected_calibration_error(y[r], p[r], n_bins=10, strategy=strategy) for r in idx]
    np.testing.assert_allclose(reps, one, rtol=0, atol=1e-12)

    def ece(yy, pp):
        return expected_calibration_error(yy, pp, n_bins=10, strategy=strategy)

    reference = bootstrap_ci(ece, y, p, n_boot=400, seed=2)
    got = calibration_ci(y, p, n_boot=400, seed=2, n_bins=10, strategy=strategy)
    assert got == pytest.approx(reference, abs=1e-12)


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match=r"1\.2 at position 1 is not a probability"):
        expected_calibration_error([0, 1], [0.5, 1.2])
    with pytest.raises(ValueError, match="unknown label 2"):
        brier_score([0, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match="strategy must be one of"):
        expected_calibration_error([0, 1], [0.5, 0.5], strategy="equal")
    with pytest.raises(ValueError, match="n_bins must be a positive integer"):
        reliability_bins([0, 1], [0.5, 0.5], n_bins=0)
    with pytest.raises(ValueError, match="measure must be"):
        calibration_replicates([0, 1], [0.5, 0.5], np.zeros((1, 2), int), measure="nll")
    assert calibration_replicates([0, 1], [0.2, 0.9], np.array([[0, 1]]), measure=BRIER)[
        0
    ] == pytest.approx((0.04 + 0.01) / 2)
