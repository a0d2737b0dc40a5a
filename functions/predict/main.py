"""The predict function: batch prediction with a trained run's model over HTTP.

Input, with the run named by `run_id` (query string, form field or JSON):
- multipart/form-data with a CSV in the `file` field, or a CSV body (text/csv);
- JSON {"run_id": ..., "rows": [{column: value, ...}, ...]}, with "explain": true for each
  row's top feature contributions (SHAP for tree models; at most 20 rows);
- JSON {"run_id": ..., "uri": "gs://<data bucket>/uploads/..."} for a CSV already uploaded to
  storage (requests are capped at 32 MiB): the output is written next to it and its URI returned;
- JSON {"run_id": ..., "mode": "batch"}: run the run's requested batch prediction job (the web
  app's "Predict file"), reporting progress in its status, to its end.
Output: CSV with the input's key columns, `prediction` and one `probability_<class>` per class.
"""

import logging
import shutil
import tempfile

import flask
import functions_framework
from werkzeug.exceptions import RequestEntityTooLarge

from shared.errors import DataError, InvalidKey
from shared.predict import ModelNotReady, csv_bytes, load_model, predict_csv, predict_rows, predict_stored
from shared.requests import drop, parse_json
from shared.runs import BATCH, check_run_id
from shared.settings import Settings
from shared.storage import open_storage, validate_key

logging.basicConfig(level=logging.INFO, format="%(asctime)s predict %(levelname)s %(message)s")
SETTINGS = Settings.from_env()
DATA = open_storage(SETTINGS.storage_url)
RESULTS = open_storage(SETTINGS.results_url)
SPOOL_BYTES = 8 * 1024 * 1024
MAX_REQUEST_BYTES = 32 * 1024 * 1024  # as Cloud Functions' own limit for an HTTP request
LARGER = "upload the CSV to storage's uploads/ folder and send its uri instead"
STORAGE_BASE = DATA.uri("uploads/x").removesuffix("uploads/x")  # e.g. gs://bucket/prefix/


def _error(status: int, message: str) -> flask.Response:
    return flask.make_response(flask.jsonify(error=message), status)


def _csv_response(spool) -> flask.Response:
    spool.seek(0)

    def chunks():
        with spool:
            while block := spool.read(1024 * 1024):
                yield block

    return flask.Response(
        chunks(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="predictions.csv"'},
    )


@functions_framework.http
def predict_http(request: flask.Request) -> flask.Response:
    if request.method != "POST":
        return _error(405, "POST a CSV file, JSON rows or a storage URI with a run_id")
    request.max_content_length = MAX_REQUEST_BYTES  # our own cap, not only the platform's
    try:
        return _predict(request)
    except RequestEntityTooLarge:
        _drop_body(request)
        return _error(413, f"the request is over {MAX_REQUEST_BYTES // 2**20} MiB; {LARGER}")


def _drop_body(request: flask.Request) -> None:
    """Drop the refused body: functions-framework reads every request's whole body into memory
    after answering, which is what the cap is there to stop."""
    drop(request.environ.get("wsgi.input"))
    request.max_content_length = None  # the framework's read now finds an empty stream


def _json_body(request: flask.Request) -> object:
    """The JSON body (None if there is none); DataError for JSON that cannot be read."""
    return parse_json(request.get_data(cache=True)) if request.is_json else None


def _predict(request: flask.Request) -> flask.Response:
    try:
        body = _json_body(request)
    except DataError as error:
        return _error(400, str(error))
    if body is not None and not isinstance(body, dict):
        return _error(400, f"the JSON body must be an object, not {type(body).__name__}")
    run_id = request.args.get("run_id") or request.form.get("run_id") or (body or {}).get("run_id")
    if body is not None and "mode" in body:
        return _run_job(run_id, body["mode"])
    try:
        bundle = load_model(RESULTS, check_run_id(run_id))
        if body is not None and "rows" in body:
            out = predict_rows(bundle, body["rows"], explain=body.get("explain") is True)
            if request.accept_mimetypes.best == "application/json":
                return flask.Response(out.to_json(orient="records"), mimetype="application/json")
            return flask.Response(csv_bytes(out), mimetype="text/csv")
        if body is not None and "uri" in body:
            return flask.jsonify(uri=_predict_stored(bundle, body["uri"]))
        source = request.files.get("file")
        stream = (
            source.stream
            if source is not None
            else (request.stream if request.mimetype == "text/csv" else None)
        )
        if stream is None:
            return _error(400, "send a CSV (multipart field 'file' or a text/csv body), JSON rows or a uri")
        # closed by the response's generator once streamed, or here on error
        output = tempfile.SpooledTemporaryFile(SPOOL_BYTES)  # noqa: SIM115
        try:
            with tempfile.TemporaryFile() as upload:
                shutil.copyfileobj(stream, upload)
                upload.seek(0)
                predict_csv(bundle, upload, output)
        except BaseException:
            output.close()
            raise
        return _csv_response(output)
    except InvalidKey as error:
        return _error(400, str(error))
    except ModelNotReady as error:
        return _error(409 if error.found else 404, str(error))
    except DataError as error:
        return _error(400, str(error))


def _run_job(run_id: object, mode: object) -> flask.Response:
    from shared.jobs import run_requested  # the job code loads scikit-learn: not at a cold start

    status, answer = run_requested(run_id, mode, DATA, RESULTS, SETTINGS, (BATCH,))
    return flask.make_response(flask.jsonify(answer), status)


def _predict_stored(bundle, uri: object) -> str:
    """A CSV in our own data storage under uploads/; the output goes next to it."""
    if not isinstance(uri, str) or not uri.startswith(STORAGE_BASE):
        raise DataError(f"uri must name a CSV uploaded to this app's storage ({STORAGE_BASE}uploads/...)")
    key = validate_key(uri[len(STORAGE_BASE) :])
    if not key.startswith("uploads/"):
        raise DataError("uri must point into uploads/")
    return DATA.uri(predict_stored(bundle, DATA, key)[0])
