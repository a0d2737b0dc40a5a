"""The wizard in headless Chromium against a real `python -m webapp` server (see tests/browser.py).

One server per module, one fresh browser context (a fresh workspace cookie) per test.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from shared.bundle import read_bundle
from shared.predict import predict_frame
from tests.browser import MAX_UPLOAD_MB, VIEWPORT, start_app, stop_app
from tests.wizard_pages import (
    JOB_TIMEOUT_MS,
    evaluate_quickly,
    save_logistic_regression,
    settled,
    train_and_download_bundle,
    use_builtin,
    use_kepler,
    wait_for_job,
)

# htmx answers within milliseconds, but a loaded 2-core machine can take seconds
expect.set_options(timeout=15_000)

pytestmark = pytest.mark.browser


def test_whole_wizard_on_kepler(page: Page, koi, tmp_path):
    # 1 · dataset: the table comes from the snapshot the project carries (the archive is unreachable)
    run_id = use_kepler(page, len(koi))
    expect(page.get_by_label("Target (what to predict)")).to_have_value("koi_disposition")
    expect(page.locator("#setup")).to_have_value("planet_vs_fp")
    expect(page.get_by_test_id("class-counts")).to_contain_text("FALSE POSITIVE")

    # 2 · features: the search narrows the list; select/unselect act on the visible rows only
    feature_list = page.get_by_test_id("feature-list")
    rows = feature_list.locator("tbody tr")
    count = page.get_by_test_id("selected-count")
    all_rows = rows.count()
    selected = int(count.inner_text())
    assert 0 < selected < all_rows == len(koi.columns) - 1  # every column but the target
    page.locator("#feature-search").fill("prad")
    prad = [c for c in koi.columns if "prad" in c]
    expect(rows).to_have_count(len(prad))
    assert sorted(rows.locator("code").all_inner_texts()) == sorted(prad)
    visible_checked = rows.locator("input[type=checkbox]:checked").count()
    assert visible_checked > 0
    page.get_by_role("button", name="Unselect visible").click()
    expect(count).to_have_text(str(selected - visible_checked))
    expect(rows.locator("input[type=checkbox]:checked")).to_have_count(0)
    page.get_by_role("button", name="Select visible", exact=True).click()
    expect(count).to_have_text(str(selected - visible_checked + len(prad)))
    expect(rows.locator("input[type=checkbox]:not(:checked)")).to_have_count(0)
    expect(rows).to_have_count(len(prad))  # the search still applies to the refreshed list
    features = selected - visible_checked + len(prad)

    # 3 · model: the family swaps the parameter form; values are checked as they are typed
    page.get_by_role("link", name="Continue: model").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/model$"))
    params = page.locator("#model-params")
    page.get_by_text("Random Forest", exact=True).click()
    expect(params.locator("legend")).to_have_text("Random Forest: hyperparameters")
    page.get_by_text("Histogram Gradient Boosting", exact=True).click()
    expect(params.locator("legend")).to_have_text("Histogram Gradient Boosting: hyperparameters")
    settled(page)
    max_iter = page.get_by_label("Max iterations")
    error = page.locator("p.field-error#error-max_iter")
    max_iter.fill("abc")
    expect(error).to_contain_text("max_iter")
    expect(error).to_have_text(re.compile(r"'abc'.*10 to 2,?000"))
    # the server refuses it too: the step stays, the error stays, nothing is saved
    page.get_by_role("button", name="Save and continue: evaluate").click()
    expect(page.get_by_role("alert").filter(has_text="Some values need fixing")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/model$"))
    expect(page.locator("p.field-error#error-max_iter")).to_contain_text("max_iter")
    settled(page)
    max_iter.fill("100")
    expect(error).to_have_text("")
    page.get_by_role("button", name="Save and continue: evaluate").click()

    # 4 · evaluate: 3 folds grouped by host star, then metrics, confusion matrix and curves
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/evaluate$"))
    expect(page.locator("#group_column")).to_have_value("kepid")  # preset by the dataset
    settled(page)
    page.get_by_label("Cross-validation").check()
    page.locator("#folds").fill("3")
    page.locator("#group_column").select_option("kepid")
    page.get_by_role("button", name="Evaluate", exact=True).click()
    expect(page.get_by_test_id("job-evaluate")).not_to_have_attribute("data-state", "none")
    wait_for_job(page, "evaluate")
    metrics = page.get_by_test_id("metrics")
    expect(metrics).to_be_visible()
    expect(metrics).to_contain_text("3 folds")
    expect(metrics).to_contain_text("grouped by kepid")
    roc_auc = float(metrics.locator("[data-metric=roc_auc]").inner_text())
    assert 0.9 < roc_auc <= 1.0
    confusion = page.get_by_test_id("confusion")
    assert confusion.locator("thead th").all_inner_texts()[1:] == ["FALSE POSITIVE", "PLANET"]
    assert confusion.locator("tbody th").all_inner_texts() == ["FALSE POSITIVE", "PLANET"]
    cells = [int(n.replace(",", "")) for n in confusion.locator("tbody td").all_inner_texts()]
    assert sum(cells) == len(koi)  # cross-validation tests every row exactly once
    for plot in ("plot-roc", "plot-pr", "plot-confusion", "plot-calibration"):
        figure = page.get_by_test_id(plot)
        figure.scroll_into_view_if_needed()
        expect(figure).to_be_visible()
        page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=figure.element_handle())

    # 5 · train on all data and download the bundle
    page.get_by_role("link", name="Continue: train on all data").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/ship$"))
    page.get_by_role("button", name="Train on all data").click()
    wait_for_job(page, "final")
    summary = page.get_by_test_id("final-summary")
    expect(summary).to_contain_text(f"Trained on {len(koi):,} rows")
    with page.expect_download() as download_info:
        summary.get_by_role("link", name="Download bundle (.zip)").click()
    bundle_path = tmp_path / "bundle.zip"
    download_info.value.save_as(bundle_path)
    assert download_info.value.suggested_filename.endswith(".zip")
    with zipfile.ZipFile(bundle_path) as archive:
        assert "model.skops" in archive.namelist()
    bundle = read_bundle(bundle_path.read_bytes())
    assert sorted(bundle.classes) == ["FALSE POSITIVE", "PLANET"]
    assert len(bundle.features) == features
    assert bundle.metadata["model"]["family"] == "hist_gradient_boosting"
    assert bundle.metadata["model"]["params"]["max_iter"] == 100
    assert bundle.metadata["spec"]["group_column"] == "kepid"
    assert bundle.metadata["evaluation"]["protocol"]["splits"] == 3
    local = predict_frame(bundle, koi.head(20))
    probabilities = local[[f"probability_{c}" for c in bundle.classes]]
    assert probabilities.sum(axis=1).round(6).eq(1).all()
    assert set(local["prediction"]) <= set(bundle.classes)

    # 6 · predict one row: a blank form asks first; then the first KOI row, filled in by its key
    summary.get_by_role("link", name="Predict").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/predict$"))
    page.get_by_role("button", name="Predict", exact=True).click()
    warning = page.get_by_test_id("missing-warning")
    expect(warning).to_contain_text(f"{len(bundle.features)} of {len(bundle.features)} values are missing")
    expect(page.get_by_test_id("predicted-class")).to_have_count(0)  # nothing predicted from nothing
    first = koi.iloc[0]
    page.locator("#example-key").fill(first["kepoi_name"])
    page.get_by_role("button", name="Fill", exact=True).click()
    expect(page.get_by_test_id("example-row")).to_contain_text(f"kepoi_name {first['kepoi_name']}")
    settled(page)
    for name in bundle.features[:5]:
        shown = page.locator(f'form.predict-row [name="{name}"]').input_value()
        assert (shown == "" and pd.isna(first[name])) or float(shown) == float(first[name]), name
    page.get_by_role("button", name="Predict", exact=True).click()
    predicted = page.get_by_test_id("predicted-class")
    expect(predicted).to_be_visible()
    assert predicted.inner_text() in bundle.classes
    assert predicted.inner_text() == local["prediction"][0]  # the served model is the bundle's
    why = page.get_by_test_id("contributions")
    expect(why).to_be_visible()
    assert why.locator("tbody tr").count() == 8  # the top contributions, largest first
    assert why.locator("caption").inner_text().startswith("SHAP values towards " + local["prediction"][0])

    # ... and a CSV of 20 rows, made from the downloaded template
    with page.expect_download() as template_info:
        page.get_by_role("link", name="Download the CSV template").click()
    template = pd.read_csv(template_info.value.path())
    keys = bundle.metadata["key_columns"]
    assert keys[0] == "kepoi_name"  # so the predictions can be joined back
    assert template.empty and list(template.columns) == [*keys, *bundle.features]
    batch = koi.head(20)[list(template.columns)]
    batch_path = tmp_path / "koi-20.csv"
    batch.to_csv(batch_path, index=False)
    page.locator("#batch-file").set_input_files(batch_path)
    page.get_by_role("button", name="Predict file").click()
    link = page.get_by_test_id("batch-result").get_by_test_id("predictions-link")
    expect(link).to_be_visible(timeout=60_000)
    with page.expect_download() as predictions_info:
        link.click()
    predictions = pd.read_csv(predictions_info.value.path())
    assert len(predictions) == 20
    assert "prediction" in predictions.columns
    columns = [c for c in predictions.columns if c.startswith("probability_")]
    assert sorted(columns) == sorted(f"probability_{c}" for c in bundle.classes)
    assert predictions["kepoi_name"].tolist() == batch["kepoi_name"].tolist()  # key column carried
    assert predictions["prediction"].tolist() == local["prediction"].tolist()
    assert (predictions[columns].sum(axis=1) - 1).abs().max() < 1e-6


def test_use_this_dataset_from_the_datasets_page_lands_on_the_run(page: Page):
    """Home → datasets page → "Use this dataset": the run's features step, and no other run."""
    page.goto("/")
    page.get_by_role("link", name="Browse the built-in datasets").click()
    expect(page).to_have_url(re.compile(r"/datasets/$"))
    run_id = use_builtin(page, "tess", 7703, start=page.url)
    expect(page.get_by_label("Target (what to predict)")).to_have_value("tfopwg_disp")
    page.goto("/runs/")
    runs = set(re.findall(r"/runs/(r[0-9a-f]{32})/", page.content()))
    assert runs == {run_id}  # the run the user landed on, and no orphan


