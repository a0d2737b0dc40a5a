"""build_pipeline on the real Kepler KOI table: every family, both label setups, honest CV."""

import itertools

import numpy as np
import pandas as pd
import pytest

from shared.errors import DataError
from shared.evaluation import evaluate, train_final
from shared.params import FAMILIES
from shared.pipeline import build_pipeline, check_columns, fit_pipeline, kept_features
from shared.spec import RunSpec
from shared.thresholds import at_threshold
from tests.nasa import koi_spec

pytestmark = pytest.mark.slow
SETUPS = {
    "binary": {"label_mapping": {"CONFIRMED": "PLANET", "CANDIDATE": "PLANET"}},
    "three-class": {"label_mapping": None},
}


@pytest.mark.parametrize("setup", list(SETUPS))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_fits_koi_with_sane_metrics(koi, koi_kinds, koi_features, family, setup):
    spec = RunSpec.from_dict(
        koi_spec(
            koi_features,
            model={"family": family},
            **SETUPS[setup],
            evaluation={"method": "holdout", "test_size": 0.25},
        )
    )
    result = evaluate(koi, spec, koi_kinds, n_jobs=2)
    shares = result.out_of_fold["true"].value_counts(normalize=True).to_numpy()
    majority, prior_log_loss = shares.max(), -np.sum(shares * np.log(shares))
    m = {name: value["mean"] for name, value in result.metrics.items()}
    assert m["accuracy"] > majority + 0.1, m  # clearly better than always guessing the majority
    assert m["roc_auc"] > (0.85 if setup == "binary" else 0.8), m
    assert 0 < m["log_loss"] < prior_log_loss  # better than predicting the class shares
    assert result.classes == (
        ["FALSE POSITIVE", "PLANET"] if setup == "binary" else ["CANDIDATE", "CONFIRMED", "FALSE POSITIVE"]
    )
    # the confusion matrix counts each held-out row exactly once; about a quarter are held out
    assert np.sum(result.confusion_matrix) == len(result.out_of_fold)
    assert 0.2 * result.rows < len(result.out_of_fold) < 0.3 * result.rows


def test_grouped_five_fold_hist_gradient_boosting_reaches_roc_auc_092(koi, koi_kinds, koi_features):
    spec = RunSpec.from_dict(koi_spec(koi_features))
    lines = []
    result = evaluate(koi, spec, koi_kinds, n_jobs=2, progress=lambda line, fraction: lines.append(line))
    assert result.protocol["grouped_by"] == "kepid" and result.protocol["splits"] == 5
    assert result.metrics["roc_auc"]["mean"] >= 0.92
    assert result.metrics["roc_auc"]["std"] < 0.03
    assert result.positive_class == "PLANET"
    assert lines[0] == f"Loaded 9,564 rows × {len(koi_features)} features"
    assert lines[-1].startswith("Fold 5/5: ROC-AUC 0.9")
    # no host star is on both sides of any split: every star's rows share one fold
    folds_per_star = (
        result.out_of_fold.assign(star=koi["kepid"].to_numpy()[result.out_of_fold["row"]])
        .groupby("star")["fold"]
        .nunique()
    )
    assert folds_per_star.max() == 1


@pytest.mark.parametrize("method", ["l1", "l2"])
def test_selection_strength_changes_how_many_features_are_kept(koi, koi_kinds, koi_features, method):
    kept = {}
    for strength in (0.01, 1.0, 3.0) if method == "l2" else (0.01, 30.0, 300.0):
        spec = RunSpec.from_dict(
            koi_spec(
                koi_features,
                model={"family": "logistic_regression"},
                feature_selection={"method": method, "strength": strength},
            )
        )
        pipe, _, _ = train_final(koi, spec, koi_kinds)
        kept[strength] = kept_features(pipe)
        assert set(kept[strength]) <= set(koi_features)
    counts = [len(v) for v in kept.values()]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1] > 0, counts


def test_selection_that_keeps_nothing_says_so(koi, koi_kinds, koi_features):
    spec = RunSpec.from_dict(koi_spec(koi_features, feature_selection={"method": "l2", "strength": 10000}))
    with pytest.raises(DataError, match="feature selection kept no features; lower its strength"):
        train_final(koi, spec, koi_kinds)


def test_categorical_features_are_one_hot_and_named(koi, koi_kinds):
    spec = RunSpec.from_dict(koi_spec(["koi_period", "koi_tce_delivname"]))
    pipe, _, _ = train_final(koi, spec, koi_kinds)
    names = kept_features(pipe)
    assert names[0] == "koi_period"
    assert any(n.startswith("koi_tce_delivname_q1_q17_dr2") for n in names)


def test_extra_columns_ignored_and_missing_columns_named(koi, koi_kinds, koi_features):
    spec = RunSpec.from_dict(koi_spec(koi_features))
    pipe, _, _ = train_final(koi, spec, koi_kinds)
    rows = koi.head(50)
    shuffled = rows[list(reversed(rows.columns))].assign(unrelated=1.0)
    np.testing.assert_array_equal(pipe.predict_proba(rows), pipe.predict_proba(shuffled))
    with pytest.raises(DataError, match="missing feature columns: koi_period, koi_depth"):
        check_columns(rows.drop(columns=["koi_period", "koi_depth"]), spec.features)


