"""Successive-halving search over the schema's ranges, with the run's grouped splits."""

import pytest

from shared import search as search_module
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