@pytest.mark.parametrize(
    ("dataset", "rows", "group"), [("kepler", 9564, "kepid"), ("k2", 1806, "hostname"), ("tess", 7703, "tid")]
)
def test_each_mission_offline_from_dataset_to_bundle(page: Page, tmp_path, dataset, rows, group):
    """With the archive unreachable, each built-in goes dataset → features → model → evaluate →
    bundle from its snapshot, with the defaults a newcomer would keep."""
    run_id = use_builtin(page, dataset, rows)
    save_logistic_regression(page, run_id)
    expect(page.locator("#group_column")).to_have_value(group)
    evaluate_quickly(page, run_id)
    roc_auc = float(page.get_by_test_id("metrics").locator("[data-metric=roc_auc]").inner_text())
    assert 0.6 < roc_auc < 1.0
    bundle = train_and_download_bundle(page, run_id)
    assert bundle.metadata["dataset"] == dataset and bundle.metadata["spec"]["group_column"] == group
    assert (
        bundle.metadata["data_source"]["source"] == "Snapshot of 2025-10-04 from the NASA Exoplanet Archive"
    )
    assert bundle.metadata["evaluation"]["metrics"]["roc_auc"]["mean"] == pytest.approx(roc_auc, abs=5e-4)


def test_back_and_refresh_keep_the_step(page: Page, koi):
    run_id = use_kepler(page, len(koi))
    features_url = page.url
    page.get_by_role("link", name="Continue: model").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/model$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("3 · Model and hyperparameters")

    page.go_back()
    expect(page).to_have_url(features_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("2 · Target and features")
    expect(page.locator("#wizard")).to_have_count(1)  # restored as one page, not nested in itself
    expect(page.locator("header.masthead")).to_have_count(1)
    expect(page.locator("[aria-current=step]")).to_contain_text("Target & features")

    page.reload()
    expect(page).to_have_url(features_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("2 · Target and features")
    expect(page.get_by_test_id("feature-list")).to_be_visible()

    page.goto(f"/runs/{run_id}/evaluate")
    page.reload()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/evaluate$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("4 · Evaluate")
    expect(page.locator("[aria-current=step]")).to_contain_text("Evaluate")
    expect(page.get_by_test_id("job-evaluate")).to_have_attribute("data-state", "none")


def _upload(page: Page, path: Path, status: int) -> None:
    page.locator("#upload-file").set_input_files(path)
    with page.expect_response("**/upload") as response:
        page.get_by_role("button", name="Upload").click()
    assert response.value.status == status


def test_bad_uploads_show_their_message_and_the_page_keeps_working(page: Page, tmp_path):
    page.goto("/start")
    error = page.get_by_test_id("upload-error")
    expect(error).to_have_count(0)
    limit = MAX_UPLOAD_MB * 1024 * 1024
    too_large = re.compile(rf"larger than the {MAX_UPLOAD_MB} MB upload limit")

    # over the limit: refused in the browser before a byte is sent (in the cloud a request over
    # 32 MiB would never reach the app: Cloud Run answers a bare 413); the server's own 413 for
    # a client that sends anyway is tested in test_bad_inputs
    uploads: list[str] = []
    page.on("request", lambda request: uploads.append(request.url) if "/upload" in request.url else None)
    for name, size in (("big.csv", limit * 3 // 2), ("just-over.csv", limit + 16 * 1024)):
        oversized = tmp_path / name
        oversized.write_bytes(b"a,b\n" + b"1,2\n" * (size // 4))
        page.locator("#upload-file").set_input_files(oversized)
        page.get_by_role("button", name="Upload").click()
        expect(error).to_have_text(re.compile(rf"^{re.escape(name)}: " + too_large.pattern))
    expect(page.get_by_text("A bigger table can be imported from storage")).to_be_visible()
    assert uploads == []

    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(range(256)) * 64)
    _upload(page, garbage, 400)
    expect(error).to_have_text(re.compile(r"garbage\.csv: .*binary data"))

    workbook = io.BytesIO()
    with zipfile.ZipFile(workbook, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    excel = tmp_path / "sheet.csv"
    excel.write_bytes(workbook.getvalue())
    _upload(page, excel, 400)
    expect(error).to_have_text(re.compile(r"sheet\.csv: .*Excel workbook"))

    # still the start page, still working: the dataset card and a good upload
    expect(page).to_have_url(re.compile(r"/start$"))
    expect(
        page.get_by_test_id("dataset-kepler").get_by_role("button", name="Use this dataset")
    ).to_be_visible()
    good = tmp_path / "small.csv"
    good.write_text("period,depth,label\n1.5,200,planet\n3.25,15,false positive\n8.0,90,planet\n")
    page.locator("#upload-file").set_input_files(good)
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(re.compile(r"/runs/r[0-9a-f]+/dataset$"))
    profile = page.get_by_test_id("profile")
    expect(profile).to_be_visible()
    assert profile.locator("tbody td code").all_inner_texts() == ["period", "depth", "label"]
    expect(page.locator(".facts").first).to_contain_text("3 rows × 3 columns")


def test_search_threshold_and_model_card(page: Page, koi):
    """Issue 6 in the browser: search progress and Use best, the threshold control, the model card
    (on logistic regression: quick to fit, and what is tested here is the page, not the score)."""
    run_id = use_kepler(page, len(koi))
    save_logistic_regression(page, run_id)
    evaluate_quickly(page, run_id)  # 3 grouped folds in the spec: the search uses them too
    page.goto(f"/runs/{run_id}/model")
    page.locator("#candidates").fill("8")
    page.locator("#minutes").fill("5")
    page.get_by_role("button", name="Search", exact=True).click()
    job = page.get_by_test_id("job-search")
    expect(job).to_contain_text("Round 1/2: 8 candidates", timeout=JOB_TIMEOUT_MS)  # live progress lines
    wait_for_job(page, "search")
    board = page.get_by_test_id("leaderboard")
    expect(board.locator("tbody tr")).to_have_count(8)
    best = float(page.get_by_test_id("best-score").inner_text())
    assert 0.85 < best < 0.99
    board.get_by_role("button", name="Use best").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/model$"))

    evaluate_quickly(page, run_id)  # the best settings, evaluated again
    view = page.get_by_test_id("threshold-view")
    tp_at_half = int(view.locator("[data-cell=tp]").inner_text().replace(",", ""))
    page.locator("#threshold-range").fill("0.9")  # a range input: fill sets it and fires input
    expect(view).to_have_attribute("data-threshold", "0.9000")
    tp_strict = int(
        page.get_by_test_id("threshold-view").locator("[data-cell=tp]").inner_text().replace(",", "")
    )
    assert tp_strict < tp_at_half  # fewer rows called PLANET at a stricter threshold
    page.get_by_role("button", name="Max F1").click()
    expect(page.get_by_test_id("threshold-view")).to_contain_text("the threshold with the best F1")
    best = page.get_by_test_id("threshold-view").get_attribute("data-threshold")
    expect(page.locator("#threshold-range")).to_have_attribute("data-value", best)  # the slider follows
    assert page.locator("#threshold-range").input_value() == f"{float(best):.2f}"
    page.get_by_role("button", name="Use this threshold").click()
    expect(page.get_by_test_id("threshold-view")).to_contain_text(
        "saved: final training and predictions will use it"
    )

    page.goto(f"/runs/{run_id}/ship")
    page.get_by_role("button", name="Train on all data").click()
    wait_for_job(page, "final")
    page.get_by_role("link", name="Model card").click()
    card = page.get_by_test_id("model-card")
    expect(card.get_by_role("heading", name="Evaluation")).to_be_visible()
    expect(card).to_contain_text("grouped by kepid")
    expect(card).to_contain_text(f"Predicts PLANET when its probability is at least {float(best):.3f}")
    expect(card).to_contain_text(f"At the decision threshold {float(best):.3f} the model ships with")
    expect(card).to_contain_text("Precision at the 0.5 cut-off, mean over splits")
    expect(card).to_contain_text("Mission shift")


@pytest.fixture(scope="module")
def roomy_app(tmp_path_factory):
    """A second app with room for a large batch file (the module's app caps uploads at 2 MB)."""
    root = tmp_path_factory.mktemp("roomy-app")
    (root / "storage").mkdir()
    server = start_app(root / "storage", root, max_upload_mb=48)
    try:
        yield server
    finally:
        stop_app(server)


def test_batch_prediction_is_a_job_that_survives_a_reload(browser, roomy_app, koi, tmp_path):
    """A 35 MB batch: the page answers at once with the job's status, which keeps itself up to
    date, survives a reload, and offers the predictions, which equal the bundle's own."""
    context = browser.new_context(base_url=roomy_app.url, viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        run_id = use_kepler(page, len(koi))
        save_logistic_regression(page, run_id)
        bundle = train_and_download_bundle(page, run_id)

        rows = koi.sample(110_000, replace=True, random_state=3).reset_index(drop=True)
        batch_path = tmp_path / "batch.csv"
        rows.to_csv(batch_path, index=False)
        assert batch_path.stat().st_size > 30 * 1024 * 1024
        page.goto(f"/runs/{run_id}/predict")
        page.locator("#batch-file").set_input_files(batch_path)
        with page.expect_response(lambda r: r.url.endswith("/predict/batch")) as answered:
            page.get_by_role("button", name="Predict file").click()
        assert answered.value.status == 200
        job = page.get_by_test_id("job-batch")
        expect(job).to_have_attribute("data-state", re.compile("queued|running"))  # answered before it ran
        expect(job).to_contain_text("Reading the file and predicting")
        page.reload()  # leaving and coming back loses nothing
        expect(page.get_by_test_id("job-batch")).to_be_visible()
        wait_for_job(page, "batch")
        expect(page.get_by_test_id("job-batch")).to_contain_text(f"Predicted {len(rows):,} rows")
        with page.expect_download() as predictions_download:
            page.get_by_test_id("predictions-link").click()
        predictions = pd.read_csv(predictions_download.value.path())
        expected = predict_frame(bundle, rows)
        assert len(predictions) == len(rows)
        assert predictions["prediction"].tolist() == expected["prediction"].tolist()
        column = "probability_PLANET"
        assert (predictions[column] - expected[column]).abs().max() < 1e-9
    finally:
        context.close()


@pytest.fixture(scope="module")
def impatient_app(tmp_path_factory):
    """An app that calls a job stalled after 3 s without a heartbeat (the default is 90 s)."""
    root = tmp_path_factory.mktemp("impatient-app")
    (root / "storage").mkdir()
    server = start_app(root / "storage", root, JOB_STALE_AFTER_S="3")
    try:
        yield server
    finally:
        stop_app(server)


def test_long_phases_never_look_stalled_and_a_queued_job_says_so(browser, impatient_app, koi):
    """With a 3 s stall window: an evaluation (5 folds) occupies the one embedded worker; a final
    training asked for meanwhile says it is queued behind it, never 'Stalled', and its fitting
    and explanation (each longer than the window) end on 'Finished' with no reload."""
    context = browser.new_context(base_url=impatient_app.url, viewport=VIEWPORT)
    context.set_default_timeout(120_000)
    first, second = context.new_page(), context.new_page()
    try:
        busy = use_kepler(first, len(koi))
        first.goto(f"/runs/{busy}/evaluate")
        settled(first)
        first.locator("#folds").fill("5")
        first.get_by_label("Feature importance").uncheck()
        first.get_by_role("button", name="Evaluate", exact=True).click()
        expect(first.get_by_test_id("job-evaluate")).to_have_attribute("data-state", "running")

        waiting = use_kepler(second, len(koi))
        second.goto(f"/runs/{waiting}/ship")
        second.get_by_role("button", name="Train on all data").click()
        job = second.get_by_test_id("job-final")
        expect(job).to_contain_text("Queued behind 1 job")
        seen: list[str] = []
        while (state := job.get_attribute("data-state")) != "succeeded":
            seen.append(state)
            assert state in ("queued", "running"), f"{state}: {job.inner_text()[:500]}"
            second.wait_for_timeout(200)
        assert "queued" in seen and "running" in seen
        assert second.url.endswith(f"/runs/{waiting}/ship")  # never reloaded
        expect(job).to_contain_text("Finished")
        expect(job).to_contain_text("Explanation done in")
        expect(first.get_by_test_id("job-evaluate")).to_have_attribute("data-state", "succeeded")
    finally:
        context.close()
