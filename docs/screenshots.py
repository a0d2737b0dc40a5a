"""Screenshots of the wizard for the docs: docs/01-dataset.png … docs/06-predict.png (1280 x 900).

Starts the app itself (`python -m webapp` on a free port, fresh storage in a temporary folder,
the Kepler KOI table from the snapshot the project carries), drives headless Chromium
through every step and saves one viewport per step. Run from the checkout:

    python docs/screenshots.py            # writes into docs/
    python docs/screenshots.py --out DIR  # or somewhere else

Takes about a minute (two model fits on the KOI table).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
from playwright.sync_api import Locator, Page, expect, sync_playwright  # noqa: E402

from shared.data import read_table_path  # noqa: E402
from tests.browser import VIEWPORT, launch_chromium, start_app, stop_app  # noqa: E402
from tests.nasa import KOI_PATH  # noqa: E402

JOB_TIMEOUT_MS = 300_000


def wait_for_job(page: Page, mode: str) -> None:
    ends = ", ".join(
        f'[data-testid=job-{mode}][data-state="{s}"]' for s in ("succeeded", "failed", "stalled")
    )
    page.wait_for_selector(ends, timeout=JOB_TIMEOUT_MS)
    job = page.get_by_test_id(f"job-{mode}")
    if job.get_attribute("data-state") != "succeeded":
        raise RuntimeError(f"the {mode} job did not succeed:\n{job.inner_text()}")


def scroll_to_top_of(page: Page, locator: Locator, margin: int = 16) -> None:
    """Scroll so the element starts ``margin`` pixels below the top of the viewport."""
    locator.evaluate(
        "(e, m) => window.scrollTo(0, e.getBoundingClientRect().top + window.scrollY - m)", margin
    )


def shoot(page: Page, out: Path, name: str) -> None:
    page.wait_for_timeout(300)  # let transitions and the last htmx swap settle
    path = out / name
    page.screenshot(path=path)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def tour(page: Page, out: Path, work: Path) -> None:
    koi = read_table_path(KOI_PATH)

    # 1 · dataset: the Kepler card, ready from its snapshot
    page.goto("/start")
    card = page.get_by_test_id("dataset-kepler")
    use = card.get_by_role("button", name="Use this dataset")
    expect(use).to_be_visible()
    shoot(page, out, "01-dataset.png")
    use.click()

    # 2 · target and features
    expect(page.get_by_role("heading", level=1)).to_have_text("2 · Target and features")
    expect(page.get_by_test_id("feature-list")).to_be_visible()
    shoot(page, out, "02-features.png")
    page.get_by_role("link", name="Continue: model").click()

    # 3 · model: the inline check of a bad value, shown, then fixed
    expect(page.get_by_role("heading", level=1)).to_have_text("3 · Model and hyperparameters")
    page.get_by_text("Histogram Gradient Boosting", exact=True).click()
    max_iter = page.get_by_label("Max iterations")
    max_iter.fill("abc")
    expect(page.locator("#error-max_iter")).to_contain_text("max_iter")
    scroll_to_top_of(page, page.locator("fieldset.families"), margin=8)
    shoot(page, out, "03-model.png")
    max_iter.fill("100")
    expect(page.locator("#error-max_iter")).to_have_text("")
    page.get_by_role("button", name="Save and continue: evaluate").click()

    # 4 · evaluate: 3-fold cross-validation grouped by host star
    expect(page.get_by_role("heading", level=1)).to_have_text("4 · Evaluate")
    page.get_by_label("Cross-validation").check()
    page.locator("#folds").fill("3")
    page.locator("#group_column").select_option("kepid")
    page.get_by_role("button", name="Evaluate", exact=True).click()
    wait_for_job(page, "evaluate")
    scroll_to_top_of(page, page.get_by_test_id("metrics"))
    shoot(page, out, "04-evaluate.png")
    page.get_by_role("link", name="Continue: train on all data").click()

    # 5 · train on all data and ship
    expect(page.get_by_role("heading", level=1)).to_have_text("5 · Train on all data and ship")
    page.get_by_role("button", name="Train on all data").click()
    wait_for_job(page, "final")
    expect(page.get_by_test_id("final-summary")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, out, "05-ship.png")
    page.get_by_test_id("final-summary").get_by_role("link", name="Predict").click()

    # 6 · predict: one KOI row typed in, and a CSV of 20 rows
    expect(page.get_by_role("heading", level=1)).to_have_text("6 · Predict")
    names = page.locator("form.predict-row input[name]:not([type=hidden])").evaluate_all(
        "els => els.map(e => e.name)"
    )
    first = koi.iloc[0]
    for name in names:
        if pd.notna(first[name]):
            page.locator(f'form.predict-row [name="{name}"]').fill(f"{float(first[name]):g}")
    page.get_by_role("button", name="Predict", exact=True).click()
    expect(page.get_by_test_id("predicted-class")).to_be_visible()
    batch = work / "koi-20.csv"
    koi.head(20)[["kepoi_name", *names]].to_csv(batch, index=False)
    page.locator("#batch-file").set_input_files(batch)
    page.get_by_role("button", name="Predict file").click()
    expect(page.get_by_test_id("predictions-link")).to_be_visible(timeout=60_000)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    shoot(page, out, "06-predict.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs", help="folder for the PNGs (default: docs/)"
    )
    out = parser.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        work = Path(tmp)
        (work / "storage").mkdir()
        server = start_app(work / "storage", work)
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                try:
                    context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
                    context.set_default_timeout(20_000)
                    tour(context.new_page(), out, work)
                finally:
                    browser.close()
        except BaseException:
            print(f"app log:\n{server.log.read_text()[-3000:]}", file=sys.stderr)
            raise
        finally:
            stop_app(server)
    print(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
