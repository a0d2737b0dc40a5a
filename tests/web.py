"""A test browser for the web app: a TestClient that has loaded a page, so it holds a
workspace cookie and sends that workspace's CSRF token with every request, as htmx does."""

import re
import time
from pathlib import Path

from starlette.testclient import TestClient

CSRF = re.compile(r'"X-CSRF-Token": "([0-9a-f]{40})"')


def csrf_of(page_text: str) -> str:
    return CSRF.search(page_text).group(1)


def browser(app, **kwargs) -> TestClient:
    client = TestClient(app, **kwargs)
    return with_csrf(client)


def with_csrf(client: TestClient) -> TestClient:
    client.headers["X-CSRF-Token"] = csrf_of(client.get("/").text)
    return client


HX = {"HX-Request": "true"}


def follow(client: TestClient, path: str, timeout: float = 300):
    """GET a job's status fragment as htmx polls it, until it stops polling; the last answer."""
    deadline = time.monotonic() + timeout
    response = client.get(path, headers=HX)
    while 'hx-trigger="every 1s"' in response.text:
        assert time.monotonic() < deadline, f"{path}: still running after {timeout} s"
        time.sleep(0.3)
        response = client.get(path, headers=HX)
    return response


# for tests about the wizard's plumbing rather than scores: fits KOI in a fraction of a second
QUICK_FORM = {
    "family": "logistic_regression",
    "C": "1.0",
    "penalty": "l2",
    "l1_ratio": "0.5",
    "max_iter": "2000",
    "selection": "none",
    "strength": "1",
}
# 3 folds grouped by host star: Kepler's evaluation plan as the form posts it
PLAN = {
    "method": "kfold",
    "folds": "3",
    "test_size": "0.2",
    "stratified": "on",
    "group_column": "kepid",
    "seed": "42",
}


def kepler_app(root: Path, **settings: object):
    """The web app over fresh storage in ``root`` (embedded worker, 1 MB uploads, unless
    ``settings`` say otherwise), with the Kepler table already read from its export; start it
    with ``TestClient(app)``."""
    from shared.catalog import KEPLER
    from shared.settings import Settings
    from shared.sources import fetch_builtin
    from shared.storage import LocalStorage
    from tests.nasa import KOI_PATH
    from webapp.app import create_app

    chosen = Settings(
        storage_url=str(root / "data"),
        results_url=str(root / "results"),
        threads=2,
        dataset_uris={"kepler": str(KOI_PATH)},
        max_upload_mb=1,
        **settings,
    )
    fetch_builtin(KEPLER, chosen, LocalStorage(root / "data"))
    return create_app(chosen)
