"""The train function: an HTTP entry point and a storage-finalize CloudEvent entry point.

Both run the same job code (shared.jobs.run_job) for a run whose request is in storage.
Deploy `train_http` with an HTTP trigger (jobs up to 3,600 s) and `train_event` with an
Eventarc trigger on google.cloud.storage.object.v1.finalized for the jobs bucket (JOBS_URL),
where the web app writes one ticket per job and nothing else is written: status updates and
outputs go to the results bucket and invoke nothing.
"""

import logging

import flask
import functions_framework
from cloudevents.http import CloudEvent
from werkzeug.exceptions import RequestEntityTooLarge

from shared.errors import DataError, ObjectNotFound
from shared.jobs import run_job, run_requested
from shared.requests import drop, parse_json
from shared.runs import MODES, parse_ticket_name
from shared.settings import Settings
from shared.storage import open_storage

logging.basicConfig(level=logging.INFO, format="%(asctime)s train %(levelname)s %(message)s")
log = logging.getLogger("train")
SETTINGS = Settings.from_env()
DATA = open_storage(SETTINGS.storage_url)
RESULTS = open_storage(SETTINGS.results_url)
JOBS = open_storage(SETTINGS.jobs_url) if SETTINGS.jobs_url else None
FINALIZED = "google.cloud.storage.object.v1.finalized"
MAX_REQUEST_BYTES = 64 * 1024  # a run id and a mode


def _error(status: int, message: str) -> flask.Response:
    return flask.make_response(flask.jsonify(error=message), status)


@functions_framework.http
def train_http(request: flask.Request) -> flask.Response:
    """POST {"run_id": ..., "mode": "evaluate" | "final"}: run that job to its end."""
    if request.method != "POST":
        return _error(405, "POST a JSON object with run_id and mode")
    request.max_content_length = MAX_REQUEST_BYTES
    try:
        body = parse_json(request.get_data(cache=True))
    except RequestEntityTooLarge:
        drop(request.environ.get("wsgi.input"))  # not into memory, as the framework would
        request.max_content_length = None
        return _error(413, f"the request is over {MAX_REQUEST_BYTES:,} bytes; send only run_id and mode")
    except DataError as error:
        return _error(400, str(error))
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object with run_id and mode")
    status, answer = run_requested(body.get("run_id"), body.get("mode"), DATA, RESULTS, SETTINGS, MODES)
    return flask.make_response(flask.jsonify(answer), status)


@functions_framework.cloud_event
def train_event(event: CloudEvent) -> None:
    """A finalized object in the jobs bucket: a job ticket names the job to run. A redelivered
    event finds the job claimed (or finished) and does nothing."""
    data = event.data if isinstance(event.data, dict) else {}
    log.info("event %s: %s for %s/%s", event["id"], event["type"], data.get("bucket"), data.get("name"))
    if JOBS is None:
        log.error("JOBS_URL is not set: this function cannot tell job tickets from other objects")
        return
    name = _relative(JOBS, data.get("bucket"), data.get("name"))
    job = parse_ticket_name(name) if event["type"] == FINALIZED and name else None
    if job is None:
        log.info("not a job ticket; ignored")
        return
    try:
        run_job(*job, DATA, RESULTS, threads=SETTINGS.threads, time_limit_s=SETTINGS.job_timeout_s)
    except ObjectNotFound:
        log.warning("the ticket %s names a job that was never requested", name)


def _relative(storage, bucket: object, name: object) -> str | None:
    """The object's key inside `storage`, or None for other buckets and prefixes."""
    base = storage.url.removeprefix("gs://").rstrip("/")
    bucket_name, _, prefix = base.partition("/")
    if bucket != bucket_name or not isinstance(name, str):
        return None
    return (
        name.removeprefix(f"{prefix}/")
        if prefix and name.startswith(f"{prefix}/")
        else (None if prefix else name)
    )
