"""Honest evaluation: stratified (and grouped) splits, out-of-fold predictions, metrics.

Labels are handled as text everywhere, so classes such as "FALSE POSITIVE" just work.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.calibration import CalibratedClassifierCV
from sklearn.inspection import permutation_importance
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    ShuffleSplit,
    StratifiedKFold,
    StratifiedShuffleSplit,
)

from shared.errors import DataError
from shared.folds import FastStratifiedGroupKFold
from shared.labels import apply_mapping, labels_as_text
from shared.models import balancing_weights
from shared.pipeline import build_pipeline, check_columns, fit_notes, fit_pipeline, model_inputs
from shared.spec import EvaluationPlan, RunSpec
from shared.thresholds import predicted_classes

MAX_CLASSES = 50
Progress = Callable[[str, float], None]


def _no_progress(message: str, fraction: float) -> None:
    pass


@dataclass(frozen=True)
class Prepared:
    """The rows a run trains on: features, text labels and optional groups."""

    features: pd.DataFrame
    labels: pd.Series
    groups: pd.Series | None
    classes: list[str]
    positive_class: str | None  # binary problems only
    dropped_rows: int  # missing target or a class the label mapping drops


def prepare(frame: pd.DataFrame, spec: RunSpec) -> Prepared:
    """Select the spec's columns, apply the label mapping and check the target is usable."""
    needed = [spec.target, *spec.features] + ([spec.group_column] if spec.group_column else [])
    check_columns(frame, needed)
    labels = apply_mapping(labels_as_text(frame[spec.target]), spec.label_mapping)
    keep = labels.notna().to_numpy()
    labels = labels[keep].astype(str)
    classes = sorted(labels.unique().tolist())
    if len(classes) < 2:
        found = f"only the class {classes[0]!r}" if classes else "no labelled rows"
        raise DataError(
            f"target {spec.target!r} has {found} after label mapping; "
            "classification needs at least two classes"
        )
    if len(classes) > MAX_CLASSES:
        raise DataError(
            f"target {spec.target!r} has {len(classes)} classes (at most {MAX_CLASSES}); "
            "is it an identifier or a continuous measurement?"
        )
    positive = None
    if len(classes) == 2:
        positive = spec.positive_class or classes[-1]
        if positive not in classes:
            raise DataError(
                f"positive class {positive!r} is not a class of {spec.target!r}; "
                f"classes are {', '.join(map(repr, classes))}"
            )
    if spec.threshold is not None and positive is None:
        raise DataError(f"a decision threshold needs two classes; {spec.target!r} has {len(classes)}")
    groups = None
    if spec.group_column:
        raw = frame.loc[keep, spec.group_column]
        # a row without a group is its own group
        groups = labels_as_text(raw).fillna(
            pd.Series([f"\0row{i}" for i in range(len(raw))], index=raw.index)
        )
    features = frame.loc[keep, list(spec.features)]
    return Prepared(
        features.reset_index(drop=True),
        labels.reset_index(drop=True),
        None if groups is None else groups.reset_index(drop=True),
        classes,
        positive,
        int((~keep).sum()),
    )


