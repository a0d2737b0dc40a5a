"""The wizard's routes, each as a full page and as an htmx partial, with the key content.

Jobs run in the embedded worker (a separate process), as with `make run`.
"""

import io
import json
import re
import time
import zipfile
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from shared.params import FAMILIES
from shared.runs import (
    EVALUATE,
    FINAL,
    METRICS_READY,
    RUNNING,
    SUCCEEDED,
    load_spec,
    read_status,
    write_status,
)
from shared.thresholds import at_threshold
from tests.loop_watch import BACKEND, LoopWatch
from tests.nasa import KOI_PATH
from tests.web import HX, PLAN, QUICK_FORM, browser, follow, kepler_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    application = kepler_app(tmp_path_factory.mktemp("wizard"))
    with TestClient(application):  # the lifespan stops the worker at the end
        yield application


@pytest.fixture(scope="module")
def watch(app):
    return LoopWatch(app)


@pytest.fixture
def client(watch):
    yield browser(watch, backend_options=BACKEND)  # a fresh browser: its own cookie and CSRF token
    watch.check()  # no request of the test held the event loop for over 50 ms


def _new_run(client) -> str:
    response = client.post("/start", data={"dataset": "kepler"}, headers=HX)
    assert response.status_code == 204
    # the card may sit on a page without the wizard (the datasets page): the step loads whole
    match = re.fullmatch(r"/runs/(r[0-9a-f]{32})/features", response.headers["HX-Redirect"])
    assert match, response.headers
    return match.group(1)


def _pair(client, path, page, partial):
    full = client.get(path)
    assert full.status_code == 200, full.text[:500]
    assert full.template.name == page and "<html" in full.text
    fragment = client.get(path, headers=HX)
    assert fragment.status_code == 200 and fragment.template.name == partial
    assert "<html" not in fragment.text
    assert "HX-Request" in fragment.headers["Vary"]
    return full, fragment


MODEL_FORM = {
    "family": "hist_gradient_boosting",
    "learning_rate": "0.1",
    "max_iter": "100",
    "max_leaf_nodes": "31",
    "max_depth": "",
    "min_samples_leaf": "20",
    "l2_regularization": "0",
    "early_stopping": "auto",
    "selection": "none",
    "strength": "1",
}


def test_start_page_and_choosing_a_builtin(client):
    full, _fragment = _pair(client, "/start", "start.html", "_start.html")
    assert "Use this dataset" in full.text and "up to 1 MB" in full.text
    run_id = _new_run(client)
    plain = client.post("/start", data={"dataset": "kepler"}, follow_redirects=False)  # without htmx
    assert plain.status_code == 303 and plain.headers["location"].endswith("/features")
    assert client.post("/start", data={"dataset": "../kepler"}).status_code == 400
    assert client.post("/start", data={"dataset": "tess"}, headers=HX).status_code == 204  # its snapshot
    assert "read from <code>KEPLER_URI</code>" in client.get(f"/runs/{run_id}/dataset").text


def test_dataset_step_shows_the_profile(client):
    run_id = _new_run(client)
    full, fragment = _pair(client, f"/runs/{run_id}/dataset", "step_dataset.html", "_step_dataset.html")
    assert "9,564 rows × 49 columns" in full.text and 'data-testid="profile"' in fragment.text
    assert "<code>koi_period</code>" in fragment.text and 'aria-current="step"' in fragment.text


