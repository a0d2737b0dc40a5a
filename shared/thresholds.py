"""Decision thresholds for binary problems, from out-of-fold probabilities (numpy only, so
the web app can move the threshold interactively without retraining or scikit-learn).

A row is predicted positive when its probability is at least the threshold, as scikit-learn's
FixedThresholdClassifier does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AtThreshold:
    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def accuracy(self) -> float:
        total = self.tp + self.fp + self.fn + self.tn
        return (self.tp + self.tn) / total if total else 0.0

    @property
    def balanced_accuracy(self) -> float:
        specificity = self.tn / (self.tn + self.fp) if self.tn + self.fp else 0.0
        return (self.recall + specificity) / 2

    def to_dict(self) -> dict[str, float]:
        """The threshold, the four counts and the scores they give (pooled over the rows)."""
        return {
            "threshold": self.threshold, "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
            "precision": self.precision, "recall": self.recall, "f1": self.f1,
            "accuracy": self.accuracy, "balanced_accuracy": self.balanced_accuracy,
        }  # fmt: skip


DEFAULT_THRESHOLD = 0.5


def predicted_positive(scores: np.ndarray, threshold: float) -> np.ndarray:
    """The one tie rule everywhere: positive when the probability is at least the threshold."""
    return scores >= threshold


def predicted_classes(
    proba: np.ndarray, classes: list[str], positive: str | None, threshold: float | None = None
) -> np.ndarray:
    """Each row's class: for two classes, the positive one when its probability is at least the
    threshold (0.5 unless tuned), as the threshold view and the shipped model decide; for more
    classes, the most probable."""
    names = np.asarray(classes, dtype=object)
    if positive is None:
        return names[proba.argmax(axis=1)]
    p = classes.index(positive)
    cut = DEFAULT_THRESHOLD if threshold is None else threshold
    return np.where(predicted_positive(proba[:, p], cut), positive, names[1 - p]).astype(object)


def at_threshold(is_positive: np.ndarray, scores: np.ndarray, threshold: float) -> AtThreshold:
    predicted = predicted_positive(scores, threshold)
    tp = int(np.sum(predicted & is_positive))
    fp = int(np.sum(predicted & ~is_positive))
    fn = int(np.sum(~predicted & is_positive))
    return AtThreshold(float(threshold), tp, fp, fn, len(scores) - tp - fp - fn)


def _sweep(is_positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each distinct score as the threshold: (thresholds, precision, recall), highest first."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_truth = scores[order], is_positive[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
    tp = np.cumsum(sorted_truth)[last_of_each]
    predicted = last_of_each + 1
    precision = tp / predicted
    recall = tp / max(int(is_positive.sum()), 1)
    return sorted_scores[last_of_each], precision, recall


def best_f1(is_positive: np.ndarray, scores: np.ndarray) -> float:
    thresholds, precision, recall = _sweep(is_positive, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return float(thresholds[int(np.argmax(f1))])


def for_recall(is_positive: np.ndarray, scores: np.ndarray, minimum: float) -> float | None:
    """The threshold with recall ≥ minimum and the best precision (None if unreachable)."""
    thresholds, precision, recall = _sweep(is_positive, scores)
    ok = recall >= minimum
    return float(thresholds[ok][int(np.argmax(precision[ok]))]) if ok.any() else None


def for_precision(is_positive: np.ndarray, scores: np.ndarray, minimum: float) -> float | None:
    """The threshold with precision ≥ minimum and the best recall (None if unreachable)."""
    thresholds, precision, recall = _sweep(is_positive, scores)
    ok = precision >= minimum
    return float(thresholds[ok][int(np.argmax(recall[ok]))]) if ok.any() else None