def test_unseen_category_at_prediction_is_ignored(koi, koi_kinds):
    spec = RunSpec.from_dict(koi_spec(["koi_period", "koi_tce_delivname"]))
    pipe, _, _ = train_final(koi, spec, koi_kinds)
    rows = koi.head(5).assign(koi_tce_delivname="never seen before")
    assert pipe.predict_proba(rows).shape == (5, 2)


def test_missing_feature_at_build_time_is_named():
    spec = RunSpec.from_dict({"dataset": "kepler", "target": "y", "features": ["a", "b"]})
    with pytest.raises(DataError, match="feature columns not in the data: b"):
        build_pipeline(spec, {"a": "numeric"})


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (["A"] * 40, r"target 'y' has only the class 'A' after label mapping"),
        ([None] * 40, r"target 'y' has no labelled rows"),
        ([f"c{i}" for i in range(40)] * 2, r"target 'y' has 80 classes|too few rows in class"),
        (["A"] * 38 + ["B"] * 2, r"too few rows in class 'B' \(2 rows\) for a stratified 5-fold"),
    ],
)
def test_unusable_targets_are_explained(labels, match):
    n = len(labels)
    frame = pd.DataFrame({"x": np.arange(n, dtype=float), "y": labels})
    spec = RunSpec.from_dict({"dataset": "synthetic", "target": "y", "features": ["x"]})
    with pytest.raises(DataError, match=match):
        evaluate(frame, spec, {"x": "numeric"})


def test_text_and_numeric_labels_work_everywhere():
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    for labels in (
        np.where(x > 0, "FALSE POSITIVE", "CONFIRMED"),
        (x > 0).astype(int),
        (x > 0).astype(float),
    ):
        frame = pd.DataFrame({"x": x, "y": labels})
        spec = RunSpec.from_dict(
            {"dataset": "synthetic", "target": "y", "features": ["x"], "evaluation": {"folds": 3}}
        )
        result = evaluate(frame, spec, {"x": "numeric"})
        assert result.metrics["accuracy"]["mean"] > 0.9
        assert len(result.classes) == 2 and all(isinstance(c, str) for c in result.classes)


def test_fit_pipeline_reports_convergence_as_a_note(koi, koi_kinds, koi_features):
    spec = RunSpec.from_dict(koi_spec(koi_features, model={"family": "mlp", "params": {"max_iter": 10}}))
    pipe = build_pipeline(spec, koi_kinds)
    notes = fit_pipeline(pipe, koi[koi_features], koi["koi_disposition"])
    assert any("Maximum iterations (10) reached" in n for n in notes), notes


@pytest.mark.parametrize("family", ["hist_gradient_boosting", "gradient_boosting", "logistic_regression"])
def test_balance_classes_raises_minority_recall(family):
    """class_weight for families that have it, per-row sample weights for the others."""
    rng = np.random.default_rng(0)
    n = 3000
    y = np.where(rng.random(n) < 0.06, "RARE", "COMMON")
    x = pd.DataFrame({"a": rng.normal(size=n) + (y == "RARE") * 1.2, "b": rng.normal(size=n)})
    frame = x.assign(y=y)
    recalls = {}
    for balance in (False, True):
        spec = RunSpec.from_dict(
            {
                "dataset": "synthetic",
                "target": "y",
                "features": ["a", "b"],
                "model": {"family": family, "params": {"balance_classes": balance}},
                "positive_class": "RARE",
                "evaluation": {"folds": 3},
            }
        )
        recalls[balance] = evaluate(frame, spec, {"a": "numeric", "b": "numeric"}).metrics["recall"]["mean"]
    assert recalls[True] > recalls[False] + 0.1, recalls


def test_held_out_permutation_importance_is_physical_and_exposes_leakage(koi, koi_kinds, koi_features):
    plan = {"method": "kfold", "folds": 2}
    honest = evaluate(
        koi,
        RunSpec.from_dict(koi_spec(koi_features, evaluation=plan)),
        koi_kinds,
        n_jobs=2,
        importance_repeats=1,
    ).importance
    assert [i["feature"] for i in honest] and {i["feature"] for i in honest} == set(koi_features)
    assert honest[0]["feature"] in {"koi_period", "koi_prad", "koi_depth", "koi_duration", "koi_model_snr"}
    assert all(a["mean"] >= b["mean"] for a, b in itertools.pairwise(honest))
    leaky = evaluate(
        koi,
        RunSpec.from_dict(koi_spec([*koi_features, "koi_score"], evaluation=plan)),
        koi_kinds,
        n_jobs=2,
        importance_repeats=1,
    ).importance
    assert leaky[0]["feature"] == "koi_score" and leaky[0]["mean"] > 3 * leaky[1]["mean"]