def test_features_defaults_search_and_the_target_rule(client):
    run_id = _new_run(client)
    full, _fragment = _pair(client, f"/runs/{run_id}/features", "step_features.html", "_step_features.html")
    assert "CANDIDATE 1,979" in full.text  # class counts of the target
    assert "Planet-like vs false positive" in full.text
    count = int(re.search(r'selected-count">(\d+)<', full.text).group(1))
    assert count == 36  # leak-free defaults: identifiers, leakage, bookkeeping and empty columns out
    assert 'value="koi_score"' in full.text and "badge leak" in full.text
    listing = client.get(f"/runs/{run_id}/features/list?q=prad", headers=HX)
    assert listing.template.name == "_feature_list.html"
    assert re.findall(r"<code>([a-z_0-9]+)</code>", listing.text) == [
        "koi_prad",
        "koi_prad_err1",
        "koi_prad_err2",
    ]
    off = client.post(f"/runs/{run_id}/features/visible", data={"q": "prad", "on": "0"}, headers=HX)
    assert re.search(r'selected-count">(\d+)<', off.text).group(1) == "33"
    refused = client.post(
        f"/runs/{run_id}/features/toggle", data={"column": "koi_disposition", "on": "1"}, headers=HX
    )
    assert refused.status_code == 400
    assert "&#39;koi_disposition&#39; is the target; the target can never be a feature." in refused.text
    on = client.post(f"/runs/{run_id}/features/toggle", data={"column": "koi_score", "on": "1"}, headers=HX)
    assert re.search(r'selected-count">(\d+)<', on.text).group(1) == "34"
    everything = client.post(f"/runs/{run_id}/features/visible", data={"q": "", "on": "1"}, headers=HX)
    assert re.search(r'selected-count">(\d+)<', everything.text).group(1) == "48"  # all but the target
    assert (
        client.post(
            f"/runs/{run_id}/features/toggle", data={"column": "nope", "on": "1"}, headers=HX
        ).status_code
        == 400
    )


def test_changing_target_and_setup(client):
    run_id = _new_run(client)
    client.get(f"/runs/{run_id}/features")
    changed = client.post(
        f"/runs/{run_id}/features/target",
        data={"target": "koi_disposition", "setup": "confirmed_vs_fp"},
        headers=HX,
    )
    assert changed.template.name == "_step_features.html"
    assert "then rank every CANDIDATE" in changed.text
    other = client.post(f"/runs/{run_id}/features/target", data={"target": "koi_pdisposition"}, headers=HX)
    assert "All classes" in other.text and "Learn the target" in other.text
    assert (
        client.post(f"/runs/{run_id}/features/target", data={"target": "kepoi_name"}, headers=HX).status_code
        == 400
    )


def test_model_step_form_check_and_save(client):
    run_id = _new_run(client)
    full, fragment = _pair(client, f"/runs/{run_id}/model", "step_model.html", "_step_model.html")
    assert "Histogram Gradient Boosting" in full.text and "Random Forest" in full.text
    assert "How big a step each new tree takes." in fragment.text  # plain-English help from the schema
    params = client.get(f"/runs/{run_id}/model/params?family=random_forest", headers=HX)
    assert params.template.name == "_model_params.html" and 'name="n_estimators"' in params.text
    bad = client.post(
        f"/runs/{run_id}/model/check",
        data={"field": "n_estimators", "family": "random_forest", "n_estimators": "0"},
        headers=HX,
    )
    assert "n_estimators: &#39;0&#39; is out of range; expected a whole number from 1 to 2,000" in bad.text
    good = client.post(f"/runs/{run_id}/model/check", data={"field": "strength", "strength": "2"}, headers=HX)
    assert 'id="error-strength"' in good.text and "out of range" not in good.text
    invalid = client.post(f"/runs/{run_id}/model", data={**MODEL_FORM, "max_iter": "abc"}, headers=HX)
    assert invalid.status_code == 400 and "max_iter: &#39;abc&#39; is not allowed" in invalid.text
    saved = client.post(f"/runs/{run_id}/model", data=MODEL_FORM, headers=HX)
    assert saved.status_code == 204 and json.loads(saved.headers["HX-Location"])["path"].endswith("/evaluate")
    assert 'value="100"' in client.get(f"/runs/{run_id}/model").text  # saved values come back


