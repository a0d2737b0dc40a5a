"""Faults, for real: a worker or a train function killed mid-run, storage going away and coming
back, two evaluations started at once, and writers killed half-way through an object.

Jobs here are small (three KOI features, logistic regression, a holdout split) so that the
faults, not the fits, take the time. The staleness window is lowered to a few seconds: in this
process by patching ``shared.runs``, in workers and functions by ``JOB_STALE_AFTER_S``.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from functions.emulator import Emulator
from shared import runs
from shared.errors import BundleError, CorruptObject, ObjectNotFound
from shared.runs import (
    EVALUATE,
    RUNNING,
    SUCCEEDED,
    Status,
    create_run,
    job_key,
    load_meta,
    load_spec,
    new_run_id,
    new_workspace_id,
    read_request,
    read_status,
    request_job,
    run_key,
    update_spec,
)
from shared.settings import Settings
from shared.spec import RunSpec
from shared.storage import GCSStorage, LocalStorage
from shared.worker import LocalWorker
from tests.nasa import KOI_PATH
from tests.processes import ROOT, free_port, function_env, start_function
from tests.runs_setup import koi_run_spec, load_koi, start_run
from tests.web import browser

pytestmark = pytest.mark.slow
HX = {"HX-Request": "true"}
STALE_S = 4.0  # the lowered staleness window (the default is 90 s)
FEW = ["koi_period", "koi_depth", "koi_prad"]
QUICK_MODEL = {"family": "logistic_regression", "params": {}}
HOLDOUT = {"method": "holdout", "folds": "5", "test_size": "0.2", "stratified": "on", "group_column": "kepid"}
UNREACHABLE = "Storage is unreachable right now, so this cannot be done. Try again shortly."


@pytest.fixture(scope="module")
def koi_root(tmp_path_factory):
    """Local data storage holding the KOI table, shared by this module's web apps."""
    root = tmp_path_factory.mktemp("faults-data")
    load_koi(LocalStorage(root))
    return root


@pytest.fixture
def quick_stale(monkeypatch):
    monkeypatch.setenv("JOB_STALE_AFTER_S", str(STALE_S))  # for the workers and functions started below
    monkeypatch.setattr(runs, "STALE_AFTER_S", STALE_S)  # for judging staleness here


def _app(data_url: str, results_url: str):
    from webapp.app import create_app

    settings = Settings(
        storage_url=data_url, results_url=results_url, threads=1, dataset_uris={"kepler": str(KOI_PATH)}
    )
    return create_app(settings)


def _quick_run(client: TestClient, results) -> str:
    """A KOI run through the wizard's first steps, narrowed to a job that takes seconds."""
    started = client.post("/start", data={"dataset": "kepler"}, headers=HX)
    assert started.status_code == 204, started.text[:300]
    run_id = re.search(r"/runs/(r[0-9a-f]{32})/", started.headers["HX-Redirect"]).group(1)
    assert client.get(f"/runs/{run_id}/features").status_code == 200  # fills the target and defaults
    update_spec(results, run_id, lambda spec: {**spec, "features": FEW, "model": QUICK_MODEL})
    return run_id


def _wait(results, run_id: str, until, what: str, timeout: float = 120) -> Status:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status, _ = read_status(results, run_id, EVALUATE)
        if status is not None and until(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"{run_id}: {what} did not happen within {timeout} s; last status {status}")


def _pid(status: Status) -> int:
    """The process that claimed the job: a status records its worker as host:pid."""
    return int(status.worker.rsplit(":", 1)[1])


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("PPid:")).split()[1])


def _lines(status: Status) -> list[str]:
    return [text for _, text in status.lines]


def _metrics(results, run_id: str) -> dict:
    return json.loads(results.read_bytes(job_key(run_id, EVALUATE, "metrics.json")))


# --- a worker killed mid-run ---------------------------------------------------------------------