def splits(data: Prepared, plan: EvaluationPlan) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/test index pairs per the plan; grouped whenever the data has groups."""
    y, groups, seed = data.labels.to_numpy(), data.groups, plan.seed
    n = plan.folds if plan.method == "kfold" else max(2, round(1 / plan.test_size))
    _check_split_sizes(data, plan, n)
    if groups is not None:
        g = groups.to_numpy()
        if plan.method == "kfold":
            splitter = (
                FastStratifiedGroupKFold(n, shuffle=True, random_state=seed)
                if plan.stratified
                else GroupKFold(n, shuffle=True, random_state=seed)
            )
            return list(splitter.split(data.features, y, g))
        if plan.stratified:  # one fold of a stratified grouped k-fold is the closest grouped holdout
            return [
                next(FastStratifiedGroupKFold(n, shuffle=True, random_state=seed).split(data.features, y, g))
            ]
        return list(
            GroupShuffleSplit(1, test_size=plan.test_size, random_state=seed).split(data.features, y, g)
        )
    if plan.method == "kfold":
        splitter = (
            StratifiedKFold(n, shuffle=True, random_state=seed)
            if plan.stratified
            else KFold(n, shuffle=True, random_state=seed)
        )
        return list(splitter.split(data.features, y))
    cls = StratifiedShuffleSplit if plan.stratified else ShuffleSplit
    return list(cls(1, test_size=plan.test_size, random_state=seed).split(data.features, y))


def _check_split_sizes(data: Prepared, plan: EvaluationPlan, n: int) -> None:
    if plan.stratified:
        counts = data.labels.value_counts()
        need = n if plan.method == "kfold" else 2
        rare = counts[counts < need]
        if len(rare):
            listed = ", ".join(f"{c!r} ({k} rows)" for c, k in rare.items())
            raise DataError(
                f"too few rows in class {listed} for a stratified {_describe(plan)}: "
                f"each class needs at least {need}; merge or drop it in the label setup"
            )
    if data.groups is not None and data.groups.nunique() < n:
        raise DataError(
            f"group column {data.groups.name!r} has only {data.groups.nunique()} groups for a grouped "
            f"{_describe(plan)}; need at least {n}, or group by another column"
        )


def _describe(plan: EvaluationPlan) -> str:
    if plan.method == "kfold":
        return f"{plan.folds}-fold cross-validation"
    return f"holdout of {plan.test_size:.0%}"


# --- metrics ---------------------------------------------------------------------------------


def fold_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, classes: list[str], positive: str | None
) -> dict[str, float]:
    """Metrics for one test set. ``proba`` has one column per class, in ``classes`` order."""
    out = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "balanced_accuracy": _balanced_accuracy(y_true, y_pred),
        "log_loss": skm.log_loss(y_true, np.clip(proba, 1e-15, 1), labels=classes),
    }
    present = [c for c in classes if c in set(y_true)]
    if positive is not None:
        pos = classes.index(positive)
        out["precision"] = skm.precision_score(y_true, y_pred, pos_label=positive, zero_division=0)
        out["recall"] = skm.recall_score(y_true, y_pred, pos_label=positive, zero_division=0)
        out["f1"] = skm.f1_score(y_true, y_pred, pos_label=positive, zero_division=0)
        has_both = len(present) == 2
        out["roc_auc"] = skm.roc_auc_score(y_true == positive, proba[:, pos]) if has_both else math.nan
        out["pr_auc"] = (
            skm.average_precision_score(y_true == positive, proba[:, pos]) if has_both else math.nan
        )
    else:
        for average in ("macro", "weighted"):
            out[f"precision_{average}"] = skm.precision_score(
                y_true, y_pred, labels=classes, average=average, zero_division=0
            )
            out[f"recall_{average}"] = skm.recall_score(
                y_true, y_pred, labels=classes, average=average, zero_division=0
            )
            out[f"f1_{average}"] = skm.f1_score(
                y_true, y_pred, labels=classes, average=average, zero_division=0
            )
        complete = len(present) == len(classes)
        out["roc_auc"] = (
            skm.roc_auc_score(y_true, proba, labels=classes, multi_class="ovr", average="macro")
            if complete
            else math.nan
        )
        out["pr_auc"] = float(
            np.mean(
                [
                    skm.average_precision_score(y_true == c, proba[:, i])
                    for i, c in enumerate(classes)
                    if c in present
                ]
            )
        )
    return {k: float(v) for k, v in out.items()}


def _baseline_predictions(
    train_labels: np.ndarray, n_test: int, classes: list[str], seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Predictions of two models that learned nothing but the training split's class shares:
    (predicted classes, probabilities) for a test split of ``n_test`` rows."""
    counts = np.array([np.sum(train_labels == c) for c in classes], dtype=float)
    shares = counts / counts.sum()
    proba = np.tile(shares, (n_test, 1))
    majority = np.full(n_test, classes[int(np.argmax(counts))], dtype=object)
    rng = np.random.default_rng(seed)
    drawn = np.asarray(classes, dtype=object)[rng.choice(len(classes), size=n_test, p=shares)]
    return {"majority": (majority, proba), "random": (drawn, proba)}


def _kept_summary(counts: list[tuple[int, int]], spec: RunSpec) -> dict[str, Any] | None:
    """How many model inputs L1/L2 selection kept per split, out of how many."""
    if not counts:
        return None
    kept = [k for k, _ in counts]
    return {
        "method": spec.feature_selection.method,
        "mean": float(np.mean(kept)),
        "min": min(kept),
        "max": max(kept),
        "of": max(total for _, total in counts),
        "folds": kept,
    }


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    # mean recall over the classes present in this test set (scikit-learn warns otherwise)
    labels = sorted(set(y_true))
    return float(np.mean(skm.recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)))


