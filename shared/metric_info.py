"""What each evaluation metric means, in a line a researcher can read beside the number (and the
baselines it should be compared with). Plain data: the metric table renders from it."""

from __future__ import annotations

from dataclasses import dataclass


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
