"""Tables too big for a request (Cloud Run refuses over 32 MiB) come in from storage: the user
copies the file into imports/ and names it on the start page. Only a plain file name in that
folder is accepted; the original stays; nothing else is read."""

import re

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from shared.settings import Settings
from shared.storage import LocalStorage
from tests.loop_watch import BACKEND, LoopWatch
from tests.web import browser

HX = {"HX-Request": "true"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from webapp.app import create_app

    root = tmp_path_factory.mktemp("imports")
    settings = Settings(storage_url=str(root / "data"), results_url=str(root / "results"), max_import_mb=1)
    application = create_app(settings)
    with TestClient(application):
        yield application


@pytest.fixture
def client(app):
    watch = LoopWatch(app)
    yield browser(watch, backend_options=BACKEND)
    watch.check()


@pytest.fixture(scope="module")
def data(app):
    return LocalStorage(app.state.settings.storage_url)


def _table(rows: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "star": [f"S{i % 40}" for i in range(rows)],
            "period": rng.uniform(1, 300, rows),
            "label": rng.choice(["a", "b"], rows),
        }
    )
    return frame.to_csv(index=False).encode()


def test_start_page_says_where_to_put_a_big_table(client, data):
    page = client.get("/start").text
    assert re.search(r'data-testid="imports-uri">[^<]*imports/</code>', page)
    assert f"{data.url}/imports/" in page


def test_a_table_copied_into_imports_starts_a_run(client, data):
    data.write_bytes("imports/survey-2.csv", _table(300, 1))
    response = client.post("/import", data={"name": "survey-2.csv"}, headers=HX)
    assert response.status_code == 204, response.text[-800:]
    run_id = re.search(r"/runs/(r[0-9a-f]{32})/dataset", response.headers["HX-Location"]).group(1)
    page = client.get(f"/runs/{run_id}/dataset").text
    assert "300 rows × 3 columns" in page and "survey-2.csv" in page
    assert data.exists("imports/survey-2.csv")  # the original stays where the user put it


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", r"Give the name of a file you copied into imports/"),
        ("../results/runs", r"is not a file name in imports/"),
        ("sub/folder.csv", r"is not a file name in imports/"),
        ("with space.csv", r"no spaces or folders"),
        ("..csv", r"is not a file name in imports/"),
        ("/etc/passwd", r"is not a file name in imports/"),
        ("gs://other-bucket/x.csv", r"is not a file name in imports/"),
        ("missing.csv", r"There is no missing.csv in .*imports/: copy it there first"),
    ],
)
def test_anything_but_a_file_in_imports_is_refused_by_name(client, name, problem):
    response = client.post("/import", data={"name": name}, headers=HX)
    assert response.status_code == 400
    assert re.search(problem, response.text.replace("&#39;", "'")), response.text[-1500:]
    assert 'data-testid="import-error"' in response.text


def test_an_import_over_its_limit_is_refused_and_nothing_is_stored(client, data):
    big = _table(50_000, 2)
    assert len(big) > 1024 * 1024
    data.write_bytes("imports/big.csv", big)
    before = set(data.list("datasets/"))
    response = client.post("/import", data={"name": "big.csv"}, headers=HX)
    assert response.status_code == 400
    assert "more than the 1 MB import limit (MAX_IMPORT_MB)" in response.text
    assert set(data.list("datasets/")) == before
