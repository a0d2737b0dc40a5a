"""The vectorised StratifiedGroupKFold gives exactly scikit-learn's folds, faster."""

import time

import numpy as np
import pytest
from sklearn.model_selection import StratifiedGroupKFold

from shared.catalog import BUILTINS
from shared.data import read_table
from shared.folds import FastStratifiedGroupKFold
from shared.snapshot import read_snapshot


def _same_folds(x, y, groups, n_splits: int, seed: int) -> None:
    ours = FastStratifiedGroupKFold(n_splits, shuffle=True, random_state=seed).split(x, y, groups)
    theirs = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed).split(x, y, groups)
    for (train_a, test_a), (train_b, test_b) in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(test_a, test_b)
        np.testing.assert_array_equal(train_a, train_b)


@pytest.mark.parametrize("dataset", sorted(BUILTINS))
def test_identical_to_scikit_learn_on_every_builtin_table(dataset):
    builtin = BUILTINS[dataset]
    frame = read_table(read_snapshot(dataset), filename=f"{dataset}.csv")
    frame = frame[frame[builtin.target].notna()]
    y, groups = frame[builtin.target].astype(str).to_numpy(), frame[builtin.group_column].to_numpy()
    for n_splits, seed in ((5, 0), (3, 42), (10, 7)):
        _same_folds(np.zeros((len(y), 1)), y, groups, n_splits, seed)


@pytest.mark.parametrize("seed", range(6))
def test_identical_to_scikit_learn_on_random_groups(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(200, 3000))
    groups = rng.integers(0, int(rng.integers(20, n // 2)), n)
    y = rng.choice(["a", "b", "c"][: int(rng.integers(2, 4))], n, p=None)
    _same_folds(np.zeros((n, 1)), y, groups, int(rng.integers(2, 8)), seed)


def test_faster_on_koi():
    builtin = BUILTINS["kepler"]
    frame = read_table(read_snapshot("kepler"), filename="kepler.csv")
    y, groups, x = (
        frame[builtin.target].astype(str).to_numpy(),
        frame[builtin.group_column].to_numpy(),
        np.zeros((len(frame), 1)),
    )

    def seconds(splitter) -> float:
        start = time.perf_counter()
        list(splitter(5, shuffle=True, random_state=0).split(x, y, groups))
        return time.perf_counter() - start

    assert seconds(FastStratifiedGroupKFold) < seconds(StratifiedGroupKFold) / 2