def test_evaluate_ship_predict_end_to_end(client, koi, app):
    run_id = _new_run(client)
    client.get(f"/runs/{run_id}/features")
    client.post(f"/runs/{run_id}/model", data=MODEL_FORM, headers=HX)
    full, fragment = _pair(client, f"/runs/{run_id}/evaluate", "step_evaluate.html", "_step_evaluate.html")
    assert 'value="kepid" selected' in full.text  # grouped by host star by default
    assert "Evaluate</button>" in fragment.text and "Cross-validation" in fragment.text
    started = client.post(f"/runs/{run_id}/evaluate", data={**PLAN, "importance": "on"}, headers=HX)
    assert started.template.name == "_job_status.html" and 'hx-trigger="every 1s"' in started.text
    done = follow(client, f"/runs/{run_id}/jobs/evaluate")
    assert 'data-state="succeeded"' in done.text and "every 1s" not in done.text
    auc = float(re.search(r'data-metric="roc_auc">([0-9.]+)<', done.text).group(1))
    assert 0.92 <= auc <= 0.96
    assert "grouped by <code>kepid</code>" in done.text and "FALSE POSITIVE" in done.text
    # the train side's matplotlib figures, shown inline from the run's storage
    figures = re.findall(r'<img src="([^"]+)" alt="([^"]+)" data-testid="plot-([a-z_]+)"', done.text)
    assert [name for _, _, name in figures] == sorted(
        ["roc", "pr", "confusion", "confusion_normalized", "calibration", "importance"]
    )
    for src, alt, _ in figures:
        svg = client.get(src)
        assert svg.headers["content-type"] == "image/svg+xml" and svg.content.startswith(b"<?xml")
        assert "default-src 'none'" in svg.headers["content-security-policy"]
        assert alt.endswith(" of this evaluation")
    importance = next(src for src, _, name in figures if name == "importance")
    assert b"Drop in ROC-AUC when the feature is shuffled" in client.get(importance).content
    assert client.get(f"/runs/{run_id}/figures/evaluate/secrets.svg").status_code == 404
    assert client.get(f"/runs/{run_id}/figures/spec/roc.svg").status_code == 404
    assert client.get(f"/runs/{run_id}/figures/final/shap.svg").status_code == 404  # not trained yet
    _pair(client, f"/runs/{run_id}/jobs/evaluate", "job.html", "_job_status.html")

    full, _ = _pair(client, f"/runs/{run_id}/ship", "step_ship.html", "_step_ship.html")
    assert "Train on all data" in full.text
    client.post(f"/runs/{run_id}/jobs/final", data={"restart": "1"}, headers=HX)
    final = follow(client, f"/runs/{run_id}/jobs/final")
    assert "Download bundle (.zip)" in final.text and "Trained on 9,564 rows" in final.text
    assert 'data-testid="plot-shap"' in final.text and "SHAP summary" in final.text
    assert b"Mean |SHAP value| (log-odds)" in client.get(f"/runs/{run_id}/figures/final/shap.svg").content
    bundle = client.get(f"/runs/{run_id}/bundle.zip")
    metadata = json.loads(zipfile.ZipFile(io.BytesIO(bundle.content)).read("metadata.json"))
    assert metadata["evaluation"]["metrics"]["roc_auc"]["mean"] == pytest.approx(auc, abs=5e-4)

    full, _fragment = _pair(client, f"/runs/{run_id}/predict", "step_predict.html", "_step_predict.html")
    assert full.text.count('class="field"') == 36 and "seen: " in full.text
    sparse = {"koi_period": "3.5", "koi_depth": "25000"}
    warned = client.post(f"/runs/{run_id}/predict/row", data=sparse, headers=HX)
    assert warned.status_code == 200 and "34 of 36 values are missing" in warned.text
    assert "predicted-class" not in warned.text and 'name="confirm_missing"' in warned.text
    row = client.post(f"/runs/{run_id}/predict/row", data={**sparse, "confirm_missing": "1"}, headers=HX)
    assert row.template.name == "_prediction.html"
    assert re.search(r'predicted-class">(PLANET|FALSE POSITIVE)<', row.text)
    assert row.text.count("<meter") == 2
    why = re.findall(
        r'<th scope="row">([^<]+)</th>\s*<td>[^<]*</td>\s*<td class="number">([-+][0-9.]+)</td>', row.text
    )
    assert len(why) == 8 and "SHAP values" in row.text and "in log-odds" in row.text
    sizes = [abs(float(value)) for _, value in why]
    assert sizes == sorted(sizes, reverse=True) and len({name for name, _ in why}) == 8
    bad = client.post(
        f"/runs/{run_id}/predict/row", data={"koi_period": "soon", "confirm_missing": "1"}, headers=HX
    )
    assert (
        bad.status_code == 400
        and "column &#39;koi_period&#39; has a value that is not a finite number" in bad.text
    )
    template = client.get(f"/runs/{run_id}/predict/template.csv").text
    assert template.strip().split(",")[:5] == [
        "kepoi_name",
        "kepid",
        "kepler_name",
        "koi_period",
        "koi_period_err1",
    ]
    filled = client.get(f"/runs/{run_id}/predict/example", params={"key": "K00752.01"}, headers=HX)
    assert filled.template.name == "_predict_form.html"
    assert (
        "kepoi_name K00752.01, kepid 10797460" in filled.text
        and "is <strong>CONFIRMED</strong>" in filled.text
    )
    period = koi.loc[koi["kepoi_name"] == "K00752.01", "koi_period"].iloc[0]
    assert f'name="koi_period" inputmode="decimal" value="{float(period)!r}"' in filled.text
    unknown = client.get(f"/runs/{run_id}/predict/example", params={"key": "K99999.99"}, headers=HX)
    assert (
        unknown.status_code == 400
        and "no row has kepoi_name or kepid or kepler_name equal to" in unknown.text
    )
    assert "Filled from kepoi_name K" in client.get(f"/runs/{run_id}/predict/example", headers=HX).text
    rows = KOI_PATH.read_text().splitlines()
    body = "\n".join(line for line in rows if not line.startswith("#"))[:200_000].rsplit("\n", 1)[0]
    batch = client.post(
        f"/runs/{run_id}/predict/batch", files={"file": ("rows.csv", body.encode(), "text/csv")}, headers=HX
    )
    assert batch.status_code == 200, batch.text  # a job: the request does not wait for it
    assert batch.template.name == "_job_status.html" and 'hx-trigger="every 1s"' in batch.text
    done = follow(client, f"/runs/{run_id}/jobs/batch")
    assert 'data-state="succeeded"' in done.text
    link = re.search(r'href="([^"]+)" download\s+data-testid="predictions-link"', done.text).group(1)
    predictions = client.get(link).text.splitlines()
    assert len(predictions) == body.count("\n") + 1 and "prediction" in predictions[0]
    assert f"Predicted {body.count(chr(10)):,} rows" in done.text
    assert link in client.get(f"/runs/{run_id}/predict").text  # still offered after a reload
    missing = client.post(
        f"/runs/{run_id}/predict/batch", files={"file": ("x.csv", b"koi_period\n1\n", "text/csv")}, headers=HX
    )
    # what the first lines tell is said at once, and the earlier predictions stay
    assert missing.status_code == 400 and "missing feature columns: koi_period_err1" in missing.text
    assert 'data-state="succeeded"' in missing.text and link in missing.text
    assert client.get(link).text.splitlines() == predictions

    history, _ = _pair(client, "/runs/", "history.html", "_history.html")
    assert run_id[:9] in history.text and "succeeded" in history.text
    other = _new_run(client)
    compare = client.get(f"/runs/compare?run={run_id}&run={other}")
    assert compare.template.name == "compare.html" and '<th scope="row">ROC-AUC</th>' in compare.text
    assert "Histogram Gradient Boosting · " + run_id[:9] in compare.text and "tick-label" in compare.text
    assert "csrf_token" not in re.search(r'<form method="get"[^>]*>', history.text).group(0)
    assert 'name="csrf_token"' not in history.text.split('action="/runs/compare">')[1].split("</form>")[0]

    # the model changes: the results say whose they are, history keeps the evaluated model
    defaults = FAMILIES["logistic_regression"].defaults()
    lr_form = {
        "family": "logistic_regression",
        **{k: "" if v is None else str(v) for k, v in defaults.items()},
    }
    assert client.post(f"/runs/{run_id}/model", data=lr_form, headers=HX).status_code == 204
    stale = client.get(f"/runs/{run_id}/jobs/evaluate", headers=HX).text
    assert "for Histogram Gradient Boosting, before your change" in stale, stale[
        stale.find("Finished") - 50 : stale.find("Finished") + 400
    ]
    assert 'data-stale="true"' in stale
    assert (
        "for Histogram Gradient Boosting, before your change"
        in client.get(f"/runs/{run_id}/jobs/final", headers=HX).text
    )
    listed = client.get("/runs/", headers=HX).text.split(f'data-run="{run_id}"')[1].split("</tr>")[0]
    assert "Histogram Gradient Boosting" in listed and "(now Logistic Regression, not evaluated)" in listed

    # a new run from this one: same data, target, setup and features, the model only if asked
    branched = client.post(f"/runs/{run_id}/branch", data={}, headers=HX)
    new_id = re.fullmatch(r"/runs/(r[0-9a-f]{32})/model", branched.headers["HX-Redirect"]).group(1)
    old, new = (load_spec(app.state.results, r) for r in (run_id, new_id))
    for field in ("dataset", "target", "features", "label_mapping", "group_column", "evaluation"):
        assert new[field] == old[field], field
    assert "model" not in new and new.get("threshold") is None
    with_model = client.post(f"/runs/{run_id}/branch", data={"keep_model": "on"}, headers=HX)
    kept_id = with_model.headers["HX-Redirect"].split("/")[2]
    assert load_spec(app.state.results, kept_id)["model"]["family"] == "logistic_regression"


