"""Damaged job and run records: said plainly, never a traceback, and a damaged status restarts.

A job's status record overwritten with garbage (a crashed writer, a bad copy, a hand edit) reads
as a failed job saying its record is damaged, and Restart replaces it by a compare-and-swap on
the damaged record's generation. A run's own record (meta.json) damaged names the run as damaged
to the browser whose workspace lists it, and is a 404 to everyone else. Looking never writes.
"""

import html
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from shared.errors import CorruptObject, PreconditionFailed
from shared.runs import (
    DAMAGED_STATUS,
    EVALUATE,
    FAILED,
    QUEUED,
    STATUS,
    DamagedRun,
    JobConflict,
    RunSpec,
    job_key,
    load_meta,
    load_spec,
    read_request,
    read_status,
    request_job,
    run_key,
)
from tests.web import HX, PLAN, QUICK_FORM, browser, follow, kepler_app

pytestmark = pytest.mark.slow

GARBAGE = {
    "bytes": b"\x00\xff\xfe not json at all \x89PNG",
    "cut-short": b'{"state": "succeeded", "attempt": 1, "lines": [["2024-',
    "not-an-object": b'["succeeded", 1]',
    "unknown-state": b'{"state": "exploded", "attempt": 1}',
    "wrong-types": b'{"state": "running", "attempt": "one", "progress": "half", "lines": "x"}',
    "unknown-field": b'{"state": "failed", "attempt": 1, "owner": "someone"}',
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    application = kepler_app(tmp_path_factory.mktemp("hardening"))
    with TestClient(application):
        yield application


@pytest.fixture
def client(app):
    return browser(app)


def _new_run(client) -> str:
    started = client.post("/start", data={"dataset": "kepler"}, headers=HX)
    return re.fullmatch(r"/runs/(r[0-9a-f]{32})/features", started.headers["HX-Redirect"]).group(1)


def _evaluated(client) -> str:
    run_id = _new_run(client)
    client.get(f"/runs/{run_id}/features")
    client.post(f"/runs/{run_id}/model", data=QUICK_FORM, headers=HX)
    client.post(f"/runs/{run_id}/evaluate", data=PLAN, headers=HX)
    done = follow(client, f"/runs/{run_id}/jobs/evaluate")
    assert 'data-state="succeeded"' in done.text, done.text[:2000]
    return run_id


def _stored(app) -> dict[str, bytes]:
    """Every object in the results and data storage, by path."""
    found = {}
    for name in ("results", "storage"):
        root = Path(getattr(app.state, name).url)
        for path in root.rglob("*"):
            if path.is_file() and not path.name.startswith("."):  # temporary files, locks, the key
                found[f"{name}:{path.relative_to(root)}"] = path.read_bytes()
    return found


@pytest.fixture(scope="module")
def evaluated_once(app):
    """One evaluated run, its browser, and the untouched status record to restore between cases."""
    client = browser(app)
    run_id = _evaluated(client)
    key = job_key(run_id, EVALUATE, STATUS)
    return client, run_id, app.state.results.read_bytes(key)


@pytest.mark.parametrize("garbage", list(GARBAGE), ids=list(GARBAGE))
def test_a_damaged_status_shows_as_failed_with_restart_and_changes_nothing(app, evaluated_once, garbage):
    client, run_id, whole = evaluated_once
    results = app.state.results
    key = job_key(run_id, EVALUATE, STATUS)
    results.write_bytes(key, GARBAGE[garbage])
    try:
        before = _stored(app)
        status, generation = read_status(results, run_id, EVALUATE)
        assert status.damaged and status.state == FAILED and status.message == DAMAGED_STATUS
        assert generation == results.read_with_generation(key)[1]
        assert status.attempt == read_request(results, run_id, EVALUATE).attempt  # a restart takes the next
        for headers in (HX, {}):
            fragment = client.get(f"/runs/{run_id}/jobs/evaluate", headers=headers)
            assert fragment.status_code == 200, fragment.text[:500]
            text = html.unescape(fragment.text)
            assert (
                'data-state="failed"' in text
                and "This job's status record is damaged; Restart to run it again" in text
            )
            assert 'name="restart" value="1"' in text and "every 1s" not in text
            assert "Traceback" not in text and "status.json" not in text
        step = client.get(f"/runs/{run_id}/evaluate")  # the step page holding the fragment opens too
        assert step.status_code == 200 and "status record is damaged" in html.unescape(step.text)
        assert client.get("/runs/").status_code == 200  # and the run list
        plain = client.post(f"/runs/{run_id}/jobs/evaluate", headers=HX)  # a start that is not a restart
        assert plain.status_code == 409 and "damaged" in html.unescape(plain.text)
        assert _stored(app) == before  # looking (and a refused start) wrote nothing
    finally:
        results.write_bytes(key, whole)


def test_restart_replaces_a_damaged_status_and_runs_the_job_again(app, client):
    run_id = _evaluated(client)
    results = app.state.results
    key = job_key(run_id, EVALUATE, STATUS)
    results.write_bytes(key, GARBAGE["bytes"])
    before = _stored(app)
    restarted = client.post(f"/runs/{run_id}/jobs/evaluate", data={"restart": "1"}, headers=HX)
    assert restarted.status_code == 200 and 'hx-trigger="every 1s"' in restarted.text
    done = follow(client, f"/runs/{run_id}/jobs/evaluate")
    assert 'data-state="succeeded"' in done.text and "(run 2 of this job)" in done.text
    status, _ = read_status(results, run_id, EVALUATE)
    assert status.state == "succeeded" and not status.damaged and status.attempt == 2
    after = _stored(app)
    changed = {k for k in before if after.get(k) != before[k]} | (set(after) - set(before))
    job_folder = f"results:runs/{run_id}/{EVALUATE}/"
    assert changed and all(k.startswith(job_folder) for k in changed), changed  # only this job's records


def test_request_job_overwrites_a_damaged_status_by_compare_and_swap(app, client):
    run_id = _new_run(client)
    results = app.state.results
    spec = RunSpec.from_dict(
        {
            **load_spec(results, run_id),
            "target": "koi_disposition",
            "features": ["koi_period"],
            "model": {"family": "logistic_regression"},
        }
    )
    key = job_key(run_id, EVALUATE, STATUS)
    results.write_bytes(key, b'{"state": "running", "attempt": 4')  # cut short: no request to say more
    with pytest.raises(JobConflict, match="damaged"):
        request_job(results, run_id, EVALUATE, spec)  # not a restart: refused, record kept
    assert results.read_bytes(key) == b'{"state": "running", "attempt": 4'

    class Interloper:
        """Storage where someone else rewrites the status between its read and the swap."""

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def write_bytes(self, target, data, **kwargs):
            if target == key:
                self.inner.write_bytes(key, b"someone else's garbage")
            return self.inner.write_bytes(target, data, **kwargs)

    with pytest.raises(JobConflict, match="just started elsewhere"):
        request_job(Interloper(results), run_id, EVALUATE, spec, restart=True)
    assert results.read_bytes(key) == b"someone else's garbage"  # the swap lost: nothing overwritten

    _, generation = read_status(results, run_id, EVALUATE)
    with pytest.raises(PreconditionFailed):  # the generation read_status gives is the record's own
        results.write_bytes(
            key, b"{}", if_generation_match=generation - 1 if generation > 1 else generation + 1
        )
    request = request_job(results, run_id, EVALUATE, spec, restart=True)
    status, _ = read_status(results, run_id, EVALUATE)
    assert status.state == QUEUED and not status.damaged and status.attempt == request.attempt == 2
    assert read_request(results, run_id, EVALUATE).attempt == 2


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\xff garbage",
        b'{"workspace": "w',
        b'{"workspace": 7, "dataset": "kepler", "dataset_name": "x", "created": "t"}',
    ],
    ids=["bytes", "cut-short", "wrong-types"],
)
def test_a_damaged_run_record_names_the_run_to_its_owner_and_is_404_to_others(app, client, garbage):
    results = app.state.results
    run_id = _new_run(client)  # made, and its record damaged before any page of it was opened
    other = _new_run(client)
    results.write_bytes(run_key(run_id, "meta.json"), garbage)
    with pytest.raises(DamagedRun) as raised:
        load_meta(results, run_id)
    assert isinstance(raised.value, CorruptObject) and raised.value.run_id == run_id
    before = _stored(app)
    for headers, page in ((HX, False), ({}, True)):
        for path in (f"/runs/{run_id}/features", f"/runs/{run_id}/jobs/evaluate", f"/runs/{run_id}/evaluate"):
            answer = client.get(path, headers=headers)
            assert answer.status_code == 500, (path, answer.text[:500])
            assert answer.headers["content-type"] == "text/html; charset=utf-8"
            assert "script-src 'self'" in answer.headers["content-security-policy"]
            text = html.unescape(answer.text)
            assert 'data-testid="damaged-run"' in text and f"Run {run_id} is damaged" in text
            assert "Traceback" not in text and "meta.json" not in text and str(results.url) not in text
            assert ("<!doctype html>" in text) is page
    stranger = browser(app)
    for headers in (HX, {}):
        refused = stranger.get(f"/runs/{run_id}/features", headers=headers)
        assert refused.status_code == 404 and "No such run." in refused.text and run_id not in refused.text
    assert client.get(f"/runs/{other}/features").status_code == 200  # the browser's other runs still open
    listed = client.get("/runs/")  # the run list still opens, and names the damaged run
    assert listed.status_code == 200 and f'href="/runs/{other}/features"' in listed.text
    assert "its record is damaged" in listed.text and run_id[:9] in listed.text
    assert _stored(app) == before  # nothing written, nothing removed
