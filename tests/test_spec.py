"""The run spec: versioned, JSON-serialisable, validated with every problem named."""

import json

import pytest

from shared.errors import SpecError
from shared.spec import SPEC_VERSION, RunSpec

GOOD = {
    "dataset": "kepler",
    "target": "koi_disposition",
    "features": ["koi_period", "koi_depth"],
    "label_mapping": {"CONFIRMED": "PLANET", "CANDIDATE": "PLANET"},
    "group_column": "kepid",
    "model": {"family": "random_forest", "params": {"n_estimators": "50"}},
    "feature_selection": {"method": "l1", "strength": "2"},
    "evaluation": {"method": "kfold", "folds": 3, "stratified": True, "seed": 7},
}


def test_round_trip_through_json():
    spec = RunSpec.from_dict(GOOD)
    again = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert spec.version == SPEC_VERSION
    assert spec.model.params["n_estimators"] == 50
    assert spec.model.params["max_features"] == "sqrt"  # defaults filled in
    assert spec.feature_selection.strength == 2.0


def test_minimal_spec_takes_defaults():
    spec = RunSpec.from_dict({"dataset": "u-abc123", "target": "y", "features": ["x"]})
    assert spec.model.family == "hist_gradient_boosting"
    assert spec.evaluation.method == "kfold" and spec.evaluation.folds == 5
    assert spec.feature_selection.method == "none"


def test_label_mapping_can_drop_classes():
    spec = RunSpec.from_dict({**GOOD, "label_mapping": {"CANDIDATE": None}})
    assert spec.label_mapping == {"CANDIDATE": None}


def test_replace_revalidates():
    spec = RunSpec.from_dict(GOOD)
    with pytest.raises(SpecError, match="koi_disposition' is the target"):
        spec.replace(features=["koi_period", "koi_disposition"])


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (
            {"features": ["koi_period", "koi_disposition"]},
            r"features: 'koi_disposition' is the target; the target can never be a feature",
        ),
        ({"features": []}, r"features: \[\] must be a non-empty list"),
        ({"features": "koi_period"}, r"features: 'koi_period' must be a non-empty list"),
        ({"features": ["a", "a"]}, r"features: \['a'\] are listed more than once"),
        ({"features": ["a", 3]}, r"features: 3 is not a column name"),
        ({"target": ""}, r"target: '' is not a column name"),
        ({"target": None}, r"target: None is not a column name"),
        ({"dataset": "../etc/passwd"}, r"dataset: '../etc/passwd' is not a dataset id"),
        ({"dataset": "gs://bucket/x.csv"}, r"dataset: 'gs://bucket/x.csv' is not a dataset id"),
        ({"version": 99}, r"version: 99 is not supported"),
        ({"dataset_uri": "/etc/passwd"}, r"dataset_uri: '/etc/passwd' is not a spec field"),
        ({"group_column": "koi_disposition"}, r"group_column: 'koi_disposition' is the target"),
        (
            {"label_mapping": {"CONFIRMED": 3}},
            r"label_mapping\['CONFIRMED'\]: 3 must be a class name or null",
        ),
        ({"label_mapping": []}, r"label_mapping: \[\] must map class names"),
        (
            {"positive_class": "CONFIRMED"},
            r"positive_class: 'CONFIRMED' is renamed or dropped by label_mapping",
        ),
        ({"model": {"family": "svm"}}, r"model.family: 'svm' is not a model family"),
        (
            {"model": {"family": "random_forest", "params": {"n_estimators": "0"}}},
            r"model.params.n_estimators: '0' is out of range",
        ),
        (
            {"model": {"family": "random_forest", "params": {"n_estimators": "many"}}},
            r"model.params.n_estimators: 'many' is not allowed",
        ),
        ({"model": {"family": "random_forest", "params": []}}, r"model.params: \[\] must be an object"),
        ({"model": "rf"}, r"model: 'rf' must be an object"),
        (
            {"feature_selection": {"method": "l3"}},
            r"feature_selection.method: 'l3' is not one of none, l1, l2",
        ),
        (
            {"feature_selection": {"method": "l1", "strength": "-1"}},
            r"feature_selection.strength: '-1' is out of range",
        ),
        (
            {"feature_selection": {"method": "l1", "strength": "nan"}},
            r"feature_selection.strength: 'nan' is not allowed",
        ),
        ({"evaluation": {"method": "loo"}}, r"evaluation.method: 'loo' must be 'holdout' or 'kfold'"),
        ({"evaluation": {"folds": 1}}, r"evaluation.folds: 1 must be a whole number from 2 to 20"),
        ({"evaluation": {"folds": 5.5}}, r"evaluation.folds: 5.5 must be a whole number"),
        ({"evaluation": {"test_size": 0.9}}, r"evaluation.test_size: 0.9 must be a share from 0.05 to 0.5"),
        ({"evaluation": {"test_size": float("nan")}}, r"evaluation.test_size: nan must be a share"),
        ({"evaluation": {"stratified": "yes"}}, r"evaluation.stratified: 'yes' must be true or false"),
        ({"evaluation": {"seed": -1}}, r"evaluation.seed: -1 must be a whole number"),
        ({"evaluation": {"shuffle": True}}, r"evaluation: \['shuffle'\] are not evaluation fields"),
    ],
)
def test_bad_specs_name_field_and_value(changes, match):
    with pytest.raises(SpecError, match=match):
        RunSpec.from_dict({**GOOD, **changes})


def test_all_problems_in_one_error():
    with pytest.raises(SpecError) as caught:
        RunSpec.from_dict(
            {**GOOD, "dataset": "../x", "features": ["koi_disposition"], "evaluation": {"folds": 0}}
        )
    assert len(caught.value.problems) == 3


@pytest.mark.parametrize("raw", [None, [], "spec", 3])
def test_not_an_object(raw):
    with pytest.raises(SpecError, match="spec: expected a JSON object"):
        RunSpec.from_dict(raw)


def test_score_classes_must_be_left_out_of_training():
    spec = RunSpec.from_dict(
        {
            **GOOD,
            "label_mapping": {"CANDIDATE": None},
            "score_classes": ["CANDIDATE"],
            "label_setup": "confirmed_vs_fp",
        }
    )
    assert spec.score_classes == ("CANDIDATE",)
    assert spec.label_setup == "confirmed_vs_fp"
    assert RunSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(
        SpecError, match=r"score_classes: 'CONFIRMED' must be a class the label_mapping leaves out"
    ):
        RunSpec.from_dict({**GOOD, "score_classes": ["CONFIRMED"]})
    with pytest.raises(SpecError, match=r"label_setup: '../x' is not a label setup name"):
        RunSpec.from_dict({**GOOD, "label_setup": "../x"})
