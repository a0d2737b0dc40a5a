"""The local cloud stack (`functions/local_stack.py`, as `make stack` runs it) in the deployed
shape: a job ticket in the jobs bucket invokes the train function once, a redelivered event
runs nothing twice, and status heartbeats and outputs invoke nothing."""

import re
import sys
import time

import httpx2 as httpx
import pytest

from functions.relay import finalize_event
from shared.params import family
from shared.processes import spawn, stop
from shared.runs import ticket_key
from shared.settings import HTTP_FUNCTION_LIMIT_S, SEARCH_RESERVE_S
from tests.browser import wait_healthy
from tests.processes import ROOT, free_port, function_env

pytestmark = pytest.mark.slow
HTMX = {"HX-Request": "true"}


def _model_form(key: str) -> dict[str, str]:
    shown = {p.name: "" if p.default is None else str(p.default) for p in family(key).params}
    return {"family": key, **shown, "selection": "none", "strength": "1"}


def _invocations(logs) -> list[str]:
    """The train function's event instances log one 'event <id>:' line per invocation each."""
    pattern = re.compile(r"train INFO event ([0-9a-f]+):")
    return [
        found for log in sorted(logs.glob("train-event*.log")) for found in pattern.findall(log.read_text())
    ]


def _wait_finished(client: httpx.Client, run_id: str, mode: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/runs/{run_id}/jobs/{mode}", headers=HTMX).text
        if 'data-state="succeeded"' in body or 'data-state="failed"' in body:
            return body
        time.sleep(0.5)
    raise AssertionError(f"{mode} did not finish:\n{body[-2000:]}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stack")
    port = free_port()
    command = [sys.executable, "functions/local_stack.py", "--port", str(port), "--logs", str(folder)]
    process = spawn(command, cwd=ROOT, env=function_env(), log=folder / "stack.out")
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_healthy(url, process, folder / "stack.out", timeout=180)
        deadline = time.monotonic() + 60  # the summary is printed once every part answered
        while "web app" not in (summary := (folder / "stack.out").read_text()):
            assert time.monotonic() < deadline and process.poll() is None, summary[-3000:]
            time.sleep(0.1)
        events_url = re.search(r"train events\s+(http\S+?/)[,\s]", summary).group(1)
        yield {"url": url, "logs": folder, "events_url": events_url}
    finally:
        stop(process)


def test_one_evaluation_is_one_invocation_and_a_redelivery_runs_nothing(stack):
    train_logs = stack["logs"]
    with httpx.Client(base_url=stack["url"], timeout=60) as client:
        page = client.get("/").text
        client.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page).group(1)
        started = client.post("/start", data={"dataset": "kepler"})
        run_id = re.search(r"/runs/(r[0-9a-f]{32})/", started.headers["location"]).group(1)
        assert (
            client.post(f"/runs/{run_id}/model", data=_model_form("logistic_regression")).status_code == 303
        )
        plan = {"method": "kfold", "folds": "3", "stratified": "on", "group_column": "kepid", "seed": "1"}
        assert client.post(f"/runs/{run_id}/evaluate", data=plan).status_code == 200
        body = _wait_finished(client, run_id, "evaluate")
        assert 'data-state="succeeded"' in body, body[-2000:]
        time.sleep(1.5)  # several relay rounds after the job's last writes: none of them may fire
        assert len(_invocations(train_logs)) == 1
        assert body.count("Started") == 1

        # Eventarc delivers at least once: the same ticket's event again finds the job done
        headers, event = finalize_event("mission-control-jobs", ticket_key(run_id, "evaluate", 1), 1, 60)
        assert httpx.post(stack["events_url"], headers=headers, content=event, timeout=60).status_code == 200
        assert len(_invocations(train_logs)) == 2
        again = client.get(f"/runs/{run_id}/jobs/evaluate", headers=HTMX).text
        assert again.count("Started") == 1 and 'data-state="succeeded"' in again


def test_a_default_search_fits_the_deployment(stack):
    """The deployed shape bounds the search budget by what its functions allow: the default
    10 minutes goes over HTTP (up to 3,600 s), never to the 540 s event function."""
    with httpx.Client(base_url=stack["url"], timeout=60) as client:
        page = client.get("/").text
        client.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page).group(1)
        started = client.post("/start", data={"dataset": "kepler"})
        run_id = re.search(r"/runs/(r[0-9a-f]{32})/", started.headers["location"]).group(1)
        most = (HTTP_FUNCTION_LIMIT_S - SEARCH_RESERVE_S) // 60
        model_page = client.get(f"/runs/{run_id}/model").text
        assert 'name="minutes" value="10"' in model_page and f"1 to {most};" in model_page
        refused = client.post(
            f"/runs/{run_id}/model/search", data={"candidates": "8", "minutes": str(most + 1)}
        )
        assert refused.status_code == 400 and f"at most {most}" in refused.text
        before = len(_invocations(stack["logs"]))
        response = client.post(f"/runs/{run_id}/model/search", data={"candidates": "8", "minutes": "10"})
        assert response.status_code == 200
        deadline = time.monotonic() + 30
        while "Started" not in client.get(f"/runs/{run_id}/jobs/search", headers=HTMX).text:
            assert time.monotonic() < deadline, "the search never started"
            time.sleep(0.5)
        assert len(_invocations(stack["logs"])) == before  # not the event function
        assert f"{run_id}/search: Searching" in (stack["logs"] / "train.log").read_text()  # the HTTP one


def test_a_comparison_fans_out_over_the_train_function_instances(stack):
    """Issue 17: one job per family, each taken by whichever train-function instance is idle, as
    the platform would start instances; the board is assembled from their results."""
    families = ["logistic_regression", "hist_gradient_boosting"]
    with httpx.Client(base_url=stack["url"], timeout=60) as client:
        page = client.get("/").text
        client.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page).group(1)
        started = client.post("/start", data={"dataset": "kepler"})
        run_id = re.search(r"/runs/(r[0-9a-f]{32})/", started.headers["location"]).group(1)
        client.get(f"/runs/{run_id}/features")
        board = client.post(f"/runs/{run_id}/compare", data={"family": families}, headers=HTMX).text
        deadline = time.monotonic() + 240
        while 'hx-trigger="every 1s"' in board:
            assert time.monotonic() < deadline, board[-2000:]
            time.sleep(0.5)
            board = client.get(f"/runs/{run_id}/compare", headers=HTMX).text
        states = dict(re.findall(r'<tr data-family="(\w+)" data-state="(\w+)"', board))
        assert states == dict.fromkeys(families, "succeeded"), states
    served = {
        log.name: re.findall(r"train INFO event [0-9a-f]+: .*?/(family-\w+)/", log.read_text())
        for log in sorted(stack["logs"].glob("train-event*.log"))
    }
    assert sorted(f for found in served.values() for f in found) == sorted(f"family-{k}" for k in families)
    assert sum(bool(found) for found in served.values()) == 2, served  # both instances took one
