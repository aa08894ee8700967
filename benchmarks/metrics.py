"""Benchmark: the vectorised bootstrap of finegrain.metrics against a naive per-replicate loop.

Both sides use the very same resamples (``bootstrap_indices``). The baseline calls
``sklearn.metrics.roc_auc_score`` once per replicate; finegrain ranks the scores once and
computes every replicate's AUC at once from per-score class counts. Also times the DeLong test
(Sun & Xu midranks) against DeLong's structural components computed directly in O(m n).

    python benchmarks/metrics.py                 # 2,000 cases x 2,000 replicates
    python benchmarks/metrics.py --n 5000 --n-boot 1000

Timings on a shared machine are noisy: compare the ratio, not the seconds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from finegrain.metrics import auc, auc_replicates, bootstrap_ci, bootstrap_indices, delong_test


def _best_of(repeats: int, fn):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _delong_direct(y, a, b):
    def components(s):
        x, z = s[y == 1], s[y == 0]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        return psi.mean(axis=1), psi.mean(axis=0)

    (v10a, v01a), (v10b, v01b) = components(a), components(b)
    cov = np.cov(np.vstack([v10a, v10b])) / len(v10a) + np.cov(np.vstack([v01a, v01b])) / len(v01a)
    return cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="cases (2000)")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates (2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="best of R for the fast side (3)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    y = (rng.random(args.n) < 0.4).astype(np.int8)
    score = np.round(1 / (1 + np.exp(-(rng.normal(size=args.n) + 1.2 * y))), 3)  # ties on purpose
    print(f"data: {args.n} cases ({int(y.sum())} class 1), {len(np.unique(score))} distinct scores")
    print(f"bootstrap: {args.n_boot} replicates, stratified by class, seed {args.seed}")

    t_draw, idx = _best_of(args.repeats, lambda: bootstrap_indices(y, args.n_boot, seed=args.seed))
    t_fast, fast = _best_of(args.repeats, lambda: auc_replicates(y, score, idx))
    t_ci, ci = _best_of(
        args.repeats, lambda: bootstrap_ci(auc, y, score, n_boot=args.n_boot, seed=args.seed)
    )
    start = time.perf_counter()
    slow = np.array(
        [
            roc_auc_score(y[row], score[row])
            for row in tqdm(idx, desc="sklearn loop", disable=args.no_progress, leave=False)
        ]
    )
    t_slow = time.perf_counter() - start

    ci_fast = np.quantile(fast, [0.025, 0.975])
    ci_slow = np.quantile(slow, [0.025, 0.975])
    print(f"drawing the resamples (shared by both):       {t_draw:8.3f} s")
    print(f"finegrain auc_replicates (vectorised):        {t_fast:8.3f} s")
    print(f"finegrain bootstrap_ci (draw + replicates):   {t_ci:8.3f} s")
    print(f"naive loop of sklearn roc_auc_score:          {t_slow:8.3f} s")
    print(f"speed-up, replicates only:                    {t_slow / t_fast:8.1f} x")
    print(f"speed-up, whole CI (bootstrap_ci vs loop):    {t_slow / t_ci:8.1f} x")
    print(f"max |difference| over replicates:             {np.max(np.abs(fast - slow)):.2e}")
    print(f"95% CI finegrain: ({ci_fast[0]:.6f}, {ci_fast[1]:.6f})")
    print(f"95% CI sklearn:   ({ci_slow[0]:.6f}, {ci_slow[1]:.6f})")
    print(f"bootstrap_ci:     ({ci[0]:.6f}, {ci[1]:.6f})")
    same = np.allclose(ci_fast, ci_slow, rtol=0, atol=1e-12) and np.allclose(
        ci, ci_fast, atol=1e-12
    )
    print(f"same CI for the same resamples: {'yes' if same else 'NO'}")

    other = np.round(0.5 * score + 0.5 * rng.random(args.n), 2)
    t_dl, result = _best_of(args.repeats, lambda: delong_test(y, score, other))
    t_dd, var = _best_of(1, lambda: _delong_direct(y, score, other))
    print(
        f"DeLong test (midranks) {t_dl * 1e3:.1f} ms vs direct O(mn) components {t_dd * 1e3:.1f} ms "
        f"({t_dd / t_dl:.1f} x); var of difference {result.se**2:.3e} vs {var:.3e}; "
        f"p = {result.p_value:.3g}"
    )
    if not same:
        raise SystemExit("the vectorised and the naive bootstrap disagree")


if __name__ == "__main__":
    main()
