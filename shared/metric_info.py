"""What each evaluation metric means, in a line a researcher can read beside the number (and the
baselines it should be compared with). Plain data: the metric table renders from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MetricInfo:
    label: str
    meaning: str
    higher_is_better: bool = True


METRICS = {
    "roc_auc": MetricInfo(
        "ROC-AUC",
        "Chance that a random positive row gets a higher probability than a random negative one; "
        "0.5 is guessing.",
    ),
    "pr_auc": MetricInfo(
        "PR-AUC",
        "Average precision over all thresholds; guessing scores the positive class's share, "
        "so compare with it.",
    ),
    "balanced_accuracy": MetricInfo(
        "Balanced accuracy",
        "Mean of the recall of each class: not flattered by a common class; 1/classes is guessing.",
    ),
    "accuracy": MetricInfo(
        "Accuracy",
        "Share of rows whose class is right; always naming the commonest class already scores its share.",
    ),
    "precision": MetricInfo(
        "Precision", "Of the rows called positive, the share that are (at the 0.5 cut-off)."
    ),
    "recall": MetricInfo("Recall", "Of the positive rows, the share found (at the 0.5 cut-off)."),
    "f1": MetricInfo("F1", "Harmonic mean of precision and recall (at the 0.5 cut-off)."),
    "log_loss": MetricInfo(
        "Log loss",
        "How far the probabilities are from the truth (lower is better); confident mistakes cost most.",
        higher_is_better=False,
    ),
    "precision_macro": MetricInfo(
        "Precision (macro)", "Precision of each class, averaged with equal weight."
    ),
    "recall_macro": MetricInfo("Recall (macro)", "Recall of each class, averaged with equal weight."),
    "f1_macro": MetricInfo("F1 (macro)", "F1 of each class, averaged with equal weight."),
    "precision_weighted": MetricInfo(
        "Precision (weighted)", "Precision of each class, weighted by its rows."
    ),
    "recall_weighted": MetricInfo("Recall (weighted)", "Recall of each class, weighted by its rows."),
    "f1_weighted": MetricInfo("F1 (weighted)", "F1 of each class, weighted by its rows."),
}
BASELINES = {
    "majority": "Always the commonest class",
    "random": "A random class, by the classes' shares",
}

# Why a family's probabilities can rank well and still score a poor log loss.
PROBABILITY_CAUSES = {
    "adaboost": "AdaBoost's probabilities come from a weighted vote of weak trees and are known to be "
    "badly calibrated",
    "random_forest": "a forest's probabilities are vote shares, pulled away from 0 and 1",
    "mlp": "a neural network can be confidently wrong on rows unlike its training rows",
}
NEAR_CHANCE_AUC = 0.55


def poor_notes(evaluation: dict[str, Any]) -> list[str]:
    """Plain notes for numbers that are poor for a known reason, from an evaluation's metrics
    (as stored: ``metrics``, ``baselines``, ``spec``, ``positive_class``)."""
    means = {k: v.get("mean") for k, v in (evaluation.get("metrics") or {}).items()}
    majority = {
        k: v.get("mean") for k, v in ((evaluation.get("baselines") or {}).get("majority") or {}).items()
    }
    family = ((evaluation.get("spec") or {}).get("model") or {}).get("family")
    notes = []
    loss, base_loss = means.get("log_loss"), majority.get("log_loss")
    if loss is not None and base_loss is not None and loss > base_loss:
        cause = PROBABILITY_CAUSES.get(family, "the probabilities are badly calibrated")
        notes.append(
            f"Log loss {loss:.3f} is worse than the {base_loss:.3f} of a model that only knows the class "
            f"shares: {cause}. The ranking (ROC-AUC) can still be good; calibrating the probabilities "
            "(model step, sigmoid) usually brings log loss down."
        )
    auc = means.get("roc_auc")
    if auc is not None and auc <= NEAR_CHANCE_AUC:
        notes.append(
            f"ROC-AUC {auc:.3f} is close to guessing (0.5): these features carry little signal about "
            "the target under this split (if an ungrouped or leaky setup scored higher, that score was "
            "the leak)."
        )
    accuracy, base_accuracy = means.get("accuracy"), majority.get("accuracy")
    if accuracy is not None and base_accuracy is not None and accuracy <= base_accuracy + 0.01:
        notes.append(
            f"Accuracy {accuracy:.3f} is no better than always naming the commonest class "
            f"({base_accuracy:.3f}): judge this model by balanced accuracy and ROC-AUC instead."
        )
    positive = evaluation.get("positive_class")
    if positive and means.get("recall") == 0:
        notes.append(
            f"At the 0.5 cut-off the model never predicts {positive}: lower the threshold below, or turn "
            "on class balancing in the model step."
        )
    return notes