def test_stalled_job_restarts_and_second_start_is_refused(client, app):
    run_id = _new_run(client)
    client.get(f"/runs/{run_id}/features")
    client.post(f"/runs/{run_id}/model", data=QUICK_FORM, headers=HX)
    client.post(f"/runs/{run_id}/evaluate", data=PLAN, headers=HX)
    follow(client, f"/runs/{run_id}/jobs/evaluate")
    twice = client.post(f"/runs/{run_id}/jobs/evaluate", headers=HX)
    assert twice.status_code == 409 and "already succeeded" in twice.text
    results = app.state.results
    status, generation = read_status(results, run_id, EVALUATE)
    write_status(
        results, run_id, EVALUATE, replace(status, state=RUNNING, heartbeat=time.time() - 3600), generation
    )
    stalled = client.get(f"/runs/{run_id}/jobs/evaluate", headers=HX)
    assert "Stalled: the worker stopped reporting" in stalled.text and "every 1s" not in stalled.text
    assert 'hx-trigger="every 10s"' in stalled.text  # polled slowly, so a job that recovers shows
    client.post(f"/runs/{run_id}/jobs/evaluate", data={"restart": "1"}, headers=HX)
    again = follow(client, f"/runs/{run_id}/jobs/evaluate")
    assert 'data-state="succeeded"' in again.text and "(run 2 of this job)" in again.text
    assert read_status(results, run_id, FINAL) == (None, 0)


