"""Figures (matplotlib SVG, stored with the run and in the bundle) and per-row explanations
(SHAP for tree models, the exact linear decomposition for logistic regression)."""

import io
import json
import zipfile
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest

from shared.evaluation import fit_model, train_final
from shared.explain import contributions, summary, summary_rows, unavailable_reason
from shared.jobs import run_job
from shared.pipeline import with_threshold
from shared.predict import load_model, predict_rows
from shared.runs import EVALUATE, FINAL, SUCCEEDED, figure_name, job_key
from shared.spec import RunSpec
from shared.storage import LocalStorage
from tests.nasa import koi_spec
from tests.runs_setup import koi_run_spec, load_koi, start_run

SVG = "{http://www.w3.org/2000/svg}"
# each figure's axis labels (x, y): a reader must be able to tell what is plotted
AXES = {
    "roc": ("False positive rate", "True positive rate (recall)"),
    "pr": ("Recall", "Precision"),
    "confusion": ("Predicted class", "True class"),
    "confusion_normalized": ("Predicted class", "True class"),
    "calibration": ("Mean predicted probability (class PLANET)", "Observed share"),
    "importance": (
        "Drop in ROC-AUC when the feature is shuffled (mean ± std over held-out splits)",
        "Feature",
    ),
    "shap": ("Mean |SHAP value| (log-odds) over 1,000 training rows", "Feature"),
}


@pytest.fixture(scope="module")
def evaluated_and_trained(tmp_path_factory):
    """One KOI run (histogram gradient boosting, 3 grouped folds, importance), evaluated then
    trained on all rows with the same spec."""
    root = tmp_path_factory.mktemp("explain")
    data, results = LocalStorage(root / "data"), LocalStorage(root / "results")
    load_koi(data)
    spec = koi_run_spec(evaluation={"method": "kfold", "folds": 3, "importance": True})
    run_id = start_run(results, spec, EVALUATE)
    assert run_job(run_id, EVALUATE, data, results, threads=2).state == SUCCEEDED
    from shared.runs import request_job

    request_job(results, run_id, FINAL, spec)
    status = run_job(run_id, FINAL, data, results, threads=2)
    assert status.state == SUCCEEDED, status.message
    return results, run_id


