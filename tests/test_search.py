"""Successive-halving search over the schema's ranges, with the run's grouped splits."""

import pytest

from shared.params import FAMILIES, validate_params
from shared.search import sample_params, search
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
    spec = RunSpec.from_dict(koi_spec(koi_features, evaluation={"method": "kfold", "folds": 3}))
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
    assert (
        lines[0]
        == "Searching 9 Histogram Gradient Boosting candidates in 2 rounds, scored by grouped ROC-AUC"
    )
    assert lines[1].startswith("Round 1/2: 9 candidates on ") and "best ROC-AUC 0." in lines[1]
    assert lines[2].startswith("Round 2/2: ") and "on 9,564 rows" in lines[2]
    board = result["leaderboard"]
    assert sorted(c["number"] for c in board) == list(range(9)) and all(c["scores"] for c in board)
    finalists = [c for c in board if len(c["scores"]) == 2]
    assert 0 in {c["number"] for c in finalists}  # the defaults always reach the last round
    assert result["defaults_score"] == next(c["scores"][-1] for c in board if c["number"] == 0)
    assert result["best"]["score"] == max(c["scores"][-1] for c in finalists) >= result["defaults_score"]
    assert 0.9 < result["best"]["score"] < 0.97 and not result["stopped_early"]


def test_search_stops_at_its_time_budget(koi, koi_kinds, koi_features):
    spec = RunSpec.from_dict(koi_spec(koi_features, model={"family": "random_forest"}))
    result = search(koi, spec, koi_kinds, candidates=50, minutes=0.05, n_jobs=2)
    assert result["stopped_early"]
    assert any(c["scores"] for c in result["leaderboard"])