def summarize(per_fold: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Mean and standard deviation across folds (NaN folds left out); std is None for one split."""
    summary: dict[str, dict[str, Any]] = {}
    for name in per_fold[0]:
        values = np.array([fold[name] for fold in per_fold], dtype=float)
        finite = values[~np.isnan(values)]
        summary[name] = {
            "mean": float(finite.mean()) if len(finite) else None,
            "std": float(finite.std(ddof=1)) if len(finite) > 1 else None,
            "folds": [None if math.isnan(v) else float(v) for v in values],
        }
    return summary


@dataclass
class EvaluationResult:
    protocol: dict[str, Any]
    classes: list[str]
    positive_class: str | None
    metrics: dict[str, dict[str, Any]]
    confusion_matrix: list[list[int]]
    out_of_fold: pd.DataFrame
    rows: int
    dropped_rows: int
    notes: list[str] = field(default_factory=list)
    leakage_warnings: list[str] = field(default_factory=list)  # shown on every metric view
    curves: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    importance: list[dict[str, Any]] = field(default_factory=list)  # permutation, held-out splits
    calibration: dict[str, Any] | None = None  # Brier score and reliability, before and after
    # what a model that learned nothing scores on the same splits: always the training split's
    # majority class (probabilities: its class shares), and a random class drawn by those shares
    baselines: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # L1/L2 selection: how many model inputs each split's fit kept (None without selection)
    kept_inputs: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)  # fit_s, predict_s over all splits

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (out-of-fold predictions are stored separately)."""
        return {
            "protocol": self.protocol,
            "classes": self.classes,
            "positive_class": self.positive_class,
            "metrics": self.metrics,
            "confusion_matrix": {"labels": self.classes, "matrix": self.confusion_matrix},
            "rows": self.rows,
            "dropped_rows": self.dropped_rows,
            "notes": self.notes,
            "leakage_warnings": self.leakage_warnings,
            "curves": self.curves,
            "importance": self.importance,
            "calibration": self.calibration,
            "baselines": self.baselines,
            "kept_inputs": self.kept_inputs,
            "timings": self.timings,
        }


def evaluate(
    frame: pd.DataFrame,
    spec: RunSpec,
    column_kinds: Mapping[str, str],
    *,
    n_jobs: int = 1,
    progress: Progress = _no_progress,
    leakage_warnings: Sequence[str] = (),
    importance_repeats: int = 0,
    on_metrics: Callable[[EvaluationResult], None] | None = None,
) -> EvaluationResult:
    """Fit on each training split, predict its test split; metrics per split and overall.

    ``leakage_warnings`` (from ``shared.columns.leakage_warnings``) travel with the metrics.
    With ``importance_repeats``, permutation importance is measured on every held-out split,
    after the metrics: ``on_metrics(result)`` gets them first (to show them while it runs).
    """
    data = prepare(frame, spec)
    progress(f"Loaded {len(data.labels):,} rows × {len(spec.features)} features", 0.05)
    folds = splits(data, spec.evaluation)
    y = data.labels.to_numpy()
    proba_oof = np.full((len(y), len(data.classes)), np.nan)
    raw_oof = np.full((len(y), len(data.classes)), np.nan)
    pred_oof = np.empty(len(y), dtype=object)
    fold_of = np.full(len(y), -1)
    per_fold, notes, fitted, kept_counts = [], [], [], []
    fit_s = predict_s = 0.0  # seconds fitting and predicting, summed over the splits
    baseline_folds: dict[str, list[dict[str, float]]] = {}
    for number, (train, test) in enumerate(folds, start=1):
        train_x, train_y, test_x = (
            data.features.iloc[train],
            data.labels.iloc[train],
            data.features.iloc[test],
        )
        started = time.perf_counter()
        pipe, fold_notes = fit_model(spec, column_kinds, train_x, train_y, n_jobs)
        fitted_at = time.perf_counter()
        notes += [note for note in fold_notes if note not in notes]
        proba = _aligned_proba(pipe, test_x, data.classes)
        fit_s += fitted_at - started
        predict_s += time.perf_counter() - fitted_at
        if spec.calibration != "none":  # the same model without calibration, for "before"
            raw_spec = spec.replace(calibration="none")
            raw_model, _ = fit_model(raw_spec, column_kinds, train_x, train_y, n_jobs)
            raw_oof[test] = _aligned_proba(raw_model, test_x, data.classes)
        if importance_repeats:
            fitted.append((pipe, test))
        pred = predicted_classes(proba, data.classes, data.positive_class)
        if spec.feature_selection.method != "none":
            inputs, kept = model_inputs(pipe)
            kept_counts.append((len(kept), len(inputs)))
        proba_oof[test], pred_oof[test], fold_of[test] = proba, pred, number
        per_fold.append(fold_metrics(y[test], pred, proba, data.classes, data.positive_class))
        for name, (base_pred, base_proba) in _baseline_predictions(
            y[train], len(test), data.classes, seed=number
        ).items():
            baseline_folds.setdefault(name, []).append(
                fold_metrics(y[test], base_pred, base_proba, data.classes, data.positive_class)
            )
        headline = per_fold[-1]["roc_auc"]
        score = (
            f"ROC-AUC {headline:.3f}"
            if not math.isnan(headline)
            else f"accuracy {per_fold[-1]['accuracy']:.3f}"
        )
        share = 0.45 if importance_repeats else 0.9  # importance takes about as long again
        progress(f"Fold {number}/{len(folds)}: {score}", 0.05 + share * number / len(folds))
    tested = fold_of > 0
    matrix = skm.confusion_matrix(y[tested], pred_oof[tested], labels=data.classes)
    oof = pd.DataFrame(
        {
            "row": np.flatnonzero(tested),
            "fold": fold_of[tested],
            "true": y[tested],
            "predicted": pred_oof[tested],
        }
    )
    for i, c in enumerate(data.classes):
        oof[f"proba_{c}"] = proba_oof[tested, i]
    protocol = {
        "method": spec.evaluation.method,
        "splits": len(folds),
        "stratified": spec.evaluation.stratified,
        "grouped_by": spec.group_column,
        "seed": spec.evaluation.seed,
        "test_size": spec.evaluation.test_size if spec.evaluation.method == "holdout" else None,
    }
    result = EvaluationResult(
        protocol,
        data.classes,
        data.positive_class,
        summarize(per_fold),
        matrix.tolist(),
        oof,
        len(y),
        data.dropped_rows,
        notes,
        list(leakage_warnings),
        curves(oof, data.classes, data.positive_class),
        [],
        calibration_report(
            spec.calibration, y[tested], raw_oof[tested], proba_oof[tested], data.classes, data.positive_class
        ),
        {name: summarize(folds_) for name, folds_ in baseline_folds.items()},
        _kept_summary(kept_counts, spec),
        {"fit_s": fit_s, "predict_s": predict_s},
    )
    if not fitted:
        return result
    if on_metrics is not None:
        on_metrics(result)
    importances = []
    for number, (pipe, test) in enumerate(fitted, start=1):
        progress(f"Feature importance: split {number}/{len(fitted)}", 0.5 + 0.45 * number / len(fitted))
        importances.append(
            _held_out_importance(
                pipe,
                data.features.iloc[test],
                y[test],
                data.positive_class,
                importance_repeats,
                spec.evaluation.seed,
            )
        )
    return replace(result, importance=_summarize_importance(importances, list(spec.features)))


def _held_out_importance(
    pipe: Any, features: pd.DataFrame, truth: np.ndarray, positive: str | None, repeats: int, seed: int
) -> np.ndarray:
    """Drop in score when each column is shuffled in a split the model never saw:
    ROC-AUC for a binary problem, balanced accuracy otherwise. Shape: columns x repeats."""

    def auc_of_positive(estimator: Any, x: pd.DataFrame, y: np.ndarray) -> float:
        column = list(estimator.classes_).index(positive)
        return float(skm.roc_auc_score(y == positive, estimator.predict_proba(x)[:, column]))

    scoring = auc_of_positive if positive is not None else "balanced_accuracy"
    if positive is not None and len(set(truth)) < 2:
        return np.full((features.shape[1], repeats), np.nan)
    result = permutation_importance(
        pipe, features, truth, scoring=scoring, n_repeats=repeats, random_state=seed, n_jobs=1
    )
    return result.importances


def _summarize_importance(per_fold: list[np.ndarray], names: list[str]) -> list[dict[str, Any]]:
    if not per_fold:
        return []
    values = np.concatenate(per_fold, axis=1)
    means, stds = np.nanmean(values, axis=1), np.nanstd(values, axis=1)
    order = np.argsort(-means)
    return [{"feature": names[i], "mean": float(means[i]), "std": float(stds[i])} for i in order]


def calibration_report(
    method: str,
    truth: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    classes: list[str],
    positive: str | None,
    bins: int = 10,
) -> dict[str, Any] | None:
    """Brier score before and after calibration and, for two classes, the reliability curves."""
    if method == "none":
        return None
    onehot = (truth[:, None] == np.asarray(classes)[None, :]).astype(float)

    def brier(proba: np.ndarray) -> float:  # the usual one for two classes, summed over classes otherwise
        if positive is not None:
            column = classes.index(positive)
            return float(np.mean((proba[:, column] - onehot[:, column]) ** 2))
        return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))

    report: dict[str, Any] = {"method": method, "brier_before": brier(before), "brier_after": brier(after)}
    if positive is not None:
        column, is_positive = classes.index(positive), truth == positive
        for name, proba in (("before", before), ("after", after)):
            edges = np.minimum((proba[:, column] * bins).astype(int), bins - 1)
            points = [
                [
                    float(proba[edges == b, column].mean()),
                    float(is_positive[edges == b].mean()),
                    int((edges == b).sum()),
                ]
                for b in range(bins)
                if (edges == b).any()
            ]
            report[f"reliability_{name}"] = points
    return report