def _texts(svg: bytes) -> list[str]:
    root = ElementTree.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG}svg"
    return ["".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")]


def test_every_figure_is_a_valid_svg_with_labelled_axes_and_in_the_bundle(evaluated_and_trained):
    results, run_id = evaluated_and_trained
    metrics = json.loads(results.read_bytes(job_key(run_id, EVALUATE, "metrics.json")))
    assert metrics["figures"] == sorted(set(AXES) - {"shap"})
    stored = {
        name: results.read_bytes(job_key(run_id, EVALUATE, figure_name(name))) for name in metrics["figures"]
    }
    stored["shap"] = results.read_bytes(job_key(run_id, FINAL, figure_name("shap")))
    for name, svg in stored.items():
        texts = _texts(svg)
        x_label, y_label = AXES[name]
        assert x_label in texts and y_label in texts, (name, texts)
    # the counts figure shows the same numbers as the evaluation's confusion matrix
    counts = [f"{n:,}" for row in metrics["confusion_matrix"]["matrix"] for n in row]
    assert set(counts) <= set(_texts(stored["confusion"]))
    with zipfile.ZipFile(io.BytesIO(results.read_bytes(job_key(run_id, FINAL, "bundle.zip")))) as bundle:
        in_bundle = {n.removeprefix("figures/").removesuffix(".svg"): bundle.read(n) for n in bundle.namelist()
                     if n.startswith("figures/")}  # fmt: skip
        listed = json.loads(bundle.read("metadata.json"))["files"]
    assert in_bundle == stored
    assert {f"figures/{name}.svg" for name in stored} <= set(listed)


def test_figures_are_reproducible_bytes(evaluated_and_trained):
    from shared.figures import evaluation_figures

    results, run_id = evaluated_and_trained
    metrics = json.loads(results.read_bytes(job_key(run_id, EVALUATE, "metrics.json")))
    oof = pd.read_parquet(io.BytesIO(results.read_bytes(job_key(run_id, EVALUATE, "oof.parquet"))))
    again = evaluation_figures(metrics, oof)
    assert again["roc"] == results.read_bytes(job_key(run_id, EVALUATE, figure_name("roc")))


def test_single_row_shap_explanation_from_the_bundle(evaluated_and_trained, koi):
    results, run_id = evaluated_and_trained
    bundle = load_model(results, run_id)
    assert bundle.metadata["explanation"]["method"] == "tree_shap"
    features = bundle.features
    rows = koi[features].sample(5, random_state=3)
    records = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows.to_dict("records")]
    out = predict_rows(bundle, records, explain=True)
    proba = out["probability_PLANET"].to_numpy()
    for i, explanation in enumerate(out["explanation"]):
        assert explanation["class"] == out["prediction"][i] and explanation["units"] == "log-odds"
        shown = explanation["contributions"]
        assert len(shown) == 8 and shown == sorted(shown, key=lambda c: -abs(c["contribution"]))
    # all contributions (not just the top 8) add up to the model's log-odds for the class
    full, _ = contributions(bundle.pipe, rows, ["FALSE POSITIVE", "PLANET"], ["PLANET"] * 5)
    towards_fp, _ = contributions(bundle.pipe, rows, ["FALSE POSITIVE", "PLANET"], ["FALSE POSITIVE"] * 5)
    for i in range(5):
        total = full[i]["base"] + sum(c["contribution"] for c in full[i]["contributions"])
        assert total == pytest.approx(np.log(proba[i] / (1 - proba[i])), abs=1e-6)
        assert {c["feature"] for c in full[i]["contributions"]} == set(features)  # each feature once
        assert towards_fp[i]["base"] == pytest.approx(-full[i]["base"])


def test_global_summary_ranks_features_and_reaches_the_model_card(evaluated_and_trained):
    results, run_id = evaluated_and_trained
    shown = json.loads(results.read_bytes(job_key(run_id, FINAL, "summary.json")))["explanation"]
    magnitudes = [f["mean_abs"] for f in shown["features"]]
    assert shown["rows"] == 1000 and magnitudes == sorted(magnitudes, reverse=True) and magnitudes[0] > 0.1
    with zipfile.ZipFile(io.BytesIO(results.read_bytes(job_key(run_id, FINAL, "bundle.zip")))) as bundle:
        card = bundle.read("model_card.md").decode()
    strongest = shown["features"][0]
    assert f"`{strongest['feature']}` {strongest['mean_abs']:.3f}" in card and "figures/shap.svg" in card


def _fitted(koi, koi_kinds, features, **fields):
    spec = RunSpec.from_dict(koi_spec(features, **fields))
    model, data, _ = train_final(koi, spec, koi_kinds, n_jobs=2)
    return model, data


def test_random_forest_contributions_add_up_to_the_probability(koi, koi_kinds, koi_features):
    model, data = _fitted(
        koi, koi_kinds, koi_features, model={"family": "random_forest", "params": {"n_estimators": 30}}
    )
    rows = data.features.iloc[:4]
    explained, units = contributions(model, rows, list(model.classes_), ["PLANET"] * 4)
    assert units == "probability"
    for i, row in enumerate(explained):
        total = row["base"] + sum(c["contribution"] for c in row["contributions"])
        assert total == pytest.approx(model.predict_proba(rows)[i, 1], abs=1e-6)


