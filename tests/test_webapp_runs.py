"""Run jobs from the web app: start, the self-replacing status fragment, restart, downloads.

The web app hands the job to the embedded worker (a separate process), as `make run` does.
"""

import io
import time
import zipfile
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from shared.runs import EVALUATE, FINAL, RUNNING, new_run_id, read_status, save_spec, write_status
from shared.settings import Settings
from shared.storage import LocalStorage
from tests.runs_setup import koi_run_spec, load_koi

HX = {"HX-Request": "true"}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app_client(tmp_path_factory):
    from webapp.app import create_app

    root = tmp_path_factory.mktemp("webapp-runs")
    load_koi(LocalStorage(root / "data"))
    app = create_app(Settings(storage_url=str(root / "data"), results_url=str(root / "results"), threads=2))
    with TestClient(app) as client:  # runs the lifespan: the worker shuts down at the end
        yield client, app.state.results


def _new_run(results, spec):
    run_id = new_run_id()
    save_spec(results, run_id, spec.to_dict())
    return run_id


def _follow(client, response, timeout=300):
    status_path = response.request.url.path
    deadline = time.monotonic() + timeout
    while 'hx-trigger="every 1s"' in response.text:
        assert time.monotonic() < deadline
        time.sleep(0.3)
        response = client.get(status_path, headers=HX)
    return response


def test_final_job_runs_in_the_worker_and_offers_the_bundle(app_client):
    client, results = app_client
    spec = koi_run_spec(
        ["koi_period", "koi_depth", "koi_prad", "koi_model_snr"],
        label_mapping={"CANDIDATE": None},
        score_classes=["CANDIDATE"],
        positive_class="CONFIRMED",
        label_setup="confirmed_vs_fp",
    )
    run_id = _new_run(results, spec)
    assert client.get(f"/runs/{run_id}/jobs/final", headers=HX).text.count("Not started yet") == 1
    started = client.post(f"/runs/{run_id}/jobs/final", headers=HX)
    assert started.status_code == 200 and started.template.name == "_job_status.html"
    assert 'hx-trigger="every 1s"' in started.text  # polls while it runs
    done = _follow(client, started)
    assert 'data-state="succeeded"' in done.text and "every 1s" not in done.text  # polling stopped
    assert "Bundle written" in done.text and "Ranked 1,979 CANDIDATE rows" in done.text
    bundle = client.get(f"/runs/{run_id}/bundle.zip")
    assert bundle.headers["content-type"] == "application/zip"
    assert "model.skops" in zipfile.ZipFile(io.BytesIO(bundle.content)).namelist()
    ranked = client.get(f"/runs/{run_id}/candidates.csv")
    assert ranked.status_code == 200 and ranked.text.startswith("rank,kepoi_name,kepid")
    assert len(ranked.text.strip().splitlines()) == 1979 + 1
    page = client.get(f"/runs/{run_id}/jobs/final")
    assert page.template.name == "job.html" and "Download bundle (.zip)" in page.text


def test_second_start_is_refused_and_a_stalled_run_can_be_restarted(app_client):
    client, results = app_client
    run_id = _new_run(results, koi_run_spec(["koi_period", "koi_depth"]))
    # pretend a worker claimed it and died
    first = client.post(f"/runs/{run_id}/jobs/evaluate", headers=HX)
    _follow(client, first)
    twice = client.post(f"/runs/{run_id}/jobs/evaluate", headers=HX)
    assert (
        twice.status_code == 409
        and "Not started: the evaluate job of this run is already succeeded" in twice.text
    )
    status, generation = read_status(results, run_id, EVALUATE)
    write_status(
        results, run_id, EVALUATE, replace(status, state=RUNNING, heartbeat=time.time() - 3600), generation
    )
    stalled = client.get(f"/runs/{run_id}/jobs/evaluate", headers=HX)
    assert "Stalled: the worker stopped reporting" in stalled.text and ">Restart<" in stalled.text
    assert "every 1s" not in stalled.text
    restarted = _follow(
        client, client.post(f"/runs/{run_id}/jobs/evaluate", data={"restart": "1"}, headers=HX)
    )
    assert 'data-state="succeeded"' in restarted.text and "(attempt 2)" in restarted.text


def test_incomplete_spec_and_unknown_runs(app_client):
    client, results = app_client
    run_id = new_run_id()
    save_spec(results, run_id, {"dataset": "kepler", "target": "koi_disposition", "features": []})
    response = client.post(f"/runs/{run_id}/jobs/evaluate", headers=HX)
    assert response.status_code == 400
    assert "The run&#39;s settings are not complete: features: [] must be a non-empty list" in response.text
    for path in (
        f"/runs/{new_run_id()}/jobs/final",
        "/runs/..%2fetc/jobs/final",
        f"/runs/{run_id}/jobs/deploy",
        f"/runs/{run_id}/bundle.zip",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
    assert "train it on all data first" in client.get(f"/runs/{run_id}/bundle.zip").text
    assert client.post(f"/runs/{new_run_id()}/jobs/final").status_code == 404
    assert read_status(results, run_id, FINAL) == (None, 0)
