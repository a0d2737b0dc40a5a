"""Driving the wizard in a browser: the steps a person takes, as helpers for the browser tests."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from shared.bundle import read_bundle

RUN_URL = re.compile(r"/runs/(r[0-9a-f]+)/(\w+)$")
JOB_TIMEOUT_MS = 240_000


def settled(page: Page) -> None:
    """Until htmx has swapped, settled and processed the new content (a person never types
    within those milliseconds; a test can, and its keystrokes would go unheard)."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )


def evaluate_quickly(page: Page, run_id: str) -> None:
    """Evaluate with 3 grouped folds and without permutation importance."""
    page.goto(f"/runs/{run_id}/evaluate")
    settled(page)
    page.locator("#folds").fill("3")
    page.get_by_label("Feature importance").uncheck()
    with page.expect_response(lambda r: r.url.endswith("/evaluate") and r.request.method == "POST"):
        page.get_by_role("button", name="Evaluate", exact=True).click()
    settled(page)  # the new job's fragment has replaced the previous result
    wait_for_job(page, "evaluate")


def run_id_of(page: Page) -> str:
    match = RUN_URL.search(page.url)
    assert match, f"not on a run's step: {page.url}"
    return match.group(1)


def use_builtin(page: Page, dataset: str, rows: int, start: str = "/start") -> str:
    """From a page showing the dataset cards: start a run on a built-in table (from its snapshot:
    the archive is unreachable here)."""
    page.goto(start)
    card = page.get_by_test_id(f"dataset-{dataset}")
    expect(card).to_contain_text(f"{rows:,} rows")
    expect(card.get_by_test_id("source")).to_contain_text(
        "Snapshot of 2025-10-04 from the NASA Exoplanet Archive"
    )
    card.get_by_role("button", name="Use this dataset").click()
    expect(page).to_have_url(re.compile(r"/runs/r[0-9a-f]+/features$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("2 · Target and features")
    return run_id_of(page)


def use_kepler(page: Page, rows: int) -> str:
    return use_builtin(page, "kepler", rows)


def save_logistic_regression(page: Page, run_id: str) -> None:
    """From the features step: choose logistic regression (quick to fit) and go on to evaluate."""
    page.get_by_role("link", name="Continue: model").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/model$"))
    page.get_by_text("Logistic Regression", exact=True).click()
    expect(page.locator("#model-params legend")).to_have_text("Logistic Regression: hyperparameters")
    settled(page)
    page.get_by_role("button", name="Save and continue: evaluate").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/evaluate$"))


def wait_for_job(page: Page, mode: str) -> None:
    """Until the self-replacing status fragment reaches an end state; it must be 'succeeded'."""
    ends = ", ".join(
        f'[data-testid=job-{mode}][data-state="{s}"]' for s in ("succeeded", "failed", "stalled")
    )
    page.wait_for_selector(ends, timeout=JOB_TIMEOUT_MS)
    job = page.get_by_test_id(f"job-{mode}")
    assert job.get_attribute("data-state") == "succeeded", job.inner_text()


def train_and_download_bundle(page, run_id: str):
    """Train on all data from the ship step and read the bundle the page offers."""
    page.goto(f"/runs/{run_id}/ship")
    page.get_by_role("button", name="Train on all data").click()
    wait_for_job(page, "final")
    with page.expect_download() as download:
        page.get_by_test_id("final-summary").get_by_role("link", name="Download bundle (.zip)").click()
    return read_bundle(Path(download.value.path()).read_bytes())
