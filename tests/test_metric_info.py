"""Meaning beside numbers: a note when a score is poor for a known reason, and none otherwise."""

import re

import pytest

from shared.metric_info import METRICS, poor_notes


def _evaluation(family="hist_gradient_boosting", positive="PLANET", **means):
    base = {"log_loss": 0.66, "accuracy": 0.60, "roc_auc": 0.5}
    return {
        "metrics": {k: {"mean": v} for k, v in means.items()},
        "baselines": {"majority": {k: {"mean": v} for k, v in base.items()}},
        "spec": {"model": {"family": family}},
        "positive_class": positive,
    }


@pytest.mark.parametrize(
    ("family", "means", "match"),
    [
        (
            "adaboost",
            {"log_loss": 1.304, "roc_auc": 0.9},
            r"Log loss 1.304 is worse than the 0.660.*AdaBoost",
        ),
        ("mlp", {"log_loss": 0.9}, r"neural network can be confidently wrong"),
        ("hist_gradient_boosting", {"roc_auc": 0.52}, r"ROC-AUC 0.520 is close to guessing"),
        (
            "hist_gradient_boosting",
            {"accuracy": 0.605},
            r"no better than always naming the commonest class \(0.600\)",
        ),
        ("logistic_regression", {"recall": 0.0}, r"never predicts PLANET"),
    ],
)
def test_poor_numbers_get_their_reason(family, means, match):
    notes = poor_notes(_evaluation(family, **means))
    assert len(notes) == 1
    assert re.search(match, notes[0])


def test_good_numbers_get_no_note():
    assert poor_notes(_evaluation(log_loss=0.3, roc_auc=0.93, accuracy=0.87, recall=0.9)) == []
    assert poor_notes({}) == []


def test_every_metric_has_a_one_line_meaning():
    for key, info in METRICS.items():
        assert info.label and info.meaning.endswith(".") and "\n" not in info.meaning, key