def test_local_worker_replaces_a_killed_process_and_resubmits_what_was_queued(tmp_path):
    worker = LocalWorker()
    try:
        first = worker.submit(os.getpid).result(timeout=60)
        busy = worker.submit(time.sleep, 60)
        queued_marker = tmp_path / "queued-ran"
        queued = worker.submit(queued_marker.touch, resubmit_if_broken=True)
        os.kill(first, signal.SIGKILL)
        for future in (busy, queued):
            with pytest.raises(BrokenProcessPool):
                future.result(timeout=30)
        second = worker.submit(os.getpid).result(timeout=60)  # a fresh process, not the broken pool
        assert second != first
        deadline = time.monotonic() + 60
        while not queued_marker.exists():  # the call queued behind the killed one ran after all
            assert time.monotonic() < deadline, "the queued call was not resubmitted"
            time.sleep(0.05)
        dead = worker.submit(os.kill, second, signal.SIGKILL)  # dies inside its own call
        with pytest.raises(BrokenProcessPool):
            dead.result(timeout=30)
        assert worker.submit(os.getpid).result(timeout=60) not in (first, second)
    finally:
        worker.shutdown()


def test_killed_worker_shows_stalled_and_a_restart_succeeds(koi_root, tmp_path, quick_stale):
    app = _app(str(koi_root), str(tmp_path / "results"))
    results = app.state.results
    with browser(app) as client:
        run_id = _quick_run(client, results)
        assert client.post(f"/runs/{run_id}/evaluate", data=HOLDOUT, headers=HX).status_code == 200
        running = _wait(results, run_id, lambda s: s.state == RUNNING, "the claim")
        killed = _pid(running)
        assert _parent_of(killed) == os.getpid()  # the embedded worker, a child of this process
        os.kill(killed, signal.SIGKILL)
        killed_at = time.monotonic()

        page = client.get(f"/runs/{run_id}/jobs/evaluate", headers=HX)
        while 'data-state="stalled"' not in page.text:
            assert time.monotonic() - killed_at < STALE_S + 10, page.text[:500]
            time.sleep(0.2)
            page = client.get(f"/runs/{run_id}/jobs/evaluate", headers=HX)
        assert "Stalled: the worker stopped reporting. Restart the run to try again" in page.text
        assert 'hx-trigger="every 10s"' in page.text  # still asked about, slowly: a recovery shows
        assert "every 1s" not in page.text and '<input type="hidden" name="restart" value="1">' in page.text
        stalled, _ = read_status(results, run_id, EVALUATE)
        assert stalled.state == RUNNING and stalled.attempt == 1 and not stalled.finished
        with pytest.raises(ObjectNotFound):
            _metrics(results, run_id)

        # the same dispatcher hands the restart to a new worker process
        restarted = client.post(f"/runs/{run_id}/jobs/evaluate", data={"restart": "1"}, headers=HX)
        assert restarted.status_code == 200 and "Not started" not in restarted.text
        done = _wait(results, run_id, lambda s: s.finished, "the restarted job")
        assert done.state == SUCCEEDED, done.message
        assert done.attempt == 2 and _pid(done) != killed and _lines(done).count("Started") == 1
        assert _metrics(results, run_id)["spec"]["features"] == FEW
        page = client.get(f"/runs/{run_id}/jobs/evaluate", headers=HX)
        assert 'data-state="succeeded"' in page.text and "(run 2 of this job)" in page.text


