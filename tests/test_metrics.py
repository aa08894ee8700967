"""finegrain.metrics: AUC^FG / AUC against sklearn and brute force, bootstrap, DeLong."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from finegrain.metrics import (
    auc,
    auc_fg,
    auc_replicates,
    bootstrap_ci,
    bootstrap_indices,
    delong_ci,
    delong_test,
)


def _pairs_fraction(y, s) -> Fraction:
    """Brute force Mann–Whitney: fraction of (class 1, class 0) pairs won, ties one half."""
    y, s = np.asarray(y), np.asarray(s, dtype=float)
    ones, zeros = s[y == 1], s[y == 0]
    wins2 = sum(2 * int(a > b) + int(a == b) for a in ones for b in zeros)
    return Fraction(wins2, 2 * len(ones) * len(zeros))


@st.composite
def labelled_scores(draw, min_size=2, max_size=40, tied=None):
    n = draw(st.integers(min_size, max_size))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda v: 0 < sum(v) < n))
    if tied is None:
        tied = draw(st.booleans())
    if tied:  # few distinct values: many ties
        s = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    else:
        s = draw(
            st.lists(
                st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=n, max_size=n
            )
        )
    return np.array(y), np.array(s, dtype=float)


# ------------------------------------------------------------------ equality with references


@settings(max_examples=80, deadline=None)
@given(labelled_scores())
def test_auc_fg_equals_sklearn_roc_auc_score(data):
    y, s = data
    assert math.isclose(auc_fg(y, s), roc_auc_score(y, s), rel_tol=0, abs_tol=1e-12)
    assert math.isclose(auc(y, s), roc_auc_score(y, s), rel_tol=0, abs_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(labelled_scores(tied=True))
def test_auc_is_the_exact_pairwise_fraction_rounded_once(data):
    y, s = data
    assert auc_fg(y, s) == float(_pairs_fraction(y, s))


@settings(max_examples=60, deadline=None)
@given(labelled_scores(), st.sampled_from(["affine", "cube", "arctan"]))
def test_invariant_to_strictly_increasing_transforms(data, kind):
    y, s = data
    if kind == "affine":
        t = 2.0 * np.round(s) + 7.0
        s = np.round(s)
    elif kind == "cube":
        s = np.round(s / 1e4)  # small integers: the cube is exact and strictly increasing
        t = s**3 + s
    else:
        s = np.round(s / 1e3)  # integers in [-1000, 1000]: arctan keeps them apart (> 1e-4)
        t = np.arctan(s / 1e3) + 5.0
    assert len(np.unique(t)) == len(np.unique(s))  # strictly increasing: no values merged
    assert auc_fg(y, t) == auc_fg(y, s)


@settings(max_examples=60, deadline=None)
@given(labelled_scores())
def test_reversing_the_score_gives_one_minus_auc(data):
    y, s = data
    assert math.isclose(auc_fg(y, -s), 1.0 - auc_fg(y, s), abs_tol=1e-12)


def test_worked_example_from_the_docs():
    # atypical 0.30, 0.55, 0.70 ; typical 0.55, 0.80, 0.90 -> 7.5 of 9 pairs
    sub = ["atypical", "atypical", "atypical", "typical", "typical", "typical"]
    score = [0.30, 0.55, 0.70, 0.55, 0.80, 0.90]
    assert auc_fg(sub, score) == 7.5 / 9


# ------------------------------------------------------------------ label forms


def test_label_forms_agree():
    score = [0.1, 0.7, 0.4, 0.9, 0.3]
    strings = ["atypical", "typical", "atypical", "typical", "typical"]
    expected = auc_fg([0, 1, 0, 1, 1], score)
    assert auc_fg(strings, score) == expected
    assert auc_fg([" Atypical", "TYPICAL ", "atypical", "typical", "Typical"], score) == expected
    assert auc_fg(np.array([False, True, False, True, True]), score) == expected
    assert auc_fg(pd.Series(strings), pd.Series(score)) == expected
    assert auc_fg(np.array(strings), np.array(score)) == expected
    assert auc_fg([0.0, 1.0, 0.0, 1.0, 1.0], score) == expected
    assert auc([0, 1, 0, 1, 1], score) == expected


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("sub", "score", "match"),
    [
        (["typical", "typical"], [0.1, 0.2], "no atypical cases among 2"),
        ([0, 0, 0], [0.1, 0.2, 0.3], "no typical cases among 3"),
        ([0, 1, 1], [0.1, 0.2], "lengths differ: 3 labels but 2 values"),
        ([0, 1, 1], [0.1, float("nan"), 0.3], r"nan at position 1"),
        ([0, 1, 1], [0.1, 0.2, float("inf")], r"inf at position 2"),
        (["atypical", "typical", "mild"], [0.1, 0.2, 0.3], r"unknown label 'mild' at position 2"),
        (["atypical", None, "typical"], [0.1, 0.2, 0.3], r"unknown label None at position 1"),
        ([0, 1, 2], [0.1, 0.2, 0.3], r"unknown label 2 at position 2"),
        ([0, 1, 0.5], [0.1, 0.2, 0.3], r"unknown label 0.5 at position 2"),
        ([[0, 1], [0, 1]], [0.1, 0.2], r"must be 1-D"),
        ([0, 1], ["0.1", "high"], r"non-numeric value 'high' at position 1"),
    ],
)
def test_auc_fg_errors_name_the_problem(sub, score, match):
    with pytest.raises(ValueError, match=match):
        auc_fg(sub, score)


def test_auc_rejects_uncertain_and_subcategory_words():
    with pytest.raises(ValueError, match=r"unknown label -1 at position 1"):
        auc([1, -1, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"unknown label 'typical' at position 0"):
        auc(["typical", "atypical"], [0.1, 0.2])
    with pytest.raises(ValueError, match="no positive cases"):
        auc([0, 0], [0.1, 0.2])


def test_missing_value_in_nullable_series_is_named():
    sub = pd.Series(["atypical", pd.NA, "typical"], dtype="string")
    with pytest.raises(ValueError, match="at position 1"):
        auc_fg(sub, [0.1, 0.2, 0.3])


# ------------------------------------------------------------------ bootstrap


def _data(n=300, seed=0, shift=0.8):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    s = np.round(rng.normal(size=n) + shift * y, 1)  # rounded: ties on purpose
    return y, s


def test_vectorised_replicates_equal_sklearn_on_the_same_resamples():
    y, s = _data(n=120)
    idx = bootstrap_indices(y, n_boot=80, seed=3)
    fast = auc_replicates(y, s, idx)
    slow = np.array([roc_auc_score(y[row], s[row]) for row in idx])
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_stratified_resamples_keep_class_sizes_and_are_deterministic():
    y, _ = _data(n=50)
    idx = bootstrap_indices(y, n_boot=130, seed=7)  # crosses a block boundary (64)
    assert idx.shape == (130, 50)
    assert (y[idx].sum(axis=1) == y.sum()).all()
    np.testing.assert_array_equal(idx, bootstrap_indices(y, n_boot=130, seed=7))
    assert not np.array_equal(idx, bootstrap_indices(y, n_boot=130, seed=8))
    # the first replicates do not depend on how many are drawn
    np.testing.assert_array_equal(idx[:64], bootstrap_indices(y, n_boot=64, seed=7))


def test_bootstrap_ci_is_the_percentile_interval_of_the_replicates():
    y, s = _data()
    reps = auc_replicates(y, s, bootstrap_indices(y, n_boot=500, seed=1))
    low, high = bootstrap_ci(auc, y, s, n_boot=500, seed=1, level=0.9)
    assert (low, high) == tuple(np.quantile(reps, [0.05, 0.95]))
    assert low < auc(y, s) < high
    wide = bootstrap_ci(auc, y, s, n_boot=500, seed=1, level=0.99)
    assert wide[0] < low and wide[1] > high


def test_generic_metric_path_uses_the_same_resamples():
    y, s = _data(n=80)
    sub = np.where(y == 1, "typical", "atypical")
    fast = bootstrap_ci(auc_fg, sub, s, n_boot=100, seed=2)
    slow = bootstrap_ci(lambda a, b: roc_auc_score(a == "typical", b), sub, s, n_boot=100, seed=2)
    assert fast == pytest.approx(slow, abs=1e-12)


def test_bootstrap_ci_errors_and_unstratified_warning():
    with pytest.raises(ValueError, match="no atypical cases"):
        bootstrap_ci(auc_fg, ["typical"] * 3, [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(auc, [0, 1], [0.1, 0.2], level=95)
    with pytest.raises(ValueError, match="lengths differ"):
        bootstrap_ci(auc, [0, 1, 1], [0.1, 0.2])
    with pytest.warns(UserWarning, match="replicates were undefined"):
        low, high = bootstrap_ci(auc, [0, 1, 1], [0.1, 0.2, 0.3], n_boot=200, stratify=False)
    assert 0.0 <= low <= high <= 1.0


def test_bootstrap_spread_matches_delong_standard_error():
    y, s = _data(n=400, seed=5)
    reps = auc_replicates(y, s, bootstrap_indices(y, n_boot=2000, seed=0))
    var = delong_test(y, s, np.zeros_like(s)).var_a
    assert reps.std(ddof=1) == pytest.approx(math.sqrt(var), rel=0.15)


# ------------------------------------------------------------------ DeLong


def _delong_slow(y, a, b):
    """DeLong et al. (1988) structural components, computed directly in O(m n)."""
    y = np.asarray(y)

    def components(s):
        x, z = s[y == 1], s[y == 0]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)

    auc_a, v10a, v01a = components(np.asarray(a, float))
    auc_b, v10b, v01b = components(np.asarray(b, float))
    m, n = len(v10a), len(v01a)
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    cov = s10 / m + s01 / n
    return auc_a, auc_b, cov


@pytest.mark.parametrize("seed", range(6))
def test_delong_matches_direct_structural_components(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 60))
    y = np.r_[0, 1, (rng.random(n - 2) < 0.5).astype(int)]
    a = np.round(rng.normal(size=n) + y, 1)
    b = np.round(0.5 * a + rng.normal(size=n), 1)
    r = delong_test(y, a, b)
    auc_a, auc_b, cov = _delong_slow(y, a, b)
    assert r.auc_a == pytest.approx(auc_a, abs=1e-12)
    assert r.auc_b == pytest.approx(auc_b, abs=1e-12)
    assert (r.var_a, r.var_b, r.covariance) == pytest.approx(
        (cov[0, 0], cov[1, 1], cov[0, 1]), abs=1e-12
    )
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    assert r.z == pytest.approx((auc_a - auc_b) / math.sqrt(var), rel=1e-9)
    assert r.p_value == pytest.approx(2 * (1 - 0.5 * (1 + math.erf(abs(r.z) / math.sqrt(2)))))
    assert (r.n_positive, r.n_negative) == (int(y.sum()), int(n - y.sum()))


def test_delong_degenerate_cases_and_string_labels():
    y = ["atypical", "atypical", "typical", "typical"]
    same = delong_test(y, [0.1, 0.5, 0.4, 0.9], [0.1, 0.5, 0.4, 0.9])
    assert (same.difference, same.z, same.p_value) == (0.0, 0.0, 1.0)
    perfect = delong_test(y, [0.1, 0.2, 0.8, 0.9], [0.5, 0.5, 0.5, 0.5])
    assert perfect.auc_a == 1.0 and perfect.auc_b == 0.5
    assert perfect.z == math.inf and perfect.p_value == 0.0
    with pytest.raises(ValueError, match="lengths differ.*score_b"):
        delong_test([0, 1], [0.1, 0.2], [0.1])


def test_delong_ci_uses_delong_variance():
    from scipy.stats import norm

    y, s = _data(n=200, seed=9)
    low, high = delong_ci(y, s, level=0.95)
    # independent of finegrain.metrics: sklearn's AUC, the direct O(m n) DeLong variance,
    # scipy's normal quantile
    auc_ref = roc_auc_score(y, s)
    _, _, cov = _delong_slow(y, s, s)
    se = math.sqrt(cov[0, 0])
    z = norm.ppf(0.975)
    assert low == pytest.approx(auc_ref - z * se, abs=1e-12)
    assert high == pytest.approx(auc_ref + z * se, abs=1e-12)


def test_auc_fg_by_source_scores_each_sources_atypical_cases_against_every_typical() -> None:
    from finegrain.metrics import auc_fg_by_source

    sub = ["atypical"] * 4 + ["typical"] * 3
    source = ["severity", "severity", "change", "change", "no", "severity", "change"]
    score = [0.1, 0.2, 0.8, 0.3, 0.5, 0.6, 0.7]
    found = auc_fg_by_source(sub, source, score)
    assert found["severity"] == auc_fg([0, 0, 1, 1, 1], [0.1, 0.2, 0.5, 0.6, 0.7]) == 1.0
    assert found["change"] == auc_fg([0, 0, 1, 1, 1], [0.8, 0.3, 0.5, 0.6, 0.7])
    assert (found["n_severity"], found["n_change"]) == (2, 2)
    none = auc_fg_by_source(sub[2:], source[2:], score[2:], sources=("severity",))
    assert np.isnan(none["severity"]) and none["n_severity"] == 0
    with pytest.raises(ValueError, match="source has 2 values for 7 cases"):
        auc_fg_by_source(sub, source[:2], score)


def test_severity_rho_is_spearmans_rho_and_nan_when_constant() -> None:
    from scipy.stats import spearmanr

    from finegrain.metrics import severity_rho

    rng = np.random.default_rng(0)
    severity = rng.uniform(0, 1, 200)
    score = severity + rng.normal(0, 0.3, 200)
    assert severity_rho(score, severity) == pytest.approx(spearmanr(score, severity).statistic)
    assert 0.5 < severity_rho(score, severity) < 1.0
    assert np.isnan(severity_rho(np.ones(5), severity[:5]))