MAX_CURVE_POINTS = 150


def curves(oof: pd.DataFrame, classes: list[str], positive: str | None) -> dict[str, list[dict[str, Any]]]:
    """ROC and precision-recall curves from out-of-fold probabilities, a few points each:
    the positive class for a binary problem, each class against the rest otherwise."""
    out: dict[str, list[dict[str, Any]]] = {"roc": [], "pr": []}
    truth = oof["true"].to_numpy()
    for label in [positive] if positive is not None else classes:
        is_class = truth == label
        if is_class.all() or not is_class.any():
            continue
        scores = oof[f"proba_{label}"].to_numpy()
        fpr, tpr, _ = skm.roc_curve(is_class, scores)
        precision, recall, _ = skm.precision_recall_curve(is_class, scores)
        out["roc"].append(
            {
                "label": label,
                "x": _thin(fpr),
                "y": _thin(tpr),
                "area": float(skm.roc_auc_score(is_class, scores)),
            }
        )
        out["pr"].append(
            {
                "label": label,
                "x": _thin(recall[::-1]),
                "y": _thin(precision[::-1]),
                "area": float(skm.average_precision_score(is_class, scores)),
                "base": float(is_class.mean()),
            }
        )
    return out


def _thin(values: np.ndarray) -> list[float]:
    if len(values) > MAX_CURVE_POINTS:
        values = values[np.unique(np.linspace(0, len(values) - 1, MAX_CURVE_POINTS).round().astype(int))]
    return [round(float(v), 4) for v in values]