def test_runs_belong_to_their_browser(app, client):
    run_id = _new_run(client)
    stranger = browser(app)
    for path in (
        f"/runs/{run_id}/features",
        f"/runs/{run_id}/jobs/evaluate",
        f"/runs/{run_id}/bundle.zip",
        f"/runs/{run_id}/predict/template.csv",
    ):
        assert stranger.get(path).status_code == 404, path
    assert (
        stranger.post(f"/runs/{run_id}/features/toggle", data={"column": "koi_period", "on": "1"}).status_code
        == 404
    )
    assert run_id[:9] not in stranger.get("/runs/").text
    assert stranger.get(f"/runs/compare?run={run_id}&run={run_id}").status_code == 404
    cookie = client.cookies.get("mission_session")
    assert cookie and run_id not in cookie  # the cookie holds a signed workspace id, not state
    forged = TestClient(app, cookies={"mission_session": cookie[:-4] + "AAAA"})
    assert forged.get(f"/runs/{run_id}/features").status_code == 404


@pytest.mark.parametrize(
    ("name", "content", "status", "message"),
    [
        ("big.csv", b"a,b\n" + b"1,2\n" * 400_000, 413, "larger than the 1 MB upload limit"),
        ("empty.csv", b"", 400, "empty.csv: the file is empty"),
        ("binary.csv", bytes(range(256)) * 10, 400, "binary"),
        ("book.csv", b"PK\x03\x04" + b"\0" * 100, 400, "looks like an Excel workbook or zip archive"),
        ("../../etc/passwd", b"a,b\n1,x\n2,y\n", 204, None),
    ],
)
def test_uploads(client, name, content, status, message):
    response = client.post("/upload", files={"file": (name, content, "text/csv")}, headers=HX)
    assert response.status_code == status, response.text[:300]
    if message:
        assert message in response.text and 'data-testid="upload-error"' in response.text
        assert response.template.name == "_start.html"
    else:
        run_path = json.loads(response.headers["HX-Location"])["path"]
        page = client.get(run_path)
        assert "passwd" in page.text and "../" not in page.text  # the name is shown, never used as a path