def test_killed_train_function_goes_stale_and_a_fresh_process_restarts_it(
    gcs_emulator, tmp_path, quick_stale
):
    bucket = gcs_emulator.new_bucket()
    data, results = GCSStorage(bucket, "data"), GCSStorage(bucket, "results")
    load_koi(data)
    env = function_env(
        STORAGE_URL=data.url,
        RESULTS_URL=results.url,
        STORAGE_EMULATOR_HOST=gcs_emulator.url,
        COMPUTE_THREADS="1",
        JOB_STALE_AFTER_S=str(STALE_S),
    )
    source = ROOT / "functions/train/main.py"
    spec = koi_run_spec(FEW, model=QUICK_MODEL, evaluation={"method": "holdout", "test_size": 0.2})
    run_id = start_run(results, spec, EVALUATE)
    first = start_function(source, "train_http", env, tmp_path)
    second = None
    try:
        answers = []

        def call() -> None:
            try:
                answers.append(httpx.post(first.url, json={"run_id": run_id, "mode": EVALUATE}, timeout=120))
            except httpx.HTTPError as error:
                answers.append(error)

        caller = threading.Thread(target=call)
        caller.start()
        running = _wait(results, run_id, lambda s: s.state == RUNNING, "the claim")
        killed = _pid(running)
        assert _parent_of(killed) == first.process.pid  # the function's (gunicorn) worker process
        os.kill(killed, signal.SIGKILL)
        caller.join(timeout=60)
        assert len(answers) == 1 and not (
            getattr(answers[0], "status_code", None) == 200 and answers[0].json()["state"] == SUCCEEDED
        ), answers
        first.stop()  # the instance is gone

        second = start_function(source, "train_http", env, tmp_path)  # meanwhile the status goes stale
        stale = _wait(results, run_id, lambda s: s.stale, "staleness", timeout=STALE_S + 30)
        assert stale.state == RUNNING and stale.attempt == 1 and _pid(stale) == killed
        request = request_job(results, run_id, EVALUATE, spec)  # what the web app's Restart does
        assert request.attempt == 2
        answer = httpx.post(second.url, json={"run_id": run_id, "mode": EVALUATE}, timeout=120)
        assert answer.status_code == 200 and answer.json()["state"] == SUCCEEDED, answer.text
    finally:
        first.stop()
        if second is not None:
            second.stop()
    done, _ = read_status(results, run_id, EVALUATE)
    assert done.state == SUCCEEDED and done.attempt == 2 and _pid(done) not in (killed, os.getpid())
    assert _lines(done).count("Started") == 1
    assert _metrics(results, run_id)["spec"] == read_request(results, run_id, EVALUATE).spec


# --- storage unreachable --------------------------------------------------------------------------


def _assert_unavailable(response, *, htmx: bool, retries: str | None) -> None:
    assert response.status_code == 503, response.text[:500]
    assert response.headers["Retry-After"] == "5" and "HX-Request" in response.headers["Vary"]
    assert UNREACHABLE in response.text and "Traceback" not in response.text
    assert "gs://" not in response.text and "file:" not in response.text  # no storage location
    assert ("<html" in response.text) is not htmx
    if htmx:
        assert ('hx-trigger="load delay:5s"' in response.text) is (retries is not None)
        if retries:
            assert f'hx-get="{retries}"' in response.text
    elif retries:
        assert '<meta http-equiv="refresh" content="5">' in response.text


def test_storage_outage_answers_503_and_the_app_recovers(tmp_path, monkeypatch):
    """fake-gcs-server stopped and started again on the same port, over the same folder."""
    from shared.storage import gcs

    emulator = Emulator(tmp_path / "gcs", free_port())
    emulator.start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
        monkeypatch.setattr(gcs, "RETRY_DEADLINE_S", 2.0)
        emulator.client().create_bucket("outage")
        load_koi(GCSStorage("outage", "data"))
        app = _app("gs://outage/data", "gs://outage/results")
        client = browser(app)  # no job is started: the worker pool never exists
        run_id = _quick_run(client, app.state.results)
        spec = load_spec(app.state.results, run_id)
        page = f"/runs/{run_id}/features"

        emulator.stop()
        for headers in ({}, HX):
            started = time.monotonic()
            response = client.get(page, headers=headers)
            assert time.monotonic() - started < 2.0 + 5
            _assert_unavailable(response, htmx=bool(headers), retries=page)
        toggled = client.post(
            f"/runs/{run_id}/features/toggle", data={"column": "koi_period", "on": "0"}, headers=HX
        )
        _assert_unavailable(toggled, htmx=True, retries=None)  # a POST is never repeated by itself

        emulator.start()
        again = client.get(page)
        assert again.status_code == 200 and "koi_disposition" in again.text
        assert load_spec(app.state.results, run_id) == spec  # the run is intact
        assert run_id[:9] in client.get("/runs/").text
    finally:
        emulator.stop()


