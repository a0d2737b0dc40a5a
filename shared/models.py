"""Turn a validated model choice into a scikit-learn estimator."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.ensemble import (
    AdaBoostClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.tree import DecisionTreeClassifier

from shared.params import validate_params


def _class_weight(p: Mapping[str, Any]) -> str | None:
    return "balanced" if p["balance_classes"] else None


def _hist_gradient_boosting(p: Mapping[str, Any], seed: int, n_jobs: int) -> ClassifierMixin:
    early = {"auto": "auto", "on": True, "off": False}[p["early_stopping"]]
    return HistGradientBoostingClassifier(
        learning_rate=p["learning_rate"],
        max_iter=p["max_iter"],
        max_leaf_nodes=p["max_leaf_nodes"],
        max_depth=p["max_depth"],
        min_samples_leaf=p["min_samples_leaf"],
        l2_regularization=p["l2_regularization"],
        early_stopping=early,
        random_state=seed,
        class_weight=_class_weight(p),
    )


def _random_forest(p: Mapping[str, Any], seed: int, n_jobs: int) -> ClassifierMixin:
    return RandomForestClassifier(
        n_estimators=p["n_estimators"],
        max_depth=p["max_depth"],
        min_samples_split=p["min_samples_split"],
        min_samples_leaf=p["min_samples_leaf"],
        max_features=None if p["max_features"] == "all" else p["max_features"],
        random_state=seed,
        n_jobs=n_jobs,
        class_weight=_class_weight(p),
    )


def _gradient_boosting(p: Mapping[str, Any], seed: int, n_jobs: int) -> ClassifierMixin:
    return GradientBoostingClassifier(
        n_estimators=p["n_estimators"],
        learning_rate=p["learning_rate"],
        max_depth=p["max_depth"],
        subsample=p["subsample"],
        min_samples_leaf=p["min_samples_leaf"],
        random_state=seed,
    )


def _adaboost(p: Mapping[str, Any], seed: int, n_jobs: int) -> ClassifierMixin:
    return AdaBoostClassifier(
        estimator=DecisionTreeClassifier(max_depth=p["max_depth"], random_state=seed),
        n_estimators=p["n_estimators"],
        learning_rate=p["learning_rate"],
        random_state=seed,
    )


def _mlp(p: Mapping[str, Any], seed: int, n_jobs: int) -> ClassifierMixin:
    return MLPClassifier(
        hidden_layer_sizes=tuple(p["hidden_layer_sizes"]),
        activation=p["activation"],
        alpha=p["alpha"],
        learning_rate_init=p["learning_rate_init"],
        max_iter=p["max_iter"],
        early_stopping=True,
        random_state=seed,
    )


def logistic_regression(
    penalty: str,
    C: float,
    l1_ratio: float,
    max_iter: int,
    seed: int,
) -> LogisticRegression:
    """scikit-learn 1.8 deprecated ``penalty``: l1_ratio and C express it. lbfgs is used
    wherever it can be (it is faster); saga handles any L1 share, with a tolerance of 1e-3
    because at the default 1e-4 it takes ~30 s on the KOI table for the same accuracy."""
    if penalty == "none":
        return LogisticRegression(C=np.inf, l1_ratio=0.0, max_iter=max_iter, random_state=seed)
    ratio = {"l2": 0.0, "l1": 1.0, "elasticnet": l1_ratio}[penalty]
    if ratio == 0.0:
        return LogisticRegression(C=C, l1_ratio=0.0, max_iter=max_iter, random_state=seed)
    return LogisticRegression(
        C=C, l1_ratio=ratio, solver="saga", tol=1e-3, max_iter=max_iter, random_state=seed
    )


def _logistic_regression(p: Mapping[str, Any], seed: int, n_jobs: int) -> ClassifierMixin:
    model = logistic_regression(p["penalty"], p["C"], p["l1_ratio"], p["max_iter"], seed)
    return model.set_params(class_weight=_class_weight(p))


#: Families without a class_weight parameter balance classes through per-row sample weights.
SAMPLE_WEIGHTED = ("gradient_boosting", "adaboost", "mlp")


def balancing_weights(family: str, params: Mapping[str, Any], labels: Any) -> Any:
    """Per-row weights for fit when the family balances classes that way, else None."""
    if family not in SAMPLE_WEIGHTED or not validate_params(family, params)["balance_classes"]:
        return None
    from sklearn.utils.class_weight import compute_sample_weight

    return compute_sample_weight("balanced", labels)


_FACTORIES: dict[str, Callable[[Mapping[str, Any], int, int], ClassifierMixin]] = {
    "hist_gradient_boosting": _hist_gradient_boosting,
    "random_forest": _random_forest,
    "gradient_boosting": _gradient_boosting,
    "adaboost": _adaboost,
    "mlp": _mlp,
    "logistic_regression": _logistic_regression,
}


def make_estimator(
    family: str, params: Mapping[str, Any], *, seed: int = 0, n_jobs: int = 1
) -> ClassifierMixin:
    """The estimator for ``family``; params are validated (defaults fill the gaps)."""
    return _FACTORIES[family](validate_params(family, params), seed, n_jobs)
