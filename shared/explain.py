"""Per-row explanations: how much each feature moved one prediction.

Tree models (histogram gradient boosting, random forest, two-class gradient boosting) use
SHAP's TreeExplainer: exact Shapley values of the trees, in the trees' own units (log-odds for
boosting, probability for forests). Logistic regression uses its exact linear decomposition,
coefficient * (value - training mean), in log-odds: what SHAP's linear explainer computes with
independent features. Other families (AdaBoost, neural network, multi-class gradient boosting)
and calibrated models get no per-row explanation; permutation importance describes them.

Contributions of one-hot columns are summed back to their feature, so every feature the user
chose appears once and the contributions still add up to the model's output minus the base.
"""

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

SUMMARY_ROWS = 1000
SUMMARY_MIN_ROWS = 50
# TreeSHAP costs about rows x (leaves x depth, summed over the trees): 2.5e-8 s per unit here,
# for forests and boosting alike. The summary explains as many rows as fit in this budget (about
# 5 s here): 1,000 for boosting, ~130 for a 60-tree forest, the floor for a 300-tree forest.
SUMMARY_BUDGET = 2e8
SUMMARY_BATCH = 25  # rows explained per call, so the job's heartbeat and progress run between
TOP_CONTRIBUTIONS = 8
UNITS = {"log_odds": "log-odds", "probability": "probability", "raw_value": "raw score"}


@dataclass
class Explainer:
    preprocess: Any  # the pipeline before the model: imputation, scaling, one-hot, selection
    explain_transformed: Any  # transformed rows -> (rows, columns, classes) contributions
    base: np.ndarray  # per class
    groups: list[str]  # the chosen feature each transformed column belongs to
    features: list[str]
    units: str
    method: str


def unavailable_reason(model: Any) -> str | None:
    """Why this model gets no per-row explanation, or None if it does."""
    try:
        estimator = _pipeline_of(model)[-1]
        if type(estimator).__name__ != "LogisticRegression":
            _check_tree(estimator)
    except _NotExplainable as reason:
        return str(reason)
    return None


class _NotExplainable(Exception):
    pass


def _pipeline_of(model: Any) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import FixedThresholdClassifier

    if isinstance(model, FixedThresholdClassifier):  # wraps the already fitted pipeline
        model = model.estimator_ if hasattr(model, "estimator_") else model.estimator
    if isinstance(model, CalibratedClassifierCV):
        raise _NotExplainable(
            "calibrated models are not explained per row: the calibration averages three fold "
            "models, so no single set of contributions adds up to the calibrated probability"
        )
    return model


def _groups(preprocess: Any, features: list[str]) -> list[str]:
    """Map each transformed column name (``num__x``, ``cat__colour_red``) to its feature."""
    by_length = sorted(features, key=len, reverse=True)
    groups = []
    for name in preprocess.get_feature_names_out():
        branch, _, rest = str(name).partition("__")
        if branch == "num":
            groups.append(rest)
            continue
        groups.append(next(f for f in by_length if rest == f or rest.startswith(f + "_")))
    return groups


