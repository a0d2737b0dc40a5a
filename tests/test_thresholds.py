"""Threshold tuning from out-of-fold probabilities, checked against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

from shared.thresholds import at_threshold, best_f1, for_precision, for_recall


@pytest.fixture(scope="module")
def oof():
    rng = np.random.default_rng(3)
    truth = rng.random(3000) < 0.4
    scores = np.clip(rng.normal(0.35 + 0.3 * truth, 0.18), 0, 1).round(3)  # ties included
    return truth, scores


@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.5, 0.61, 0.9, 1.0])
def test_confusion_matches_scikit_learn(oof, threshold):
    truth, scores = oof
    result = at_threshold(truth, scores, threshold)
    predicted = scores >= threshold
    tn, fp, fn, tp = confusion_matrix(truth, predicted, labels=[False, True]).ravel()
    assert (result.tp, result.fp, result.fn, result.tn) == (tp, fp, fn, tn)
    assert result.precision == pytest.approx(precision_score(truth, predicted, zero_division=0))
    assert result.recall == pytest.approx(recall_score(truth, predicted, zero_division=0))
    assert result.f1 == pytest.approx(f1_score(truth, predicted, zero_division=0))


def test_presets_are_optimal_over_every_threshold(oof):
    truth, scores = oof
    every = [at_threshold(truth, scores, t) for t in np.unique(scores)]
    assert at_threshold(truth, scores, best_f1(truth, scores)).f1 == pytest.approx(max(r.f1 for r in every))
    t = for_recall(truth, scores, 0.9)
    allowed = [r for r in every if r.recall >= 0.9]
    assert at_threshold(truth, scores, t).recall >= 0.9
    assert at_threshold(truth, scores, t).precision == pytest.approx(max(r.precision for r in allowed))
    t = for_precision(truth, scores, 0.8)
    allowed = [r for r in every if r.precision >= 0.8]
    assert at_threshold(truth, scores, t).precision >= 0.8
    assert at_threshold(truth, scores, t).recall == pytest.approx(max(r.recall for r in allowed))
    assert for_precision(truth, scores, 1.01) is None
