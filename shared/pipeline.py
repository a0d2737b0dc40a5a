"""One scikit-learn Pipeline per run: preprocessing, optional feature selection, estimator.

The same builder serves evaluation, final training and the functions, so preprocessing is
identical everywhere. Only scikit-learn classes go into the pipeline: a bundle's joblib file
must load with plain scikit-learn, without this package installed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectFromModel
from sklearn.impute import SimpleImputer
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shared.errors import DataError
from shared.models import logistic_regression, make_estimator
from shared.params import family as get_family
from shared.spec import RunSpec

NUMERIC = "numeric"
CATEGORICAL = "categorical"
#: Categories rarer than this share of rows are pooled, so one-hot width stays bounded.
MAX_CATEGORIES = 50


def build_pipeline(spec: RunSpec, column_kinds: Mapping[str, str], *, n_jobs: int = 1) -> Pipeline:
    """The run's pipeline. ``column_kinds`` maps each feature to "numeric" or "categorical"."""
    missing = [f for f in spec.features if f not in column_kinds]
    if missing:
        raise DataError(f"feature columns not in the data: {', '.join(missing)}")
    numeric = [f for f in spec.features if column_kinds[f] == NUMERIC]
    categorical = [f for f in spec.features if column_kinds[f] != NUMERIC]
    fam = get_family(spec.model.family)

    numeric_steps: list[tuple[str, object]] = [
        # keep_empty_features: an all-missing column stays (as zeros) so feature names line up
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
    ]
    if fam.needs_scaling:
        numeric_steps.append(("scale", StandardScaler()))
    categorical_steps = [
        ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
        (
            "onehot",
            OneHotEncoder(handle_unknown="ignore", max_categories=MAX_CATEGORIES, sparse_output=False),
        ),
    ]
    branches = []
    if numeric:
        branches.append(("num", Pipeline(numeric_steps), numeric))
    if categorical:
        branches.append(("cat", Pipeline(categorical_steps), categorical))
    preprocess = ColumnTransformer(branches, remainder="drop")

    steps: list[tuple[str, object]] = [("preprocess", preprocess)]
    selector = _selector(spec)
    if selector is not None:
        steps.append(("select", selector))
    seed = spec.evaluation.seed
    steps.append(("model", make_estimator(spec.model.family, spec.model.params, seed=seed, n_jobs=n_jobs)))
    return Pipeline(steps)


def _selector(spec: RunSpec) -> SelectFromModel | None:
    method, strength = spec.feature_selection.method, spec.feature_selection.strength
    if method == "none":
        return None
    if method == "l1":  # the penalty itself zeroes coefficients: strength is 1/C
        lr, threshold = logistic_regression("l1", 1.0 / strength, 1.0, 5000, spec.evaluation.seed), 1e-5
    else:  # L2 never zeroes a coefficient: keep those at least `strength` times the mean size
        lr, threshold = logistic_regression("l2", 1.0, 0.0, 5000, spec.evaluation.seed), f"{strength}*mean"
    # A ranker, not the final model: a looser tolerance keeps saga fast with the same ranking.
    lr.set_params(tol=1e-2)
    ranker = Pipeline([("scale", StandardScaler()), ("lr", lr)])
    return SelectFromModel(ranker, threshold=threshold, importance_getter="named_steps.lr.coef_")


def with_threshold(pipe: Pipeline, threshold: float | None, positive: str | None) -> Any:
    """The fitted pipeline, predicting the positive class from ``threshold`` on if one is set."""
    if threshold is None:
        return pipe
    return FixedThresholdClassifier(
        pipe, threshold=threshold, pos_label=positive, response_method="predict_proba"
    )


def model_inputs(pipe: Any) -> tuple[list[str], list[str]]:
    """The model's input columns after preprocessing, before and after selection: names such as
    'koi_period' or 'koi_tce_delivname_q1_q17_dr25_tce' for a one-hot column."""
    if isinstance(pipe, FixedThresholdClassifier):
        pipe = pipe.estimator
    if isinstance(pipe, CalibratedClassifierCV):  # the first calibrated copy's fitted pipeline
        pipe = pipe.calibrated_classifiers_[0].estimator
    names = [
        n.split("__", 1)[1] if "__" in n else n
        for n in pipe.named_steps["preprocess"].get_feature_names_out()
    ]
    if "select" not in pipe.named_steps:
        return names, names
    mask = pipe.named_steps["select"].get_support()
    return names, [n for n, keep in zip(names, mask, strict=True) if keep]


def kept_features(pipe: Any) -> list[str]:
    """Names of the model's input columns after preprocessing and selection."""
    return model_inputs(pipe)[1]


def check_columns(frame: pd.DataFrame, features: Sequence[str]) -> None:
    """Missing feature columns are an error naming them; extra columns are fine (ignored)."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise DataError(f"missing feature columns: {', '.join(missing)}")


def fit_pipeline(
    pipe: Pipeline, features: pd.DataFrame, labels: pd.Series, sample_weight: Any = None
) -> list[str]:
    """Fit and return notes for the researcher; DataError if selection kept no feature."""
    fit_params = {} if sample_weight is None else {"model__sample_weight": sample_weight}
    with fit_notes() as notes:
        try:
            pipe.fit(features, labels, **fit_params)
        except ValueError as error:
            if "select" in pipe.named_steps and "0 feature(s)" in str(error):
                raise DataError("feature selection kept no features; lower its strength") from None
            raise
    return notes


@contextmanager
def fit_notes() -> Iterator[list[str]]:
    """Collect convergence warnings raised while fitting as notes for the researcher.

    They say something true about the model (it stopped at its iteration limit), so they are
    reported with the run instead of being raised or silenced.
    """
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # record everything; only convergence becomes a note
        yield notes
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            text = str(warning.message).split("\n")[0]
            if text not in notes:
                notes.append(text)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
