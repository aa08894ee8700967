"""The report's bootstrap statistics reuse replicates: the same numbers as computed afresh."""

from __future__ import annotations

import numpy as np

from finegrain.experiment import aggregate
from finegrain.experiment.aggregate import paired_difference_ci, seed_mean_ci
from finegrain.metrics import auc_fg, auc_replicates, bootstrap_ci, bootstrap_indices


def _data(seed: int, n: int = 300, seeds: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    typical = (rng.random(n) < 0.4).astype(int)
    a = rng.random((n, seeds)) + 0.3 * typical[:, None]
    b = np.round(rng.random((n, seeds)), 2)  # ties
    return typical, a, b


def test_seed_mean_ci_equals_the_direct_bootstrap() -> None:
    typical, a, _ = _data(0)
    assert seed_mean_ci(typical, a[:, :1], n_boot=500, seed=3) == bootstrap_ci(
        auc_fg, typical, a[:, 0], n_boot=500, seed=3
    )
    idx = bootstrap_indices(typical, 500, seed=3)
    reps = np.mean([auc_replicates(typical, a[:, j], idx) for j in range(3)], axis=0)
    expected = tuple(float(v) for v in np.nanquantile(reps, [0.025, 0.975]))
    assert seed_mean_ci(typical, a, n_boot=500, seed=3) == expected
    assert seed_mean_ci(typical, a, n_boot=500, seed=3) == expected  # served again: the same


def test_paired_difference_ci_equals_the_direct_bootstrap_and_sees_new_scores() -> None:
    typical, a, b = _data(1)
    idx = bootstrap_indices(typical, 400, seed=0)
    diffs = np.stack(
        [auc_replicates(typical, a[:, j], idx) - auc_replicates(typical, b[:, j], idx)
         for j in range(3)]
    )  # fmt: skip
    picks = np.random.default_rng([0, 1]).integers(0, 3, size=(400, 3))
    reps = diffs[picks, np.arange(400)[:, None]].mean(axis=1)
    low, high = np.nanquantile(reps, [0.025, 0.975])
    mean = np.mean([auc_fg(typical, a[:, j]) - auc_fg(typical, b[:, j]) for j in range(3)])
    assert paired_difference_ci(typical, a, b, n_boot=400) == (mean, low, high)
    changed = a.copy()
    changed[:, 0] = changed[::-1, 0]  # other scores, same cases: not the kept replicates
    assert paired_difference_ci(typical, changed, b, n_boot=400)[1:] != (low, high)
    other_cases = typical.copy()
    other_cases[:10] = 1 - other_cases[:10]
    fresh = bootstrap_indices(other_cases, 400, seed=0)
    assert np.array_equal(
        aggregate._replicates(other_cases, a[:, 0], 400, 0),
        auc_replicates(other_cases, a[:, 0], fresh),
    )