def test_calibration_report_and_its_limits(koi, koi_kinds, koi_features):
    spec = RunSpec.from_dict(
        koi_spec(koi_features, calibration="sigmoid", evaluation={"method": "kfold", "folds": 3})
    )
    result = evaluate(koi, spec, koi_kinds, n_jobs=2)
    report = result.to_dict()["calibration"]
    assert report["method"] == "sigmoid"
    assert 0.05 < report["brier_after"] < 0.25 and 0.05 < report["brier_before"] < 0.25
    oof = result.out_of_fold
    brier = np.mean((oof["proba_PLANET"] - (oof["true"] == "PLANET")) ** 2)
    assert report["brier_after"] == pytest.approx(brier)  # the shipped (calibrated) model's probabilities
    for curve in (report["reliability_before"], report["reliability_after"]):
        assert sum(n for _, _, n in curve) == len(oof)
        assert all(0 <= x <= 1 and 0 <= y <= 1 for x, y, _ in curve)
    weighted = RunSpec.from_dict(
        koi_spec(
            koi_features,
            calibration="isotonic",
            model={"family": "gradient_boosting", "params": {"balance_classes": True}},
        )
    )
    with pytest.raises(DataError, match="cannot be combined with calibration"):
        train_final(koi, weighted, koi_kinds)


def test_baselines_score_what_learning_nothing_scores_on_the_same_splits(koi, koi_kinds, koi_features):
    """Beside every metric: a model that always names the training split's commonest class and
    one that draws a class by the shares, each with the class shares as probabilities."""
    spec = RunSpec.from_dict(
        koi_spec(
            koi_features, model={"family": "logistic_regression"}, evaluation={"method": "kfold", "folds": 4}
        )
    )
    result = evaluate(koi, spec, koi_kinds, n_jobs=2)
    labels = result.out_of_fold["true"]
    share = float((labels == result.positive_class).mean())
    majority, random = result.baselines["majority"], result.baselines["random"]
    assert majority["accuracy"]["mean"] == pytest.approx(max(share, 1 - share), abs=0.02)
    assert majority["balanced_accuracy"]["mean"] == pytest.approx(0.5)
    assert majority["roc_auc"]["mean"] == pytest.approx(0.5) and random["roc_auc"]["mean"] == pytest.approx(
        0.5
    )
    assert majority["pr_auc"]["mean"] == pytest.approx(share, abs=0.02)
    prior_loss = -(share * np.log(share) + (1 - share) * np.log(1 - share))
    assert majority["log_loss"]["mean"] == pytest.approx(prior_loss, abs=0.01)
    assert random["accuracy"]["mean"] == pytest.approx(share**2 + (1 - share) ** 2, abs=0.03)
    assert len(majority["accuracy"]["folds"]) == 4
    assert result.metrics["roc_auc"]["mean"] > 0.8 > random["roc_auc"]["mean"]
    assert result.to_dict()["baselines"] == result.baselines


def test_ties_at_one_half_follow_the_threshold_rule_everywhere():
    """A forest of 4 trees gives many probabilities of exactly 0.5: the evaluation's own
    predictions, its confusion matrix and the threshold view at 0.5 agree (positive at >= 0.5)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=600), "z": rng.normal(size=600)})
    frame["label"] = np.where(frame["x"] + rng.normal(scale=1.5, size=600) > 0, "yes", "no")
    spec = RunSpec.from_dict(
        {
            "dataset": "ties",
            "target": "label",
            "features": ["x", "z"],
            "model": {"family": "random_forest", "params": {"n_estimators": 4}},
            "evaluation": {"method": "kfold", "folds": 3},
        }
    )
    result = evaluate(frame, spec, {"x": "numeric", "z": "numeric"})
    oof = result.out_of_fold
    tied = oof["proba_yes"] == 0.5
    assert tied.sum() > 10  # the case the rule is about
    assert (oof.loc[tied, "predicted"] == "yes").all()
    at_half = at_threshold((oof["true"] == "yes").to_numpy(), oof["proba_yes"].to_numpy(), 0.5)
    (tn, fp), (fn, tp) = result.confusion_matrix  # classes sorted: no, yes
    assert (tn, fp, fn, tp) == (at_half.tn, at_half.fp, at_half.fn, at_half.tp)


def test_evaluation_counts_the_inputs_selection_kept(koi, koi_kinds, koi_features):
    spec = RunSpec.from_dict(
        koi_spec(
            koi_features,
            model={"family": "logistic_regression"},
            feature_selection={"method": "l1", "strength": 30.0},
            evaluation={"method": "kfold", "folds": 3},
        )
    )
    kept = evaluate(koi, spec, koi_kinds).kept_inputs
    pipe, _, _ = train_final(koi, spec, koi_kinds)
    assert kept["of"] == len(koi_features)  # all numeric: one input per feature
    assert 0 < kept["min"] <= kept["mean"] <= kept["max"] < kept["of"]
    assert len(kept["folds"]) == 3 and abs(kept["mean"] - len(kept_features(pipe))) <= kept["of"] / 4
    assert (
        evaluate(koi.head(500), spec.replace(feature_selection={"method": "none"}), koi_kinds).kept_inputs
        is None
    )
