"""Successive-halving search over the schema's ranges, with the run's grouped splits."""

import numpy as np
import pandas as pd
import pytest

from shared import search as search_module
from shared.errors import DataError
from shared.evaluation import evaluate, prepare
from shared.params import FAMILIES, validate_params
from shared.search import BudgetTooSmall, sample_params, search
from shared.spec import RunSpec
from tests.nasa import koi_spec

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("family", list(FAMILIES))
def test_candidates_are_valid_schema_values(family):
    draws = sample_params(family, 30, seed=1)
    assert draws[0] == FAMILIES[family].defaults()
    for params in draws:
        assert validate_params(family, params) == params  # the same schema accepts every draw
    assert len({repr(sorted(d.items())) for d in draws}) > 20  # really random


def test_search_on_koi_reports_every_candidate_and_the_defaults(koi, koi_kinds, koi_features):
    spec = RunSpec.from_dict(
        koi_spec(
            koi_features, model={"family": "logistic_regression"}, evaluation={"method": "kfold", "folds": 3}
        )
    )
    lines = []
    result = search(
        koi,
        spec,
        koi_kinds,
        candidates=9,
        minutes=10,
        n_jobs=2,
        progress=lambda text, fraction: lines.append(text),
    )
    assert lines[0] == "Searching 9 Logistic Regression candidates in 2 rounds, scored by grouped ROC-AUC"
    assert lines[1].startswith("Round 1/2: 9 candidates on ") and "best ROC-AUC 0." in lines[1]
    assert lines[2].startswith("Round 2/2: ") and "on 9,564 rows" in lines[2]
    board = result["leaderboard"]
    assert sorted(c["number"] for c in board) == list(range(9)) and all(c["scores"] for c in board)
    finalists = [c for c in board if len(c["scores"]) == 2]
    assert 0 in {c["number"] for c in finalists}  # the defaults always reach the last round
    assert result["defaults_score"] == next(c["scores"][-1] for c in board if c["number"] == 0)
    assert result["best"]["score"] == max(c["scores"][-1] for c in finalists) >= result["defaults_score"]
    assert 0.85 < result["best"]["score"] < 0.97 and not result["stopped_early"]


class Clock:
    """A clock that moves one second each time it is read: budgets in reads, not machine speed."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now


def test_search_stops_at_its_time_budget(koi, koi_kinds, koi_features, monkeypatch):
    monkeypatch.setattr(search_module, "time", Clock())
    spec = RunSpec.from_dict(koi_spec(koi_features, model={"family": "logistic_regression"}))
    # 12 s: the start, then per candidate one look before it and one per fold (3): two candidates
    result = search(koi.sample(1500, random_state=0), spec, koi_kinds, candidates=50, minutes=0.2, n_jobs=2)
    assert result["stopped_early"]
    assert [len(c["scores"]) for c in result["leaderboard"]].count(1) == 2


def test_a_budget_too_small_for_any_candidate_says_so(koi, koi_kinds, koi_features, monkeypatch):
    monkeypatch.setattr(search_module, "time", Clock())
    spec = RunSpec.from_dict(koi_spec(koi_features, model={"family": "logistic_regression"}))
    with pytest.raises(
        BudgetTooSmall, match=r"budget of 0.01 minutes ran out before any candidate finished its 5 fold"
    ):
        search(koi.sample(1500, random_state=0), spec, koi_kinds, candidates=8, minutes=0.01, n_jobs=2)


def _few_groups(rows: int = 300, groups: int = 3, seed: int = 0) -> pd.DataFrame:
    """A small table whose group column has only ``groups`` values (a few host stars)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "label": np.where(x1 + 0.5 * rng.normal(size=rows) > 0, "PLANET", "FALSE POSITIVE"),
            "star": [f"star-{i % groups}" for i in range(rows)],
        }
    )


def _few_groups_spec(folds: int = 3) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": "upload",
            "target": "label",
            "features": ["x1", "x2"],
            "group_column": "star",
            "model": {"family": "logistic_regression"},
            "evaluation": {"method": "kfold", "folds": folds},
        }
    )


FEW_KINDS = {"x1": "numeric", "x2": "numeric", "label": "categorical", "star": "categorical"}


def test_search_with_as_many_groups_as_folds_completes_on_grouped_folds(monkeypatch):
    """3 groups, 3 folds: evaluation runs, so the search must too, and never split a group."""
    frame, spec = _few_groups(), _few_groups_spec(3)
    assert evaluate(frame, spec, FEW_KINDS).metrics  # evaluation copes with these groups
    seen: list[tuple[int, int]] = []
    cross_validate = search_module._cross_validate

    def checked(spec_, kinds, data, folds, n_jobs, deadline):
        groups = data.groups.to_numpy()
        assert len(folds) == 3
        for train, test in folds:
            assert len(test) and not set(groups[train]) & set(groups[test])  # no group split
        seen.append((len(data.labels), len(set(groups))))
        return cross_validate(spec_, kinds, data, folds, n_jobs, deadline)

    monkeypatch.setattr(search_module, "_cross_validate", checked)
    result = search(frame, spec, FEW_KINDS, candidates=9, minutes=5)
    board = result["leaderboard"]
    assert sorted(c["number"] for c in board) == list(range(9)) and all(c["scores"] for c in board)
    assert not result["stopped_early"] and 0.5 < result["best"]["score"] <= 1
    assert len(seen) in (12, 13)  # 9 candidates, then the best third and the defaults
    assert all(g == 3 for _, g in seen)  # every group present in every round
    assert seen[0][0] < 300 and seen[-1][0] == 300  # round 1 on a subsample, the last on every row


def test_search_and_evaluation_refuse_too_few_groups_alike():
    """2 groups for 3 folds: the search says what evaluation says (the groups, the folds)."""
    frame, spec = _few_groups(groups=2), _few_groups_spec(3)
    with pytest.raises(DataError) as by_evaluation:
        evaluate(frame, spec, FEW_KINDS)
    with pytest.raises(DataError) as by_search:
        search(frame, spec, FEW_KINDS, candidates=9, minutes=5)
    assert str(by_search.value) == str(by_evaluation.value)
    assert "only 2 groups" in str(by_search.value) and "3-fold" in str(by_search.value)
    assert str(by_search.value).startswith(f"group column {spec.group_column!r} has only 2 groups")


@pytest.mark.parametrize("share", [1 / 3, 1 / 9])
def test_a_subsample_keeps_enough_whole_groups_for_the_folds(share):
    data = prepare(_few_groups(rows=900, groups=4), _few_groups_spec(3))
    small = search_module._subsample(data, share, seed=1, need=3)
    assert small.groups.nunique() >= 3 and len(small.labels) < 0.5 * 900
    assert set(small.labels) == set(data.labels)  # every class of every kept group stays in