def test_threshold_moves_the_confusion_matrix_consistently(client, app):
    import pandas as pd
    from sklearn.metrics import confusion_matrix

    from shared.runs import job_key, load_spec

    run_id = _new_run(client)
    client.get(f"/runs/{run_id}/features")
    client.post(f"/runs/{run_id}/model", data=QUICK_FORM, headers=HX)
    client.post(f"/runs/{run_id}/evaluate", data=PLAN, headers=HX)
    done = follow(client, f"/runs/{run_id}/jobs/evaluate")
    assert 'id="threshold-range"' in done.text and "Decision threshold" in done.text
    oof = pd.read_parquet(io.BytesIO(app.state.results.read_bytes(job_key(run_id, EVALUATE, "oof.parquet"))))
    truth = oof["true"] == "PLANET"
    for threshold in ("0.2", "0.5", "0.83"):
        view = client.get(f"/runs/{run_id}/threshold?threshold={threshold}", headers=HX)
        assert view.template.name == "_threshold.html"
        cells = {k: int(v.replace(",", "")) for k, v in re.findall(r'data-cell="(\w+)">([\d,]+)<', view.text)}
        tn, fp, fn, tp = confusion_matrix(truth, oof["proba_PLANET"] >= float(threshold)).ravel()
        assert cells == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}  # recomputed independently
    best = client.get(f"/runs/{run_id}/threshold?preset=f1", headers=HX)
    assert "the threshold with the best F1" in best.text
    strict = client.get(f"/runs/{run_id}/threshold?preset=precision&goal=0.95", headers=HX)
    assert float(re.search(r'data-at="precision">([0-9.]+)<', strict.text).group(1)) >= 0.95
    chosen = float(re.search(r'data-threshold="([0-9.]+)"', strict.text).group(1))
    assert f'data-value="{chosen:.4f}" hx-swap-oob="true"' in strict.text  # the slider follows the preset
    assert "hx-swap-oob" not in client.get(f"/runs/{run_id}/threshold?threshold=0.3", headers=HX).text
    saved = client.post(f"/runs/{run_id}/threshold", data={"threshold": str(chosen)}, headers=HX)
    assert "saved: final training and predictions will use it" in saved.text
    at_saved = at_threshold(truth.to_numpy(), oof["proba_PLANET"].to_numpy(), chosen)
    page = client.get(f"/runs/{run_id}/jobs/evaluate", headers=HX).text
    assert f"At your threshold {chosen:.3f}" in page
    assert f'data-at-saved="precision">{at_saved.precision:.3f}<' in page
    assert f'data-at-saved="accuracy">{at_saved.accuracy:.3f}<' in page
    assert load_spec(app.state.results, run_id)["threshold"] == pytest.approx(chosen)
    assert client.get(f"/runs/{run_id}/threshold?threshold=2", headers=HX).status_code == 400
    client.post(f"/runs/{run_id}/jobs/final", data={"restart": "1"}, headers=HX)
    follow(client, f"/runs/{run_id}/jobs/final")
    bundle = zipfile.ZipFile(io.BytesIO(client.get(f"/runs/{run_id}/bundle.zip").content))
    assert json.loads(bundle.read("metadata.json"))["threshold"] == pytest.approx(chosen)
    card = bundle.read("model_card.md").decode()
    assert f"At the decision threshold {chosen:.3f} the model ships with" in card
    assert f"precision {at_saved.precision:.3f}, recall {at_saved.recall:.3f}" in card


def test_calibration_choice_shows_brier_and_reliability(client):
    run_id = _new_run(client)
    client.get(f"/runs/{run_id}/features")
    saved = client.post(f"/runs/{run_id}/model", data={**QUICK_FORM, "calibration": "sigmoid"}, headers=HX)
    assert saved.status_code == 204
    assert 'value="sigmoid" checked' in client.get(f"/runs/{run_id}/model").text
    bad = client.post(f"/runs/{run_id}/model", data={**QUICK_FORM, "calibration": "magic"}, headers=HX)
    assert (
        bad.status_code == 400
        and "calibration: &#39;magic&#39; is not one of none, sigmoid, isotonic" in bad.text
    )
    client.post(f"/runs/{run_id}/evaluate", data=PLAN, headers=HX)
    done = follow(client, f"/runs/{run_id}/jobs/evaluate")
    assert "Calibration (sigmoid)" in done.text and 'data-testid="plot-calibration"' in done.text
    before = float(re.search(r'data-brier="before">([0-9.]+)<', done.text).group(1))
    after = float(re.search(r'data-brier="after">([0-9.]+)<', done.text).group(1))
    assert 0 < before < 0.25 and 0 < after < 0.25


