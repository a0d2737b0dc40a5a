"""The research side of the wizard in headless Chromium (see tests/test_browser.py for the
wizard itself): labels built class by class on an upload, branching and comparing runs,
comparing model families, and a run across missions. One server for the module."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from tests.wizard_pages import (
    JOB_TIMEOUT_MS,
    evaluate_quickly,
    run_id_of,
    save_logistic_regression,
    settled,
    use_kepler,
    wait_for_job,
)

expect.set_options(timeout=15_000)  # htmx answers in milliseconds, a loaded 2-core machine in seconds
pytestmark = pytest.mark.browser


K2_COLUMNS = [
    "pl_name", "hostname", "default_flag", "disposition", "disp_refname", "pl_orbper", "pl_orbpererr1",
    "pl_rade", "pl_radeerr1", "st_teff", "st_rad", "st_logg", "sy_vmag", "ra", "dec",
]  # fmt: skip


def test_upload_merge_classes_then_compare_and_branch(page: Page, tmp_path):
    """Issue 15 in the browser, on an uploaded copy of K2: classes merged into two groups, the
    host-star group chosen by itself, results labelled once the model changes, history showing
    the evaluated model, a new run from this one, and the comparison of the two."""
    from shared.data import read_table_path
    from tests.nasa import K2_PATH

    upload = tmp_path / "k2-subset.csv"
    read_table_path(K2_PATH)[K2_COLUMNS].to_csv(upload, index=False)
    page.goto("/start")
    page.locator("#upload-file").set_input_files(upload)
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(re.compile(r"/runs/r[0-9a-f]+/dataset$"))
    run_id = run_id_of(page)
    page.goto(f"/runs/{run_id}/features")
    page.locator("#target").select_option("disposition")
    expect(page.locator("#setup")).to_be_visible()
    settled(page)
    page.locator("#setup").select_option("custom")
    roles = page.get_by_test_id("class-roles")
    expect(roles.locator("tbody tr")).to_have_count(4)
    for name, role in (("CONFIRMED", "positive"), ("CANDIDATE", "positive"), ("FALSE POSITIVE", "negative"),
                       ("REFUTED", "negative")):  # fmt: skip
        settled(page)
        page.get_by_label(name, exact=True).select_option(role)
        expect(page.get_by_label(name, exact=True)).to_have_value(role)
    expect(page.get_by_test_id("custom-summary")).to_contain_text(
        "The model learns 2 classes: CANDIDATE + CONFIRMED, FALSE POSITIVE + REFUTED; "
        "positive class CANDIDATE + CONFIRMED"
    )
    rows = page.get_by_test_id("feature-list").locator("tbody tr")
    disp_refname = rows.filter(has=page.locator("code", has_text=re.compile("^disp_refname$")))
    expect(disp_refname.locator("input[type=checkbox]")).not_to_be_checked()  # left out, with why
    expect(disp_refname).to_contain_text("names the sources or references")

    save_logistic_regression(page, run_id)
    expect(page.locator("#group_column")).to_have_value("hostname")  # found in the table itself
    expect(page.get_by_test_id("group-suggestion")).to_contain_text("hostname")
    evaluate_quickly(page, run_id)
    metrics = page.get_by_test_id("metrics")
    expect(metrics).to_contain_text("grouped by hostname")
    expect(metrics).to_contain_text("positive class CANDIDATE + CONFIRMED")

    # another model: the results on the page say whose they are
    page.goto(f"/runs/{run_id}/model")
    page.get_by_text("Random Forest", exact=True).click()
    expect(page.locator("#model-params legend")).to_have_text("Random Forest: hyperparameters")
    settled(page)
    page.get_by_role("button", name="Save and continue: evaluate").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/evaluate$"))
    expect(page.get_by_test_id("stale-evaluate")).to_have_text("for Logistic Regression, before your change")

    # history: the model the scores belong to; then a new run from this one
    page.goto("/runs/")
    row = page.locator(f'tr[data-run="{run_id}"]')
    expect(row.get_by_test_id("history-model")).to_have_text(
        re.compile(r"^Logistic Regression\s+\(now Random Forest, not evaluated\)$")
    )
    row.get_by_role("button", name="New run from this one").click()
    expect(page).to_have_url(re.compile(r"/runs/r[0-9a-f]+/model$"))
    branch_id = run_id_of(page)
    assert branch_id != run_id
    page.goto(f"/runs/{branch_id}/features")
    expect(page.locator("#setup")).to_have_value("custom")  # the label setup came along
    expect(page.get_by_label("REFUTED", exact=True)).to_have_value("negative")
    save_logistic_regression(page, branch_id)
    evaluate_quickly(page, branch_id)

    # compare the two: model names in the legend, named metrics, axes with ticks, no token in the URL
    page.goto("/runs/")
    for run in (run_id, branch_id):
        page.locator(f'tr[data-run="{run}"] input[name=run]').check()
    page.get_by_role("button", name="Compare selected").click()
    expect(page).to_have_url(re.compile(r"/runs/compare\?run=r[0-9a-f]+&run=r[0-9a-f]+$"))
    legend = page.get_by_test_id("compare-legend")
    for run in (run_id, branch_id):
        expect(legend).to_contain_text(f"Logistic Regression · {run[:9]}")
    expect(page.get_by_test_id("compare").get_by_role("rowheader", name="Balanced accuracy")).to_be_visible()
    expect(page.get_by_test_id("plot-compare").locator(".tick-label")).to_have_count(10)


def test_compare_families_fills_the_board_and_use_this_one(page: Page, koi):
    """Issue 17 in the browser: compare two families → the board fills family by family → Use
    this one → the evaluate step evaluates that model (the same score on the same splits)."""
    run_id = use_kepler(page, len(koi))
    save_logistic_regression(page, run_id)
    evaluate_quickly(page, run_id)  # 3 grouped folds in the plan: the comparison uses them too
    page.goto(f"/runs/{run_id}/model")
    settled(page)
    for box in page.locator("input[name=family][type=checkbox]").all():
        if box.get_attribute("value") not in ("logistic_regression", "hist_gradient_boosting"):
            box.uncheck()
    page.get_by_role("button", name="Compare families").click()
    board = page.get_by_test_id("family-board")
    expect(board.locator("tbody tr")).to_have_count(2)
    # logistic regression lands first, while the boosted trees still run
    page.wait_for_function(
        """() => document.querySelector('tr[data-family=logistic_regression]')?.dataset.state === 'succeeded'"""
    )
    assert board.locator("tr[data-family=hist_gradient_boosting]").get_attribute("data-state") != "succeeded"
    row = board.locator("tr[data-family=hist_gradient_boosting]")
    expect(row).to_have_attribute("data-state", "succeeded", timeout=JOB_TIMEOUT_MS)
    compared = row.locator("[data-metric=roc_auc]").inner_text().split(" ±")[0]
    row.get_by_role("button", name="Use this one").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/evaluate$"))
    settled(page)
    with page.expect_response(lambda r: r.url.endswith("/evaluate") and r.request.method == "POST"):
        page.get_by_role("button", name="Evaluate", exact=True).click()
    settled(page)
    wait_for_job(page, "evaluate")
    expect(page.get_by_test_id("metrics").locator("[data-metric=roc_auc]")).to_have_text(compared)


def test_across_missions_end_to_end_with_the_ranked_candidates(page: Page):
    """Issue 18 in the browser: Kepler → TESS with logistic regression (quick) and 3 grouped
    folds: the report compares the transfer with both missions' own scores, and the ranked TESS
    candidates download with the caveat in their first line."""
    page.goto("/")
    page.get_by_role("link", name="Across missions").click()
    expect(page).to_have_url(re.compile(r"/missions/$"))
    expect(page.get_by_test_id("vocabulary")).to_contain_text("koi_period")
    page.get_by_label("Kepler Objects of Interest").check()
    page.get_by_label("Test and score on").select_option("tess")
    page.get_by_label("Model").select_option("logistic_regression")
    page.locator("#folds").fill("3")
    page.get_by_role("button", name="Run across missions").click()
    expect(page).to_have_url(re.compile(r"/runs/r[0-9a-f]+/transfer$"))
    cost = page.get_by_test_id("transfer-cost")
    expect(cost).to_be_visible(timeout=JOB_TIMEOUT_MS)
    metrics = page.get_by_test_id("transfer-metrics")
    transferred = float(metrics.locator("[data-transfer=roc_auc]").inner_text())
    own = float(metrics.locator("[data-own-test=roc_auc]").inner_text().split(" ±")[0])
    assert 0.5 < transferred < own < 1  # the shift costs something
    expect(page.get_by_test_id("transfer-features")).to_contain_text("Not shared: brightness: bands differ")
    expect(page.get_by_test_id("plot-transfer-roc")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_test_id("transfer-candidates").click()
    text = Path(download.value.path()).read_text()
    first, header = text.splitlines()[:2]
    assert first.startswith(
        "# Ranked by a model trained on Kepler Objects of Interest, not on TESS Objects of Interest"
    )
    assert header.split(",") == ["rank", "toi", "tid", "planet_probability"]
    ranked = pd.read_csv(io.StringIO(text), comment=None, skiprows=1)
    assert len(ranked) > 1000 and ranked["planet_probability"].is_monotonic_decreasing
    with page.expect_download() as bundle:
        page.get_by_role("link", name="Bundle with its model card (.zip)").click()
    card = zipfile.ZipFile(bundle.value.path()).read("model_card.md").decode()
    assert (
        f"Mission shift, measured: trained on Kepler Objects of Interest, this model scores ROC-AUC {transferred:.3f}"
        in card
    )
    run_id = run_id_of(page)
    page.goto(f"/runs/{run_id}/features")  # such a run has no wizard steps: its page is the report
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/transfer$"))
