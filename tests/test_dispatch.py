"""How the web app hands work to the compute side (webapp/dispatch.py): tickets for the storage
trigger, HTTP for long searches, and a function's answers mapped to what the user sees."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.errors import FunctionRefused, FunctionUnavailable
from shared.runs import EVALUATE, FAILED, SEARCH, read_status, request_job, ticket_key
from shared.settings import EVENT_FUNCTION_LIMIT_S, SEARCH_RESERVE_S, Settings, SettingsError
from shared.storage import LocalStorage
from tests.processes import free_port
from tests.runs_setup import koi_run_spec
from webapp.dispatch import Dispatcher


class FakeFunction:
    """A function that answers every POST with a fixed status and JSON body, and keeps the bodies."""

    def __init__(self, status: int, body: dict) -> None:
        self.received: list[dict] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def function(request):
    status, body = request.param
    fake = FakeFunction(status, body)
    yield fake
    fake.close()


def _dispatcher(tmp_path, **settings) -> tuple[Dispatcher, LocalStorage]:
    results = LocalStorage(tmp_path / "results")
    return Dispatcher(Settings(results_url=str(tmp_path / "results"), **settings), results), results


@pytest.mark.parametrize(
    ("function", "error", "message"),
    [
        (
            (400, {"error": "missing feature columns: koi_period"}),
            FunctionRefused,
            r"^missing feature columns: koi_period$",
        ),
        (
            (404, {"error": "run r1 has not been trained on all data yet"}),
            FunctionRefused,
            r"not been trained",
        ),
        (
            (500, {"error": "boom"}),
            FunctionUnavailable,
            r"the predict function failed \(HTTP 500\); try again",
        ),
        ((503, {}), FunctionUnavailable, r"the predict function failed \(HTTP 503\); try again"),
    ],
    indirect=["function"],
)
def test_a_functions_answer_maps_to_what_the_user_sees(tmp_path, function, error, message):
    dispatcher, _ = _dispatcher(
        tmp_path, train_trigger="http", train_url="http://127.0.0.1:9/", predict_url=function.url
    )
    with pytest.raises(error, match=message) as raised:
        dispatcher.predict_rows("r" + "0" * 32, [{"koi_period": 1}])
    if error is FunctionRefused:
        assert raised.value.status == function.status
    assert function.received == [{"run_id": "r" + "0" * 32, "rows": [{"koi_period": 1}], "explain": False}]


def test_a_function_that_is_down_is_unavailable_not_a_crash(tmp_path):
    down = f"http://127.0.0.1:{free_port()}/"
    dispatcher, _ = _dispatcher(tmp_path, train_trigger="http", train_url=down, predict_url=down)
    with pytest.raises(
        FunctionUnavailable, match=r"the predict function did not answer; try again in a minute"
    ):
        dispatcher.predict_rows("r" + "0" * 32, [{}])


@pytest.mark.parametrize(
    "function", [(400, {"error": "the run's spec is invalid: no target"})], indirect=True
)
def test_a_job_its_function_refused_is_failed_with_the_functions_message(tmp_path, function):
    dispatcher, results = _dispatcher(
        tmp_path, train_trigger="http", train_url=function.url, predict_url=function.url
    )
    job = request_job(results, "r" + "1" * 32, EVALUATE, koi_run_spec(["koi_period"]))
    dispatcher.start(job)
    deadline = time.monotonic() + 10
    while (status := read_status(results, job.run_id, EVALUATE)[0]).state != FAILED:
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert status.message == "the run's spec is invalid: no target"
    assert function.received == [{"run_id": job.run_id, "mode": EVALUATE}]


@pytest.mark.parametrize("function", [(200, {"state": "succeeded"})], indirect=True)
def test_storage_trigger_writes_one_ticket_and_sends_long_searches_over_http(tmp_path, function):
    jobs = LocalStorage(tmp_path / "jobs")
    dispatcher, results = _dispatcher(
        tmp_path, train_trigger="storage", jobs_url=str(tmp_path / "jobs"), train_url=function.url
    )
    spec = koi_run_spec(["koi_period"])
    evaluation = request_job(results, "r" + "2" * 32, EVALUATE, spec)
    dispatcher.start(evaluation)
    assert jobs.list() == [ticket_key(evaluation.run_id, EVALUATE, 1)]
    assert json.loads(jobs.read_bytes(jobs.list()[0])) == {
        "run_id": evaluation.run_id,
        "mode": EVALUATE,
        "attempt": 1,
    }

    fits = (EVENT_FUNCTION_LIMIT_S - SEARCH_RESERVE_S) // 60
    short = request_job(results, "r" + "3" * 32, SEARCH, spec, options={"minutes": fits})
    long = request_job(results, "r" + "4" * 32, SEARCH, spec, options={"minutes": fits + 1})
    dispatcher.start(short)
    dispatcher.start(long)
    assert ticket_key(short.run_id, SEARCH, 1) in jobs.list() and len(jobs.list()) == 2
    deadline = time.monotonic() + 10
    while function.received != [{"run_id": long.run_id, "mode": SEARCH}]:
        assert time.monotonic() < deadline, function.received
        time.sleep(0.05)


def test_settings_for_the_deployed_shape(tmp_path):
    with pytest.raises(SettingsError, match=r"TRAIN_TRIGGER=storage needs JOBS_URL, a bucket of its own"):
        _dispatcher(tmp_path, train_trigger="storage")
    with pytest.raises(SettingsError, match=r"JOBS_URL=gs://b/jobs: must be a bucket of its own"):
        Settings.from_env({"STORAGE_URL": "gs://b/data", "JOBS_URL": "gs://b/jobs"})
    with pytest.raises(SettingsError, match=r"MAX_UPLOAD_MB=50: Cloud Run refuses requests over 32 MiB"):
        Settings.from_env({"APP_MODE": "cloud", "MAX_UPLOAD_MB": "50"})
    assert Settings.from_env({"APP_MODE": "cloud"}).max_upload_mb == 31
    assert Settings.from_env({}).max_upload_mb == 50
    event_only = Settings.from_env({"APP_MODE": "cloud", "JOBS_URL": "gs://j"})
    assert event_only.train_trigger == "storage" and event_only.search_minutes_max == 7
    assert "540 s" in event_only.search_minutes_reason
    both = Settings.from_env(
        {"APP_MODE": "cloud", "JOBS_URL": "gs://j", "TRAIN_TRIGGER": "storage", "TRAIN_URL": "http://t/"}
    )
    assert both.search_minutes_max == 58 and "3600 s" in both.search_minutes_reason
    assert (
        Settings.from_env({}).search_minutes_max == 60 and Settings.from_env({}).search_minutes_reason == ""
    )
