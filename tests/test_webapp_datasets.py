"""The datasets pages: cards with source and date, loading with progress, label setups."""

import time

import pytest

from shared.settings import Settings
from tests.archive_server import archive_server
from tests.nasa import KOI_PATH
from tests.web import browser

__all__ = ["archive_server"]
HX = {"HX-Request": "true"}


def _client(tmp_path, **settings):
    return browser(create_app_with(tmp_path, **settings))


def create_app_with(tmp_path, **settings):
    from webapp.app import create_app

    return create_app(Settings(storage_url=str(tmp_path / "storage"), **settings))


def _load(client, dataset_id, timeout=30.0):
    """Press Load, then poll the card the way the page does until it stops polling."""
    response = client.post(f"/datasets/{dataset_id}/fetch", headers=HX)
    assert response.status_code == 200
    deadline = time.monotonic() + timeout
    while 'hx-trigger="every 1s"' in response.text:
        assert time.monotonic() < deadline, "the card kept polling"
        time.sleep(0.2)
        response = client.get(f"/datasets/{dataset_id}/card", headers=HX)
    return response


def test_index_full_page_and_partial(tmp_path):
    client = _client(tmp_path)
    page = client.get("/datasets/")
    assert page.template.name == "datasets.html"
    assert "HX-Request" in page.headers["Vary"].split(", ")
    for name in ("Kepler Objects of Interest", "K2 Planets and Candidates", "TESS Objects of Interest"):
        assert name in page.text
    assert page.text.count("Not loaded yet") == 3
    partial = client.get("/datasets/", headers=HX)
    assert partial.template.name == "_dataset_cards.html"
    assert "<html" not in partial.text and "Kepler Objects of Interest" in partial.text


def test_load_from_environment_variable(tmp_path):
    client = _client(tmp_path, dataset_uris={"kepler": str(KOI_PATH)})
    assert "read from <code>KEPLER_URI</code>" in client.get("/datasets/").text
    card = _load(client, "kepler")
    assert card.template.name == "_dataset_card.html"
    assert "9,564 rows × 49 columns" in card.text
    assert "CONFIRMED 2,746" in card.text and "Read from <code>KEPLER_URI</code>" in card.text
    assert str(KOI_PATH) not in card.text  # URIs never reach the browser
    assert ">Refresh<" in card.text


def test_download_from_archive_shows_the_date(tmp_path, archive_server):
    client = _client(tmp_path, archive_tap_url=archive_server.tap_url)
    card = _load(client, "k2")
    assert "1,806 rows × 94 columns" in card.text
    text = " ".join(card.text.split())
    assert "Downloaded from the NASA Exoplanet Archive (TAP) on <time datetime=" in text
    assert archive_server.hits["k2pandc"] == 1
    full = client.get("/datasets/k2/card")  # the card is also a page of its own
    assert full.template.name == "dataset_card.html" and "1,806 rows" in full.text


def test_unreachable_archive_is_said_plainly_and_nothing_else_breaks(tmp_path, archive_server):
    archive_server.fail_with = 503
    client = _client(tmp_path, archive_tap_url=archive_server.tap_url, dataset_uris={"kepler": str(KOI_PATH)})
    card = _load(client, "tess")
    assert 'role="alert"' in card.text
    assert "The NASA Exoplanet Archive could not be reached (it answered HTTP 503)" in card.text
    assert "Upload the table yourself, or set TESS_URI" in card.text
    assert ">Load<" in card.text  # can be retried
    assert "9,564 rows" in _load(client, "kepler").text  # other datasets still load
    assert client.get("/datasets/").status_code == 200


def test_detail_page_shows_setups_and_excluded_columns(tmp_path):
    client = _client(tmp_path, dataset_uris={"kepler": str(KOI_PATH)})
    _load(client, "kepler")
    page = client.get("/datasets/kepler")
    assert page.template.name == "dataset.html"
    assert "Planet-like vs false positive." in page.text
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
    client = _client(tmp_path, dataset_uris={"kepler": str(KOI_PATH)})
    _load(client, "kepler")
    response = client.get(path)
    assert response.status_code == status
    assert message in response.text
