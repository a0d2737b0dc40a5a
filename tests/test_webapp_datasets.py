"""The datasets pages: cards with source and date, refreshing with progress, label setups."""

import re
import time

import pytest

from shared.settings import Settings
from tests.archive_server import archive_server
from tests.nasa import KOI_PATH, TESS_PATH
from tests.web import browser

__all__ = ["archive_server"]
HX = {"HX-Request": "true"}
OFFLINE = "http://127.0.0.1:9/TAP/sync"  # nothing may be downloaded


def _client(tmp_path, **settings):
    return browser(create_app_with(tmp_path, **settings))


def create_app_with(tmp_path, **settings):
    from webapp.app import create_app

    return create_app(Settings(storage_url=str(tmp_path / "storage"), **settings))


def _refresh(client, dataset_id, timeout=30.0):
    """Press Refresh, then poll the card the way the page does until it stops polling."""
    response = client.post(f"/datasets/{dataset_id}/fetch", headers=HX)
    assert response.status_code == 200
    deadline = time.monotonic() + timeout
    while 'hx-trigger="every 1s"' in response.text:
        assert time.monotonic() < deadline, "the card kept polling"
        time.sleep(0.2)
        response = client.get(f"/datasets/{dataset_id}/card", headers=HX)
    return response


def _use(client, dataset_id, **headers):
    return client.post("/start", data={"dataset": dataset_id}, headers=headers, follow_redirects=False)


def _runs(client) -> list[str]:
    return re.findall(r"/runs/(r[0-9a-f]{32})/features", client.get("/runs/").text)


def test_index_full_page_and_partial_show_the_snapshots(tmp_path):
    client = _client(tmp_path, archive_tap_url=OFFLINE)
    page = client.get("/datasets/")
    assert page.template.name == "datasets.html"
    assert "HX-Request" in page.headers["Vary"].split(", ")
    for name in ("Kepler Objects of Interest", "K2 Planets and Candidates", "TESS Objects of Interest"):
        assert name in page.text
    text = " ".join(page.text.split())
    assert (
        text.count('Snapshot of <time datetime="2025-10-04">2025-10-04</time> from the NASA Exoplanet') == 3
    )
    assert "9,564 rows × 49 columns" in text and "1,806 rows × 94 columns" in text
    assert (
        text.count("Use this dataset</button>") == 3 and text.count("Refresh from the archive</button>") == 3
    )
    partial = client.get("/datasets/", headers=HX)
    assert partial.template.name == "_dataset_cards.html"
    assert "<html" not in partial.text and "Kepler Objects of Interest" in partial.text


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain form"])
def test_use_this_dataset_from_the_datasets_page_starts_a_run_there(tmp_path, htmx):
    client = _client(tmp_path, archive_tap_url=OFFLINE)
    client.get("/datasets/")
    response = _use(client, "tess", **(HX if htmx else {}))
    if htmx:  # the datasets page has no wizard to swap into: htmx loads the step as a whole page
        assert response.status_code == 204
        url = response.headers["HX-Redirect"]
    else:
        assert response.status_code == 303
        url = response.headers["location"]
    assert re.fullmatch(r"/runs/r[0-9a-f]{32}/features", url)
    features = client.get(url)
    assert features.status_code == 200 and "tfopwg_disp" in features.text
    assert _runs(client) == [url.split("/")[2]]  # exactly the run the user lands on
    card = client.get("/datasets/tess/card")
    assert "Snapshot of" in card.text and "shipped with the project" in card.text