def test_logistic_regression_sums_one_hot_columns_back_to_their_feature(koi, koi_kinds, koi_features):
    frame = koi.assign(vetting_run=np.where(koi["koi_period"] > 10, "long", "short"))
    kinds = {**koi_kinds, "vetting_run": "categorical"}
    features = [*koi_features[:6], "vetting_run"]
    spec = RunSpec.from_dict(koi_spec(features, model={"family": "logistic_regression"}))
    model, data, _ = train_final(frame, spec, kinds, n_jobs=1)
    stored = summary(model, data.features, list(model.classes_), "PLANET", seed=0)
    assert stored["method"] == "linear" and {f["feature"] for f in stored["features"]} == set(features)
    rows = data.features.iloc[:3]
    explained, units = contributions(model, rows, list(model.classes_), ["PLANET"] * 3, stored["background"])
    assert units == "log-odds"
    for i, row in enumerate(explained):
        assert [c["feature"] for c in row["contributions"]].count("vetting_run") == 1
        total = row["base"] + sum(c["contribution"] for c in row["contributions"])
        assert total == pytest.approx(model.decision_function(rows)[i], abs=1e-6)


def test_multiclass_explains_the_asked_class(koi, koi_kinds, koi_features):
    model, data = _fitted(
        koi,
        koi_kinds,
        koi_features,
        label_mapping=None,
        model={"family": "hist_gradient_boosting", "params": {"max_iter": 30}},
    )
    rows = data.features.iloc[:2]
    classes = list(model.classes_)
    explained, _ = contributions(model, rows, classes, ["CONFIRMED", "CANDIDATE"])
    raw = model.predict_proba(rows)  # softmax of the per-class raw scores
    logits = [row["base"] + sum(c["contribution"] for c in row["contributions"]) for row in explained]
    # softmax is shift-invariant, so compare differences between classes via a second explanation
    other, _ = contributions(model, rows, classes, ["FALSE POSITIVE", "FALSE POSITIVE"])
    for i, (mine, theirs) in enumerate(zip(logits, other, strict=True)):
        theirs_total = theirs["base"] + sum(c["contribution"] for c in theirs["contributions"])
        target = classes.index(explained[i]["class"])
        expected = np.log(raw[i, target] / raw[i, classes.index("FALSE POSITIVE")])
        assert mine - theirs_total == pytest.approx(expected, abs=1e-6)


def test_summary_rows_are_bounded_by_the_models_cost_and_reproducible(koi, koi_kinds, koi_features):
    """TreeSHAP's cost grows with leaves x depth: a deep forest is summarised on fewer rows, in
    batches (so a job's heartbeat keeps beating), and the same model always on the same rows."""
    forest, data = _fitted(
        koi, koi_kinds, koi_features, model={"family": "random_forest", "params": {"n_estimators": 60}}
    )
    boosting, _ = _fitted(
        koi, koi_kinds, koi_features, model={"family": "hist_gradient_boosting", "params": {"max_iter": 30}}
    )
    assert summary_rows(boosting, len(data.features)) == 1000
    rows = summary_rows(forest, len(data.features))
    assert 50 <= rows < 400
    calls = []
    first = summary(
        forest, data.features, list(forest.classes_), "PLANET", seed=0, progress=lambda *c: calls.append(c)
    )
    assert first["rows"] == rows and calls[-1] == (rows, rows) and len(calls) == -(-rows // 25)
    assert summary(forest, data.features, list(forest.classes_), "PLANET", seed=0) == first


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        (
            {"model": {"family": "adaboost", "params": {"n_estimators": 10}}},
            "does not support AdaBoostClassifier",
        ),
        ({"calibration": "sigmoid"}, "calibrated models are not explained per row"),
    ],
)
def test_models_without_explanations_say_why(koi, koi_kinds, koi_features, fields, match):
    spec = RunSpec.from_dict(koi_spec(koi_features[:5], **fields))
    data_rows = koi.iloc[:3000]
    from shared.evaluation import prepare

    prepared = prepare(data_rows, spec)
    model, _ = fit_model(spec, koi_kinds, prepared.features, prepared.labels, 1)
    assert match in unavailable_reason(with_threshold(model, 0.4, "PLANET"))
    assert summary(model, prepared.features, list(model.classes_), "PLANET", seed=0) is None
