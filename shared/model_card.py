"""The model card: what the model is for, what it learned from, how it was tested, and what
it cannot do. One structure, rendered as Markdown for the bundle and as HTML in the app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

METRIC_NAMES = {
    "accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "precision": "Precision",
    "recall": "Recall", "f1": "F1", "roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "log_loss": "Log loss",
    "f1_macro": "F1 (macro)", "precision_macro": "Precision (macro)", "recall_macro": "Recall (macro)",
}  # fmt: skip
THRESHOLD_METRICS = {
    "accuracy", "balanced_accuracy", "precision", "recall", "f1",
    "f1_macro", "precision_macro", "recall_macro",
}  # fmt: skip
LIMITATIONS = (
    "Candidates are not ground truth: CANDIDATE and PC rows are unresolved, so a model trained on them "
    "learns the archive's current opinion, not nature.",
    "Mission shift: Kepler, K2 and TESS differ in photometric precision, cadence, stellar samples and "
    "vetting; a model trained on one mission's table should not be trusted on another's without "
    "evaluating it there.",
    "Dispositions change as follow-up arrives; retrain on a fresh export before relying on old scores.",
    "Scores are only as honest as the features: a column that encodes the vetting decision inflates them.",
)
Section = tuple[str, list[str]]


def _code(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _intended_use(m: Mapping[str, Any]) -> Section:
    table = (m.get("data_source") or {}).get("name") or m.get("dataset", "uploaded")
    return ("Intended use", [
        f"Classifies rows of the {table} table by `{m['target']}` into {', '.join(m['classes'])}.",
        "For ranking and triaging transit signals for follow-up, not for declaring planets confirmed.",
    ])  # fmt: skip


def _data(m: Mapping[str, Any]) -> Section:
    source = m.get("data_source") or {}
    setup = (m.get("spec") or {}).get("label_setup") or "raw classes"
    mapping = f" (mapping {m['label_mapping']})" if m.get("label_mapping") else ""
    counts = ", ".join(f"{k} {v:,}" for k, v in m.get("class_counts", {}).items())
    rows = source.get("rows", m["training_rows"])
    return ("Data", [
        f"Source: {source.get('source', 'unknown')}, read on {source.get('fetched_at', 'unknown')}; "
        f"{rows:,} rows (table sha256 `{m['data_sha256'][:16]}…`).",
        f"Label setup: {setup}{mapping}.",
        f"Trained on {m['training_rows']:,} rows ({counts}); {m['dropped_rows']:,} rows left out "
        "(no label, or a class the setup drops).",
        f"Features ({len(m['features'])}): {_code(m['features'])}.",
        f"Leakage columns left out: {_code(m.get('excluded_leakage', [])) or 'none identified'}.",
    ])  # fmt: skip


def _evaluation(m: Mapping[str, Any]) -> Section:
    evaluation = m.get("evaluation") or {}
    if not evaluation:
        return ("Evaluation", ["Not evaluated before training on all data: no honest estimate is attached."])
    protocol = evaluation.get("protocol") or {}
    if protocol.get("method") == "kfold":
        how = f"{protocol.get('splits')}-fold cross-validation"
    else:
        how = f"a {protocol.get('test_size') or 0:.0%} holdout"
    stratified = ", stratified" if protocol.get("stratified") else ""
    grouped = f", grouped by `{protocol['grouped_by']}`" if protocol.get("grouped_by") else ""
    lines = [f"{how}{stratified}{grouped}, seed {protocol.get('seed')}."]
    at = m.get("at_threshold")
    if at:
        lines.append(
            f"At the decision threshold {at['threshold']:.3f} the model ships with (pooled out-of-fold "
            f"predictions): precision {at['precision']:.3f}, recall {at['recall']:.3f}, F1 {at['f1']:.3f}, "
            f"accuracy {at['accuracy']:.3f}, balanced accuracy {at['balanced_accuracy']:.3f} "
            f"({at['tp']:,} true and {at['fp']:,} false positives, {at['fn']:,} missed)."
        )
    cut = " at the 0.5 cut-off" if evaluation.get("positive_class") else ""
    majority = (evaluation.get("baselines") or {}).get("majority", {})
    for key, label in METRIC_NAMES.items():
        value = evaluation.get("metrics", {}).get(key)
        if value and value.get("mean") is not None:
            spread = f" ± {value['std']:.3f}" if value.get("std") is not None else ""
            where = cut if key in THRESHOLD_METRICS else ""
            base = (majority.get(key) or {}).get("mean")
            versus = f" (always the commonest class: {base:.3f})" if base is not None else ""
            lines.append(f"{label}{where}, mean over splits: {value['mean']:.3f}{spread}{versus}")
    if evaluation.get("positive_class"):
        lines.append(f"Positive class for precision, recall and F1: {evaluation['positive_class']}.")
    top = evaluation.get("importance", [])[:8]
    if top:
        ranked = ", ".join(f"`{t['feature']}` {t['mean']:.3f} ± {t['std']:.3f}" for t in top)
        lines.append(f"Most important features (drop in score when shuffled, held-out splits): {ranked}.")
    return ("Evaluation", lines)


def _decision(m: Mapping[str, Any]) -> Section:
    threshold = m.get("threshold")
    if threshold is not None:
        rule = f"Predicts {m.get('positive_class')} when its probability is at least {threshold:.3f}."
    elif m.get("positive_class") and len(m.get("classes", [])) == 2:
        rule = f"Predicts {m['positive_class']} when its probability is at least 0.500 (not tuned)."
    else:
        rule = "Predicts the most probable class."
    calibration = (m.get("spec") or {}).get("calibration", "none")
    report = (m.get("evaluation") or {}).get("calibration")
    if calibration == "none":
        calibrated = "Probabilities are not calibrated beyond what the model family provides."
    elif report:
        calibrated = (
            f"Probabilities calibrated ({calibration}); Brier score {report['brier_before']:.4f} "
            f"without and {report['brier_after']:.4f} with calibration in evaluation."
        )
    else:
        calibrated = f"Probabilities calibrated ({calibration}); not evaluated."
    return ("Decision", [rule, calibrated])


def _model(m: Mapping[str, Any]) -> Section:
    params = ", ".join(f"{k}={v}" for k, v in m["model"]["params"].items())
    kept = len(m.get("kept_features", []))
    lines = [
        f"Family: {m['model']['family']}; parameters: {params}.",
        f"Feature selection: {m['feature_selection']['method']}; {kept} model inputs kept.",
    ]
    explanation = m.get("explanation")
    if explanation:
        tree = explanation["method"] == "tree_shap"
        kind = "SHAP values (tree explainer)" if tree else "linear contributions"
        ranked = ", ".join(f"`{f['feature']}` {f['mean_abs']:.3f}" for f in explanation["features"][:8])
        lines.append(
            f"Largest mean |{kind}| in {explanation['units']} over {explanation['rows']:,} training rows: "
            f"{ranked}. Figure: figures/shap.svg."
        )
    else:
        lines.append("No per-row explanations for this model; see the permutation importance above.")
    return ("Model", lines)


def sections(metadata: Mapping[str, Any]) -> list[Section]:
    """(title, lines) pairs; each line is plain text that may contain `code` spans."""
    warnings = [f"Leakage warning: {w}" for w in metadata.get("leakage_warnings") or []]
    shift = metadata.get("mission_shift")
    if shift:
        warnings.append(
            f"Mission shift, measured: trained on {shift['train']}, this model scores ROC-AUC "
            f"{shift['transfer']:.3f} on {shift['test']}, whose own grouped cross-validation on the same "
            f"features scores {shift['own_test']:.3f} "
            f"(a cost of {shift['own_test'] - shift['transfer']:.3f}); "
            f"{shift['train']}'s own scores {shift['own_train']:.3f}."
        )
    versions = ", ".join(f"{k} {v}" for k, v in metadata.get("versions", {}).items())
    return [
        _intended_use(metadata), _data(metadata), _evaluation(metadata), _decision(metadata),
        _model(metadata), ("Limitations", [*warnings, *LIMITATIONS]), ("Versions", [versions]),
    ]  # fmt: skip


def to_markdown(metadata: Mapping[str, Any]) -> str:
    lines = [f"# Model card: run {metadata['run_id']}", "", f"Created {metadata['created']}.", ""]
    for title, items in sections(metadata):
        lines += [f"## {title}", "", *(f"- {item}" for item in items), ""]
    return "\n".join(lines)