def test_environment_variable_is_read_on_first_use(tmp_path):
    client = _client(tmp_path, dataset_uris={"kepler": str(KOI_PATH)}, archive_tap_url=OFFLINE)
    assert "Read from <code>KEPLER_URI</code> when you first use it." in client.get("/datasets/").text
    assert _use(client, "kepler", **HX).status_code == 204
    card = client.get("/datasets/kepler/card", headers=HX)
    assert card.template.name == "_dataset_card.html"
    assert "9,564 rows × 49 columns" in card.text
    assert "CONFIRMED 2,746" in card.text and "Read from <code>KEPLER_URI</code> on" in card.text
    assert str(KOI_PATH) not in card.text  # URIs never reach the browser
    assert ">Reload from KEPLER_URI<" in card.text


def test_unreadable_environment_variable_is_named_on_the_card_and_no_run_is_made(tmp_path):
    missing = tmp_path / "gone.csv"
    client = _client(tmp_path, dataset_uris={"k2": str(missing)}, archive_tap_url=OFFLINE)
    client.get("/start")
    response = _use(client, "k2", **HX)
    assert response.status_code == 400 and response.template.name == "_dataset_card.html"
    assert "K2_URI could not be read: No such file" in response.text
    assert str(missing) not in response.text
    assert _runs(client) == []


def test_refresh_from_the_archive_shows_the_date(tmp_path, archive_server):
    client = _client(tmp_path, archive_tap_url=archive_server.tap_url)
    card = _refresh(client, "k2")
    assert "1,806 rows × 94 columns" in card.text
    text = " ".join(card.text.split())
    assert (
        "Downloaded from the NASA Exoplanet Archive (table <code>k2pandc</code>) on <time datetime=" in text
    )
    assert archive_server.hits["k2pandc"] == 1
    full = client.get("/datasets/k2/card")  # the card is also a page of its own
    assert full.template.name == "dataset_card.html" and "1,806 rows" in full.text


def test_unreachable_archive_is_said_plainly_and_the_snapshot_stays(tmp_path, archive_server):
    archive_server.fail_with = 503
    client = _client(tmp_path, archive_tap_url=archive_server.tap_url)
    card = _refresh(client, "tess")
    assert 'role="alert"' in card.text
    assert "The NASA Exoplanet Archive could not be reached (it answered HTTP 503)" in card.text
    assert "Upload the table yourself, or set TESS_URI" in card.text
    assert "Snapshot of" in card.text and ">Refresh from the archive<" in card.text  # can be retried
    assert _use(client, "tess", **HX).status_code == 204  # the snapshot still works
    # the same storage, now with TESS_URI set: the archive's error is not this source's
    configured = _client(
        tmp_path, archive_tap_url=archive_server.tap_url, dataset_uris={"tess": str(TESS_PATH)}
    )
    card = configured.get("/datasets/tess/card")
    assert "could not be reached" not in card.text and "TESS_URI" in card.text


def test_detail_page_shows_setups_and_excluded_columns(tmp_path):
    client = _client(tmp_path, archive_tap_url=OFFLINE)
    page = client.get("/datasets/kepler")
    assert page.template.name == "dataset.html"
    assert "Planet-like vs false positive." in page.text and ">Use this dataset<" in page.text
    assert "PLANET 4,725" in page.text
    assert 'koi_score</code> <span class="badge leak">leakage</span>' in page.text
    assert "the Robovetter&#39;s disposition score" in page.text
    partial = client.get("/datasets/kepler?setup=confirmed_vs_fp", headers=HX)
    assert partial.template.name == "_dataset_setup.html"
    assert "1,979 rows to rank afterwards (CANDIDATE)" in partial.text
    assert "CONFIRMED 2,746, FALSE POSITIVE 4,839" in partial.text


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/datasets/nope", 404, "No such built-in dataset."),
        ("/datasets/kepler?setup=binary", 400, "'binary' is not a label setup of Kepler Objects of Interest"),
        ("/datasets/..%2f..%2fetc/card", 404, "Not Found"),
    ],
)
def test_bad_requests_are_named(tmp_path, path, status, message):
    client = _client(tmp_path, archive_tap_url=OFFLINE)
    response = client.get(path)
    assert response.status_code == status
    assert message in response.text
