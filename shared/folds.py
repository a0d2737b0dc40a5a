"""scikit-learn's StratifiedGroupKFold with its fold search vectorised: the same folds, faster.

Assigning each group to a fold, scikit-learn tries every fold in turn with a NumPy call per try
(`_find_best_fold`): on KOI (8,214 host stars, 5 folds) that took 2.2 s of a 7 s
HistGradientBoosting evaluation. Here all the tries of one group are one array operation, and
the choice between them is the same sequential comparison (same tie-breaking by fold size), so
the folds are identical to scikit-learn's (tests/test_folds.py checks them on every built-in
table and on random data).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold


class FastStratifiedGroupKFold(StratifiedGroupKFold):
    def _find_best_fold(
        self, y_counts_per_fold: np.ndarray, y_cnt: np.ndarray, group_y_counts: np.ndarray
    ) -> int | None:
        k = self.n_splits
        trial = np.repeat(y_counts_per_fold[np.newaxis], k, axis=0)  # trial i: the group in fold i
        trial[_DIAGONAL[k]] += group_y_counts
        evals = np.std(trial / y_cnt.reshape(1, 1, -1), axis=1).mean(axis=1).tolist()
        samples = y_counts_per_fold.sum(axis=1).tolist()
        best_fold, min_eval, min_samples_in_fold = None, math.inf, math.inf
        for i in range(k):
            if evals[i] < min_eval or (_isclose(evals[i], min_eval) and samples[i] < min_samples_in_fold):
                best_fold, min_eval, min_samples_in_fold = i, evals[i], samples[i]
        return best_fold


def _isclose(a: float, b: float) -> bool:
    """np.isclose(a, b) with its defaults, for two floats (b may be inf), without an array."""
    if math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-8 + 1e-5 * abs(b)


class _Diagonal(dict):
    def __missing__(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        self[k] = (np.arange(k), np.arange(k))
        return self[k]


_DIAGONAL = _Diagonal()
