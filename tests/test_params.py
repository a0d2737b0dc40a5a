"""The hyperparameter schema: form strings validate with messages naming the parameter."""

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from shared.errors import SpecError
from shared.params import BOOL, CHOICE, FAMILIES, FLOAT, INT, INT_LIST, parse_value, validate_params
from shared.pipeline import build_pipeline, fit_pipeline
from shared.spec import RunSpec


@pytest.mark.parametrize(
    ("family", "raw", "match"),
    [
        (
            "random_forest",
            {"n_estimators": "abc"},
            r"n_estimators: 'abc' is not allowed; expected a whole number from 1 to 2,000",
        ),
        (
            "random_forest",
            {"n_estimators": "0"},
            r"n_estimators: '0' is out of range; expected a whole number from 1 to 2,000",
        ),
        ("random_forest", {"n_estimators": "2.5"}, r"n_estimators: '2.5' is not allowed"),
        ("random_forest", {"n_estimators": "-3"}, r"n_estimators: '-3' is out of range"),
        (
            "hist_gradient_boosting",
            {"learning_rate": "-1"},
            r"learning_rate: '-1' is out of range; expected a number from 0.001 to 1",
        ),
        ("hist_gradient_boosting", {"learning_rate": "nan"}, r"learning_rate: 'nan' is not allowed"),
        ("hist_gradient_boosting", {"learning_rate": "inf"}, r"learning_rate: 'inf' is not allowed"),
        ("hist_gradient_boosting", {"learning_rate": ""}, r"learning_rate: '' is not allowed"),
        ("hist_gradient_boosting", {"learning_rate": True}, r"learning_rate: True is not allowed"),
        (
            "hist_gradient_boosting",
            {"early_stopping": "maybe"},
            r"early_stopping: 'maybe' is not allowed; expected one of 'auto', 'on', 'off'",
        ),
        (
            "random_forest",
            {"max_features": "auto"},
            r"max_features: 'auto' is not allowed; expected one of 'sqrt', 'log2', 'all'",
        ),
        ("logistic_regression", {"penalty": "l3"}, r"penalty: 'l3' is not allowed"),
        (
            "logistic_regression",
            {"C": "0"},
            r"C: '0' is out of range; expected a number from 0.0001 to 10,000",
        ),
        (
            "mlp",
            {"hidden_layer_sizes": "64,abc"},
            r"hidden_layer_sizes: '64,abc' is not allowed; expected 1 to 4 whole numbers",
        ),
        ("mlp", {"hidden_layer_sizes": "8,8,8,8,8"}, r"hidden_layer_sizes: '8,8,8,8,8' is not allowed"),
        ("mlp", {"hidden_layer_sizes": "0"}, r"hidden_layer_sizes: '0' is not allowed"),
        ("mlp", {"hidden_layer_sizes": ""}, r"hidden_layer_sizes: '' is not allowed"),
        ("adaboost", {"algorithm": "SAMME.R"}, r"algorithm: unknown parameter for AdaBoost"),
        (
            "gradient_boosting",
            {"subsample": "1.5"},
            r"subsample: '1.5' is out of range; expected a number from 0.1 to 1",
        ),
        ("gradient_boosting", {"max_depth": "none"}, r"max_depth: 'none' is not allowed"),
        ("no_such_model", {}, r"model.family: unknown model family 'no_such_model'"),
    ],
)
def test_bad_values_name_the_parameter_and_range(family, raw, match):
    with pytest.raises(SpecError, match=match):
        validate_params(family, raw)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SpecError) as caught:
        validate_params("random_forest", {"n_estimators": "0", "max_depth": "x", "bogus": 1})
    assert len(caught.value.problems) == 3


@pytest.mark.parametrize(
    ("family", "raw", "expected"),
    [
        (
            "random_forest",
            {"n_estimators": " 500 ", "max_depth": ""},
            {"n_estimators": 500, "max_depth": None},
        ),
        (
            "random_forest",
            {"max_depth": "None", "n_estimators": "1e2"},
            {"max_depth": None, "n_estimators": 100},
        ),
        ("mlp", {"hidden_layer_sizes": "128, 64 ,32"}, {"hidden_layer_sizes": (128, 64, 32)}),
        ("mlp", {"hidden_layer_sizes": [16]}, {"hidden_layer_sizes": (16,)}),
        ("hist_gradient_boosting", {"learning_rate": "0.05"}, {"learning_rate": 0.05}),
    ],
)
def test_form_strings_parse(family, raw, expected):
    values = validate_params(family, raw)
    for name, value in expected.items():
        assert values[name] == value
        assert type(values[name]) is type(value)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_schema_is_complete_plain_data(family):
    fam = FAMILIES[family]
    assert fam.summary and fam.pros and fam.cons
    for p in fam.params:
        assert p.help.endswith("."), p.name
        if p.kind in (INT, FLOAT, INT_LIST):
            assert p.low is not None and p.high is not None and p.low < p.high
        if p.kind == CHOICE:
            assert p.default in p.choices
        # the default passes the schema's own validation
        assert parse_value(p, p.default) == p.default


def _small_problem(classes: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    n = 240
    x = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["red", "blue", None], size=n)}
    )
    labels = np.array(["FALSE POSITIVE", "CANDIDATE", "CONFIRMED"][:classes])
    y = pd.Series(labels[(x["a"] > 0).astype(int) + (classes == 3) * (x["b"] > 1).astype(int)])
    return x, y


def _combinations(family: str):
    """Every combination of the family's choices, plus each numeric parameter at both bounds."""
    fam = FAMILIES[family]
    choice_params = [p for p in fam.params if p.kind in (CHOICE, BOOL)]
    for combo in itertools.product(*(p.choices or (False, True) for p in choice_params)):
        yield dict(zip((p.name for p in choice_params), combo, strict=True))
    for p in fam.params:
        if p.kind in (INT, FLOAT):
            yield {p.name: p.low}
            yield {p.name: p.high}
            if p.optional:
                yield {p.name: None}
        if p.kind == INT_LIST:
            yield {p.name: (int(p.high),)}
            yield {p.name: (int(p.low),) * p.max_items}


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_allowed_combination_fits_without_warnings(family, classes):
    x, y = _small_problem(classes)
    kinds = {"a": "numeric", "b": "numeric", "c": "categorical"}
    for params in _combinations(family):
        spec = RunSpec.from_dict(
            {
                "dataset": "synthetic",
                "target": "y",
                "features": ["a", "b", "c"],
                "model": {"family": family, "params": params},
            }
        )
        pipe = build_pipeline(spec, kinds)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # deprecations and other warnings fail the test
            fit_pipeline(pipe, x, y)  # convergence warnings come back as notes, not errors
        proba = pipe.predict_proba(x)
        assert proba.shape == (len(x), classes), params
        assert np.allclose(proba.sum(axis=1), 1.0)