def test_search_from_the_model_step_and_use_best(client, app):
    from shared.runs import SEARCH, load_spec

    run_id = _new_run(client)
    client.get(f"/runs/{run_id}/features")
    client.post(f"/runs/{run_id}/model", data=QUICK_FORM, headers=HX)
    page = client.get(f"/runs/{run_id}/model")
    assert "Search hyperparameters (optional)" in page.text and 'data-testid="job-search"' in page.text
    assert (
        client.post(
            f"/runs/{run_id}/model/search", data={"candidates": "3", "minutes": "5"}, headers=HX
        ).status_code
        == 400
    )
    started = client.post(
        f"/runs/{run_id}/model/search", data={"candidates": "8", "minutes": "5"}, headers=HX
    )
    assert started.status_code == 200 and 'hx-trigger="every 1s"' in started.text
    done = follow(client, f"/runs/{run_id}/jobs/search")
    assert 'data-state="succeeded"' in done.text and "Round 2/2: " in done.text
    assert done.text.count("<tr") == 8 + 1 and "(defaults)" in done.text
    board = json.loads(app.state.results.read_bytes(f"runs/{run_id}/{SEARCH}/leaderboard.json"))
    assert f"{board['best']['score']:.3f}" in re.search(r'best-score">([0-9.]+)<', done.text).group(0)
    used = client.post(f"/runs/{run_id}/model/search/use", headers=HX)
    assert used.status_code == 204
    assert load_spec(app.state.results, run_id)["model"]["params"] == board["best"]["params"]


def test_metrics_show_while_the_figures_and_importance_are_still_coming(client, app):
    """Once an evaluation says 'Metrics ready', its fragment shows this attempt's metrics while it
    still runs (never an older attempt's), and keeps polling."""
    run_id = _new_run(client)
    client.post(f"/runs/{run_id}/model", data=QUICK_FORM, headers=HX)
    client.post(f"/runs/{run_id}/evaluate", data=PLAN, headers=HX)
    results = app.state.results
    deadline = time.monotonic() + 120
    while not (done := read_status(results, run_id, EVALUATE)[0]).finished:  # from storage: this
        assert time.monotonic() < deadline  # test is about the fragment, not about polling it
        time.sleep(0.2)
    done, generation = read_status(results, run_id, EVALUATE)
    assert done.state == SUCCEEDED, done.message
    shown = client.get(f"/runs/{run_id}/evaluate").text  # each number with its meaning and baselines
    assert re.search(r'data-baseline="majority-roc_auc">\s*0\.500<', shown) and "0.5 is guessing" in shown
    assert re.search(r'data-baseline="random-accuracy">\s*0\.\d{3}<', shown)
    metrics = json.loads(results.read_bytes(f"runs/{run_id}/evaluate/metrics.json"))
    assert metrics["attempt"] == done.attempt and metrics["figures_pending"] is False and metrics["figures"]
    assert [text for _, text in done.lines].index(METRICS_READY) < len(done.lines) - 1

    running = replace(done, state=RUNNING, attempt=done.attempt + 1, heartbeat=time.time())
    generation = write_status(results, run_id, EVALUATE, running, generation)
    page = client.get(f"/runs/{run_id}/jobs/evaluate", headers=HX).text
    assert 'data-testid="metrics"' not in page and "every 1s" in page  # the older attempt's: not shown
    results.write_bytes(
        f"runs/{run_id}/evaluate/metrics.json",
        json.dumps({**metrics, "attempt": running.attempt, "figures": [], "figures_pending": True}).encode(),
    )
    page = client.get(f"/runs/{run_id}/jobs/evaluate", headers=HX).text
    assert 'data-testid="metrics"' in page and 'data-testid="figures-pending"' in page and "every 1s" in page
    generation = write_status(results, run_id, EVALUATE, replace(running, state=SUCCEEDED), generation)

    # a record cut short (a crashed writer, a bad copy) is said plainly, never a traceback
    results.write_bytes(f"runs/{run_id}/evaluate/metrics.json", b'{"protocol": {"method": "kf')
    write_status(results, run_id, EVALUATE, replace(running, state=SUCCEEDED, attempt=9), generation)
    damaged = client.get(f"/runs/{run_id}/jobs/evaluate", headers=HX)
    assert damaged.status_code == 500 and 'data-testid="damaged-record"' in damaged.text
    assert "Traceback" not in damaged.text and "metrics.json" not in damaged.text