def test_local_storage_folder_gone_answers_503_and_the_app_recovers(koi_root, tmp_path):
    results = tmp_path / "results"
    app = _app(str(koi_root), str(results))
    client = browser(app)
    run_id = _quick_run(client, app.state.results)
    spec = load_spec(app.state.results, run_id)
    page = f"/runs/{run_id}/features"
    results.rename(tmp_path / "away")
    _assert_unavailable(client.get(page), htmx=False, retries=page)
    _assert_unavailable(client.get(page, headers=HX), htmx=True, retries=page)
    toggled = client.post(
        f"/runs/{run_id}/features/toggle", data={"column": "koi_period", "on": "0"}, headers=HX
    )
    _assert_unavailable(toggled, htmx=True, retries=None)
    assert not results.exists()  # nothing quietly started an empty storage folder
    (tmp_path / "away").rename(results)
    assert client.get(page).status_code == 200
    assert load_spec(app.state.results, run_id) == spec


# --- two evaluations started at once ------------------------------------------------------------


class _MeetAtStatusWrite:
    """The results storage of one app, whose first write of an evaluate status waits until the
    other app's request gets there too: both have read the same status before either writes."""

    def __init__(self, inner, barrier: threading.Barrier) -> None:
        self._inner, self._barrier, self._met = inner, barrier, False

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def write_bytes(self, key, data, **kwargs):
        if key.endswith(f"/{EVALUATE}/status.json") and not self._met:
            self._met = True
            self._barrier.wait()
        return self._inner.write_bytes(key, data, **kwargs)


def _post_together(posts) -> list:
    answers = [None] * len(posts)

    def post(i):
        answers[i] = posts[i]()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(posts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return answers


def _one_wins(answers, refusal: str):
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text[:300] for a in answers]
    winner = next(a for a in answers if a.status_code == 200)
    loser = next(a for a in answers if a.status_code == 409)
    assert 'data-testid="job-evaluate"' in winner.text and "Not started" not in winner.text
    assert refusal in loser.text, loser.text[:500]


def _consistent_and_done_once(results, run_id: str, attempt: int) -> None:
    done = _wait(results, run_id, lambda s: s.finished, "the evaluation")
    assert done.state == SUCCEEDED and done.attempt == attempt, done
    assert _lines(done) == ["Queued", "Started", *_lines(done)[2:]] and _lines(done).count("Started") == 1
    request = read_request(results, run_id, EVALUATE)
    assert request.attempt == attempt
    assert request.spec == RunSpec.from_dict(load_spec(results, run_id)).to_dict()
    assert _metrics(results, run_id)["spec"] == request.spec


def test_two_evaluations_at_once_one_wins_and_nothing_is_corrupted(koi_root, tmp_path, monkeypatch):
    """Two app instances (as on Cloud Run) over one storage, the same browser clicking in both."""
    results_url = str(tmp_path / "results")
    apps = [_app(str(koi_root), results_url) for _ in range(2)]
    barrier = threading.Barrier(2, timeout=30)
    started = []
    for app in apps:
        app.state.results = _MeetAtStatusWrite(app.state.results, barrier)
        dispatcher = app.state.dispatcher
        monkeypatch.setattr(
            dispatcher, "start", lambda *a, start=dispatcher.start: (started.append(a), start(*a))
        )
    first = browser(apps[0])
    second = TestClient(
        apps[1], cookies=first.cookies, headers={"X-CSRF-Token": first.headers["X-CSRF-Token"]}
    )
    with first, second:
        results = apps[0].state.results
        run_id = _quick_run(first, results)
        evaluate = f"/runs/{run_id}/evaluate"
        answers = _post_together(
            [
                lambda: first.post(evaluate, data=HOLDOUT, headers=HX),
                lambda: second.post(evaluate, data=HOLDOUT, headers=HX),
            ]
        )
        _one_wins(answers, "Not started: the evaluate job of this run was just started elsewhere.")
        assert [(job.run_id, job.mode) for (job,) in started] == [(run_id, EVALUATE)]  # handed on once
        _consistent_and_done_once(results, run_id, attempt=1)

        # and twice at once in one app instance: its thread pool runs both requests at once; the
        # loser either finds the job queued or loses the status write ("just started elsewhere")
        answers = _post_together([lambda: first.post(evaluate, data=HOLDOUT, headers=HX)] * 2)
        _one_wins(answers, "Not started: the evaluate job of this run ")
        assert len(started) == 2
        _consistent_and_done_once(results, run_id, attempt=2)


