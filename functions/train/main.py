"""The train function: an HTTP entry point and a storage-finalize CloudEvent entry point.

Both run the same job code (shared.jobs.run_job) for a run whose request is in storage.
Deploy `train_http` with an HTTP trigger and `train_event` with an Eventarc trigger on
google.cloud.storage.object.v1.finalized for the results bucket.
"""

import logging

import flask
import functions_framework
from cloudevents.http import CloudEvent

from shared.errors import InvalidKey, ObjectNotFound
from shared.jobs import run_job
from shared.runs import check_mode, check_run_id, parse_request_name
from shared.settings import Settings
from shared.storage import open_storage

logging.basicConfig(level=logging.INFO, format="%(asctime)s train %(levelname)s %(message)s")
log = logging.getLogger("train")
SETTINGS = Settings.from_env()
DATA = open_storage(SETTINGS.storage_url)
RESULTS = open_storage(SETTINGS.results_url)
FINALIZED = "google.cloud.storage.object.v1.finalized"


def _error(status: int, message: str) -> flask.Response:
    return flask.make_response(flask.jsonify(error=message), status)


@functions_framework.http
def train_http(request: flask.Request) -> flask.Response:
    """POST {"run_id": ..., "mode": "evaluate" | "final"}: run that job to its end."""
    if request.method != "POST":
        return _error(405, "POST a JSON object with run_id and mode")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object with run_id and mode")
    try:
        run_id, mode = check_run_id(body.get("run_id")), check_mode(body.get("mode"))
    except InvalidKey as error:
        return _error(400, str(error))
    try:
        status = run_job(run_id, mode, DATA, RESULTS, threads=SETTINGS.threads)
    except ObjectNotFound:
        return _error(404, f"run {run_id} has no {mode} job request")
    return flask.jsonify(run_id=run_id, mode=mode, state=status.state, message=status.message)


@functions_framework.cloud_event
def train_event(event: CloudEvent) -> None:
    """A finalized object in the results bucket: if it is a job request, run that job."""
    data = event.data if isinstance(event.data, dict) else {}
    name = _relative(data.get("bucket"), data.get("name"))
    job = parse_request_name(name) if event["type"] == FINALIZED and name else None
    if job is None:
        log.info("ignoring %s for %s/%s", event["type"], data.get("bucket"), data.get("name"))
        return
    try:
        run_job(*job, DATA, RESULTS, threads=SETTINGS.threads)
    except ObjectNotFound:
        log.warning("the request %s vanished before it could run", name)


def _relative(bucket: object, name: object) -> str | None:
    """The object's key inside our results storage, or None for other buckets and prefixes."""
    base = RESULTS.url.removeprefix("gs://").rstrip("/")
    bucket_name, _, prefix = base.partition("/")
    if bucket != bucket_name or not isinstance(name, str):
        return None
    return (
        name.removeprefix(f"{prefix}/")
        if prefix and name.startswith(f"{prefix}/")
        else (None if prefix else name)
    )
