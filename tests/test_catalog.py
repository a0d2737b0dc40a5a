"""Built-in datasets, label setups, default features and the honest KOI acceptance numbers."""

import io

import pandas as pd
import pytest

from shared.catalog import BUILTINS, KEPLER
from shared.columns import advise, default_features, leakage_warnings
from shared.data import read_table_path
from shared.errors import DataError
from shared.evaluation import evaluate, prepare, train_final
from shared.labels import apply_mapping, labels_as_text
from shared.profile import column_kinds, profile_table
from shared.scoring import score_rows, to_csv_bytes
from shared.spec import RunSpec
from tests.nasa import K2_PATH, KOI_EXCLUDED, TESS_PATH


def _table(dataset_id, koi):
    if dataset_id == "kepler":
        return koi
    frame = read_table_path({"tess": TESS_PATH, "k2": K2_PATH}[dataset_id])
    return frame[frame["default_flag"] == 1].reset_index(drop=True) if dataset_id == "k2" else frame


def _spec(dataset, setup, features, **fields):
    return RunSpec.from_dict(
        {
            "dataset": dataset.id,
            "target": dataset.target,
            "features": features,
            "label_mapping": setup.mapping,
            "positive_class": setup.positive_class,
            "score_classes": list(setup.score_classes),
            "label_setup": setup.key,
            "group_column": dataset.group_column,
            **fields,
        }
    )


@pytest.mark.parametrize(
    ("dataset_id", "setup_key", "counts"),
    [
        ("kepler", "planet_vs_fp", {"FALSE POSITIVE": 4839, "PLANET": 4725}),
        ("kepler", "confirmed_vs_fp", {"CONFIRMED": 2746, "FALSE POSITIVE": 4839}),
        ("tess", "planet_vs_fp", {"FALSE POSITIVE": 1295, "PLANET": 5946}),
        ("tess", "confirmed_vs_fp", {"CONFIRMED": 1267, "FALSE POSITIVE": 1295}),
        ("tess", "raw", {"APC": 462, "CP": 684, "FA": 98, "FP": 1197, "KP": 583, "PC": 4679}),
        ("k2", "planet_vs_fp", {"FALSE POSITIVE": 250, "PLANET": 1556}),
        ("k2", "confirmed_vs_fp", {"CONFIRMED": 580, "FALSE POSITIVE": 250}),
    ],
)
def test_label_setups_on_the_real_tables(koi, dataset_id, setup_key, counts):
    dataset = BUILTINS[dataset_id]
    setup = dataset.setup(setup_key)
    assert setup.name and setup.explanation[-1] in ".?"
    frame = _table(dataset_id, koi)
    data = prepare(frame, _spec(dataset, setup, ["ra"] if dataset_id != "kepler" else ["koi_period"]))
    assert data.labels.value_counts().to_dict() == counts
    if setup.positive_class:
        assert data.positive_class == setup.positive_class


def test_every_builtin_is_described():
    assert set(BUILTINS) == {"kepler", "k2", "tess"}
    for dataset in BUILTINS.values():
        assert [s.key for s in dataset.setups] == ["raw", "planet_vs_fp", "confirmed_vs_fp"]
        assert dataset.default_setup.key == "planet_vs_fp"
        assert all(c.reason for c in dataset.known_columns.values())
    with pytest.raises(DataError, match=r"'binary' is not a label setup of Kepler Objects of Interest"):
        KEPLER.setup("binary")


def _koi_advice(koi, setup):
    labels = apply_mapping(labels_as_text(koi["koi_disposition"]), setup.mapping)
    return advise(koi, profile_table(koi), "koi_disposition", labels, "kepid", KEPLER.known_columns)


def test_default_features_leave_out_identifiers_and_leakage_with_reasons(koi):
    advice = {a.name: a for a in _koi_advice(koi, KEPLER.default_setup)}
    assert "koi_disposition" not in advice  # the target is never offered
    features = default_features(advice.values())
    excluded = KOI_EXCLUDED - {"koi_disposition"}  # identifiers, bookkeeping, leakage, empty
    assert set(features) == set(koi.columns) - excluded - {"koi_disposition"}
    score = advice["koi_score"]
    assert score.excluded and score.leakage
    assert score.reasons[0].startswith("the Robovetter's disposition score")  # the known list
    assert score.reasons[1].startswith("detected: on its own it separates")  # and the detector
    assert advice["kepid"].excluded and not advice["kepid"].leakage
    assert advice["koi_teq_err1"].reasons == ("entirely empty",)


@pytest.mark.slow
def test_koi_default_setup_is_honest_and_opting_in_koi_score_warns(koi):
    setup = KEPLER.default_setup
    advice = _koi_advice(koi, setup)
    features = default_features(advice)
    kinds = column_kinds(profile_table(koi))
    result = evaluate(koi, _spec(KEPLER, setup, features), kinds, n_jobs=2)
    auc = result.metrics["roc_auc"]["mean"]
    assert 0.92 <= auc <= 0.96, auc  # leak-free: good, not too good
    assert result.protocol["grouped_by"] == "kepid"
    assert leakage_warnings(features, advice) == []
    warnings = leakage_warnings([*features, "koi_score"], advice)
    assert len(warnings) == 1 and warnings[0].startswith("koi_score: the Robovetter's")
    assert "detected:" in warnings[0]
    leaky = evaluate(
        koi, _spec(KEPLER, setup, [*features, "koi_score"]), kinds, n_jobs=2, leakage_warnings=warnings
    )
    assert leaky.to_dict()["leakage_warnings"] == warnings  # travels with the metrics
    assert leaky.metrics["roc_auc"]["mean"] > auc  # and the inflation it warns about is real


@pytest.mark.slow
def test_candidate_scoring_ranks_every_koi_candidate(koi):
    setup = KEPLER.setup("confirmed_vs_fp")
    advice = _koi_advice(koi, setup)
    spec = _spec(KEPLER, setup, default_features(advice))
    pipe, data, _ = train_final(koi, spec, column_kinds(profile_table(koi)), n_jobs=2)
    assert data.classes == ["CONFIRMED", "FALSE POSITIVE"] and len(data.labels) == 2746 + 4839
    ranked = score_rows(pipe, koi, spec, data.positive_class, KEPLER.key_columns)
    assert len(ranked) == 1979 and set(ranked["koi_disposition"]) == {"CANDIDATE"}
    assert ranked["rank"].tolist() == list(range(1, 1980))
    probability = ranked["probability_CONFIRMED"]
    assert probability.is_monotonic_decreasing and probability.between(0, 1).all()
    assert ranked["kepoi_name"].is_unique and set(ranked["kepoi_name"]) <= set(koi["kepoi_name"])
    downloaded = pd.read_csv(io.BytesIO(to_csv_bytes(ranked)))
    assert list(downloaded.columns[:3]) == ["rank", "kepoi_name", "kepid"]
    assert len(downloaded) == 1979