def _explainer(model: Any, background: np.ndarray | None) -> Explainer:
    from sklearn.linear_model import LogisticRegression

    pipe = _pipeline_of(model)
    estimator, preprocess = pipe[-1], pipe[:-1]
    features = list(pipe.feature_names_in_)
    if isinstance(estimator, LogisticRegression):
        if background is None:
            raise _NotExplainable("this bundle lacks the training mean a linear explanation needs")
        mean = background.mean(axis=0)
        coef = estimator.coef_  # (1 or classes, columns)

        def linear(rows: np.ndarray) -> np.ndarray:
            return np.einsum("kc,rc->rck", coef, rows - mean)

        base = estimator.decision_function(mean[None, :]).reshape(-1)
        groups = _groups(preprocess, features)
        return Explainer(preprocess, linear, base, groups, features, UNITS["log_odds"], "linear")
    explainer = _tree_explainer(estimator)
    groups = _groups(preprocess, features)

    def tree(rows: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = np.asarray(explainer.shap_values(rows, check_additivity=False))
        return values if values.ndim == 3 else values[:, :, None]

    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    units = UNITS.get(explainer.model.tree_output, explainer.model.tree_output)
    return Explainer(preprocess, tree, base, groups, features, units, "tree_shap")


TREE_MODELS = ("HistGradientBoostingClassifier", "RandomForestClassifier", "GradientBoostingClassifier")


def _check_tree(estimator: Any) -> None:
    name = type(estimator).__name__
    if name not in TREE_MODELS:
        raise _NotExplainable(f"SHAP's tree explainer does not support {name}; see permutation importance")
    if name == "GradientBoostingClassifier" and len(estimator.classes_) > 2:
        raise _NotExplainable(
            "SHAP explains gradient boosting for two classes only; see permutation importance"
        )


def _tree_explainer(estimator: Any) -> Any:
    _check_tree(estimator)
    with warnings.catch_warnings():  # shap's import touches deprecated matplotlib colormap APIs
        warnings.simplefilter("ignore")
        import shap

        try:
            return shap.TreeExplainer(estimator)
        except Exception as error:  # shap.utils._exceptions.InvalidModelError and friends
            raise _NotExplainable(f"SHAP's tree explainer cannot explain this model: {error}") from None


def _class_column(values: np.ndarray, classes: list[str], target_class: str) -> int:
    """Which output of the explainer belongs to ``target_class``. One output (boosting,
    logistic regression with two classes) is the last class's score."""
    if values.shape[2] == 1:
        return -1 if target_class == classes[-1] else 0
    return classes.index(target_class)


def contributions(
    model: Any,
    rows: pd.DataFrame,
    classes: list[str],
    target_classes: list[str],
    background: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """For each row, every feature's contribution to ``target_classes[i]``'s score, largest first.
    Raises ValueError with the reason when the model is not explainable."""
    try:
        explainer = _explainer(model, _stored_mean(background))
    except _NotExplainable as reason:
        raise ValueError(str(reason)) from None
    transformed = np.asarray(explainer.preprocess.transform(rows), dtype=float)
    values = explainer.explain_transformed(transformed)
    per_feature = _sum_groups(values, explainer.groups, explainer.features)
    out = []
    for i, target in enumerate(target_classes):
        k = _class_column(values, classes, target)
        sign = -1.0 if values.shape[2] == 1 and target != classes[-1] else 1.0
        row = [
            {
                "feature": f,
                "value": _plain(rows.iloc[i][f]),
                "contribution": sign * float(per_feature[i, j, k]),
            }
            for j, f in enumerate(explainer.features)
        ]
        row.sort(key=lambda c: -abs(c["contribution"]))
        base = float(explainer.base[k if explainer.base.size > 1 else 0]) * sign
        out.append({"class": target, "base": base, "contributions": row})
    return out, explainer.units


def _sum_groups(values: np.ndarray, groups: list[str], features: list[str]) -> np.ndarray:
    out = np.zeros((values.shape[0], len(features), values.shape[2]))
    index = {f: j for j, f in enumerate(features)}
    for column, feature in enumerate(groups):
        out[:, index[feature], :] += values[:, column, :]
    return out


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return value.item() if isinstance(value, np.generic) else value


def _stored_mean(background: Mapping[str, Any] | None) -> np.ndarray | None:
    """The bundle's transformed training mean (linear models only), as one background row."""
    return None if background is None else np.asarray([background["mean"]], dtype=float)


def summary_rows(model: Any, available: int) -> int:
    """How many rows the summary explains: all up to SUMMARY_ROWS for cheap models, fewer (never
    under SUMMARY_MIN_ROWS) where TreeSHAP's cost per row would exceed SUMMARY_BUDGET. It
    depends on the model alone, so the same model always gets the same summary."""
    estimator = _pipeline_of(model)[-1]
    if hasattr(estimator, "_predictors"):  # histogram gradient boosting
        trees = [(p.get_n_leaf_nodes(), p.get_max_depth()) for it in estimator._predictors for p in it]
    elif hasattr(estimator, "estimators_"):  # forests and gradient boosting
        trees = [(t.tree_.n_leaves, t.tree_.max_depth) for t in np.ravel(estimator.estimators_)]
    else:  # linear: a matrix product
        trees = []
    cost = sum(leaves * max(depth, 1) for leaves, depth in trees)
    rows = SUMMARY_ROWS if cost == 0 else int(SUMMARY_BUDGET // cost)
    return min(available, max(SUMMARY_MIN_ROWS, min(SUMMARY_ROWS, rows)))


def summary(
    model: Any,
    features: pd.DataFrame,
    classes: list[str],
    positive: str | None,
    seed: int,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> dict[str, Any] | None:
    """Global view at training time: mean |contribution| per feature over a sample of rows
    (``summary_rows``), for the positive class (two classes) or summed over classes; plus what
    single-row explanations need later (the linear model's training mean). None if not
    explainable. ``progress(rows done, rows)`` is called between batches of rows."""
    if unavailable_reason(model) is not None:
        return None
    sample = features.sample(summary_rows(model, len(features)), random_state=seed)
    pipe = _pipeline_of(model)
    linear = type(pipe[-1]).__name__ == "LogisticRegression"
    # only a linear explanation needs the training mean (trees carry their own background)
    mean = np.asarray(pipe[:-1].transform(features), dtype=float).mean(axis=0) if linear else None
    explainer = _explainer(model, None if mean is None else mean[None, :])
    transformed = np.asarray(explainer.preprocess.transform(sample), dtype=float)
    parts = []
    for start in range(0, len(transformed), SUMMARY_BATCH):
        parts.append(explainer.explain_transformed(transformed[start : start + SUMMARY_BATCH]))
        progress(min(start + SUMMARY_BATCH, len(transformed)), len(transformed))
    values = np.concatenate(parts)
    per_feature = np.abs(_sum_groups(values, explainer.groups, explainer.features))
    if positive is not None:
        magnitude = per_feature[:, :, _class_column(values, classes, positive)].mean(axis=0)
    else:
        magnitude = per_feature.mean(axis=0).sum(axis=1)
    order = np.argsort(-magnitude)
    return {
        "method": explainer.method,
        "units": explainer.units,
        "rows": len(sample),
        "class": positive,
        "features": [{"feature": explainer.features[i], "mean_abs": float(magnitude[i])} for i in order],
        "background": {"mean": mean.tolist()} if mean is not None else None,
    }