# --- atomic writes --------------------------------------------------------------------------------

# A child process writing a 1 MiB-per-read object that never ends: it says "half" once the first
# part is in storage's temporary file, then waits to be killed.
WRITER = """
import sys, time
from shared.storage import LocalStorage

class Endless:
    def __init__(self):
        self.reads = 0
    def read(self, size=-1):
        self.reads += 1
        if self.reads == 2:
            print("half", flush=True)
            time.sleep(120)
        return b"x" * (1 << 20)

LocalStorage(sys.argv[1]).upload_file(sys.argv[2], Endless())
"""


@pytest.mark.parametrize("existing", [True, False], ids=["replacing", "creating"])
def test_a_writer_killed_mid_write_leaves_the_old_object_or_none(tmp_path, existing):
    root = tmp_path / "store"
    store = LocalStorage(root)
    key = "runs/r1/final/bundle.zip"
    before = store.write_bytes(key, b"the old bundle") if existing else None
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), key], stdout=subprocess.PIPE, cwd=ROOT, env=function_env()
    )
    try:
        assert child.stdout.readline() == b"half\n"
        partial = [p for p in root.rglob(".tmp-*")]
        assert len(partial) == 1 and partial[0].stat().st_size == 1 << 20  # the crash is mid-write
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    if existing:
        assert store.read_with_generation(key) == (b"the old bundle", before)
    else:
        with pytest.raises(ObjectNotFound):
            store.read_bytes(key)
    assert store.list() == ([key] if existing else [])  # the leftover temporary file is no object
    assert store.write_bytes(key, b"new") > (before or 0) and store.read_bytes(key) == b"new"


def test_truncated_run_documents_are_refused(tmp_path):
    store = LocalStorage(tmp_path / "store")
    spec = koi_run_spec(FEW)
    run_id = create_run(store, new_workspace_id(), "kepler", "Kepler objects of interest", spec.to_dict())
    request_job(store, run_id, EVALUATE, spec)
    readers = {
        run_key(run_id, "spec.json"): lambda: load_spec(store, run_id),
        run_key(run_id, "meta.json"): lambda: load_meta(store, run_id),
        job_key(run_id, EVALUATE, "request.json"): lambda: read_request(store, run_id, EVALUATE),
    }
    for key, read in readers.items():
        whole = store.read_bytes(key)
        read()
        for cut in (0, 1, len(whole) // 2, len(whole) - 1):
            store.write_bytes(key, whole[:cut])
            with pytest.raises(CorruptObject, match=re.escape(f"{store.uri(key)} is damaged")):
                read()
        store.write_bytes(key, whole)
    status_key = job_key(run_id, EVALUATE, "status.json")
    whole = store.read_bytes(status_key)
    for cut in (0, 1, len(whole) // 2, len(whole) - 1):  # a status reads as damaged, so Restart works
        store.write_bytes(status_key, whole[:cut])
        assert read_status(store, run_id, EVALUATE)[0].damaged
    spec_key = run_key(run_id, "spec.json")
    store.write_bytes(spec_key, store.read_bytes(spec_key)[:-10])
    with pytest.raises(CorruptObject):
        update_spec(store, run_id, lambda s: {**s, "features": ["koi_period"]})
    assert len(store.read_bytes(spec_key)) == len(json.dumps(spec.to_dict())) - 10  # not overwritten


def test_truncated_bundle_is_refused(koi, koi_kinds):
    from shared.bundle import build_metadata, read_bundle, write_bundle
    from shared.evaluation import train_final

    spec = koi_run_spec(FEW, model=QUICK_MODEL)
    pipe, prepared, _ = train_final(koi, spec, koi_kinds)
    metadata = build_metadata(pipe, spec, prepared, koi_kinds, run_id=new_run_id(), data_sha256="0" * 64)
    bundle = write_bundle(pipe, metadata)
    assert read_bundle(bundle).metadata["features"] == FEW
    for cut in (0, 100, len(bundle) // 2, len(bundle) - 22, len(bundle) - 1):
        with pytest.raises(BundleError, match="not a model bundle"):
            read_bundle(bundle[:cut])