def _aligned_proba(pipe: Any, features: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """predict_proba with one column per class of the whole run, even if a training split
    lacked a class (its probability is then 0)."""
    proba = pipe.predict_proba(features)
    fitted = list(pipe.classes_)
    if fitted == classes:
        return proba
    out = np.zeros((len(features), len(classes)))
    for j, c in enumerate(fitted):
        out[:, classes.index(c)] = proba[:, j]
    return out


def fit_model(
    spec: RunSpec, column_kinds: Mapping[str, str], features: pd.DataFrame, labels: pd.Series, n_jobs: int
) -> tuple[Any, list[str]]:
    """The run's pipeline fitted on these rows, calibrated if the spec asks (Pipeline or
    CalibratedClassifierCV around it); with the fit's notes."""
    weights = balancing_weights(spec.model.family, spec.model.params, labels)
    if spec.calibration == "none":
        pipe = build_pipeline(spec, column_kinds, n_jobs=n_jobs)
        return pipe, fit_pipeline(pipe, features, labels, weights)
    if weights is not None:
        raise DataError(
            f"balancing classes with per-row weights ({spec.model.family}) cannot be combined with "
            "calibration; turn one of them off"
        )
    model = CalibratedClassifierCV(
        build_pipeline(spec, column_kinds, n_jobs=n_jobs), method=spec.calibration, cv=3
    )
    with fit_notes() as notes:
        model.fit(features, labels)
    return model, notes


def train_final(
    frame: pd.DataFrame, spec: RunSpec, column_kinds: Mapping[str, str], *, n_jobs: int = 1
) -> tuple[Any, Prepared, list[str]]:
    """Fit the run's pipeline on every labelled row."""
    data = prepare(frame, spec)
    model, notes = fit_model(spec, column_kinds, data.features, data.labels, n_jobs)
    return model, data, notes
