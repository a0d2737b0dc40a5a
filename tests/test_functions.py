"""The train and predict functions as real functions-framework processes over HTTP, with a
real fake-gcs-server, a crafted storage-finalize CloudEvent, and the embedded worker path."""

import io
import json
import time

import httpx2 as httpx
import numpy as np
import pandas as pd
import pytest

from functions.relay import finalize_event
from shared.evaluation import train_final
from shared.profile import column_kinds, profile_table
from shared.runs import EVALUATE, FINAL, SUCCEEDED, job_key, new_run_id, read_status, ticket_key
from shared.storage import GCSStorage, LocalStorage
from shared.worker import LocalWorker, run
from tests.processes import ROOT, function_env, start_function
from tests.runs_setup import KOI_PREDICTION_COLUMNS, SMALL_FOREST, koi_run_spec, load_koi, start_run
from tests.web import with_csrf

pytestmark = pytest.mark.slow
FINALIZED = "google.cloud.storage.object.v1.finalized"


@pytest.fixture(scope="module")
def cloud(gcs_emulator, tmp_path_factory):
    """fake-gcs-server plus the three entry points as functions-framework processes."""
    bucket, jobs_bucket = gcs_emulator.new_bucket(), gcs_emulator.new_bucket()
    env = function_env(
        STORAGE_URL=f"gs://{bucket}/data",
        RESULTS_URL=f"gs://{bucket}/results",
        JOBS_URL=f"gs://{jobs_bucket}",
        STORAGE_EMULATOR_HOST=gcs_emulator.url,
        COMPUTE_THREADS="2",
    )
    logs = tmp_path_factory.mktemp("function-logs")
    servers = {
        "train_http": start_function(ROOT / "functions/train/main.py", "train_http", env, logs),
        "train_event": start_function(
            ROOT / "functions/train/main.py", "train_event", env, logs, signature="cloudevent"
        ),
        "predict_http": start_function(ROOT / "functions/predict/main.py", "predict_http", env, logs),
    }
    data, results = GCSStorage(bucket, "data"), GCSStorage(bucket, "results")
    load_koi(data)
    yield {
        "bucket": bucket,
        "jobs_bucket": jobs_bucket,
        "data": data,
        "results": results,
        **{k: s.url for k, s in servers.items()},
    }
    for server in servers.values():
        server.stop()


def _finalize_event(url: str, bucket: str, name: str, generation: int) -> httpx.Response:
    """A storage-finalize CloudEvent in binary content mode, as Eventarc delivers it."""
    headers, body = finalize_event(bucket, name, generation, 1)
    return httpx.post(url, headers=headers, content=body, timeout=300)


def _wait(results, run_id, mode, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = read_status(results, run_id, mode)
        if status is not None and status.finished:
            return status
        time.sleep(0.5)
    raise AssertionError(f"{run_id}/{mode} did not finish: {status}")


@pytest.fixture(scope="module")
def trained(cloud):
    """Final training started by a crafted finalize event on the job's ticket, as the web app
    writes it to the jobs bucket."""
    spec = koi_run_spec(model=SMALL_FOREST)
    run_id = start_run(cloud["results"], spec, FINAL)
    name = ticket_key(run_id, FINAL, 1)
    generation = GCSStorage(cloud["jobs_bucket"]).write_bytes(name, b"{}", content_type="application/json")
    response = _finalize_event(cloud["train_event"], cloud["jobs_bucket"], name, generation)
    assert response.status_code == 200, response.text
    status = _wait(cloud["results"], run_id, FINAL)
    assert status.state == SUCCEEDED, status.message
    return run_id, spec, name, generation


def test_event_trains_and_duplicate_event_trains_once(cloud, trained):
    run_id, _, name, generation = trained
    before, before_generation = read_status(cloud["results"], run_id, FINAL)
    assert [text for _, text in before.lines].count("Started") == 1
    assert any(text.startswith("Bundle written") for _, text in before.lines)
    again = _finalize_event(cloud["train_event"], cloud["jobs_bucket"], name, generation)  # redelivery
    assert again.status_code == 200
    after, after_generation = read_status(cloud["results"], run_id, FINAL)
    assert after == before and after_generation == before_generation


def test_events_for_other_objects_are_ignored(cloud, trained):
    """Only a ticket in the jobs bucket runs anything: a status update, an output or a request
    in the results bucket, or a stray name in the jobs bucket, is logged and ignored."""
    run_id = trained[0]
    other = start_run(cloud["results"], koi_run_spec(model=SMALL_FOREST), FINAL)
    for bucket, name in (
        (cloud["bucket"], f"results/{job_key(run_id, FINAL, 'status.json')}"),
        (cloud["bucket"], f"results/{job_key(other, FINAL, 'request.json')}"),
        (cloud["bucket"], "data/datasets/kepler/info.json"),
        (cloud["bucket"], ticket_key(other, FINAL, 1)),
        (cloud["jobs_bucket"], f"elsewhere/{ticket_key(other, FINAL, 1)}"),
        (cloud["jobs_bucket"], f"{other}/final/request.json"),
    ):
        assert _finalize_event(cloud["train_event"], bucket, name, 1).status_code == 200
    status, _ = read_status(cloud["results"], other, FINAL)
    assert status is not None and status.state == "queued"  # nothing took it


def test_batch_predict_10000_rows_matches_in_process_pipeline(cloud, trained, koi):
    run_id, spec, _, _ = trained
    rows = koi.sample(10_000, replace=True, random_state=7).reset_index(drop=True)
    body = rows.to_csv(index=False).encode()
    response = httpx.post(
        cloud["predict_http"],
        params={"run_id": run_id},
        files={"file": ("rows.csv", body, "text/csv")},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    out = pd.read_csv(io.BytesIO(response.content))
    assert len(out) == 10_000
    assert list(out.columns) == KOI_PREDICTION_COLUMNS
    pipe, _, _ = train_final(koi, spec, column_kinds(profile_table(koi)), n_jobs=2)
    features = rows[list(spec.features)]
    np.testing.assert_array_equal(out["prediction"].to_numpy(), pipe.predict(features))
    np.testing.assert_allclose(out["probability_PLANET"].to_numpy(), pipe.predict_proba(features)[:, 1])


def test_predict_json_rows_and_stored_uri(cloud, trained, koi):
    run_id, *_ = trained
    rows = json.loads(koi.head(5).to_json(orient="records"))
    response = httpx.post(cloud["predict_http"], json={"run_id": run_id, "rows": rows}, timeout=60)
    assert response.status_code == 200 and len(pd.read_csv(io.BytesIO(response.content))) == 5
    as_json = httpx.post(
        cloud["predict_http"],
        json={"run_id": run_id, "rows": rows[:2]},
        headers={"Accept": "application/json"},
        timeout=60,
    )
    assert [set(r) >= {"prediction", "probability_PLANET", "kepoi_name"} for r in as_json.json()] == [
        True,
        True,
    ]
    explained = httpx.post(
        cloud["predict_http"],
        json={"run_id": run_id, "rows": rows[:2], "explain": True},
        headers={"Accept": "application/json"},
        timeout=60,
    ).json()
    for row in explained:  # the trained model is a random forest: SHAP in probability units
        why = row["explanation"]
        assert why["class"] == row["prediction"] and why["units"] == "probability"
        assert len(why["contributions"]) == 8 and why["method"] == "tree_shap"
    cloud["data"].write_bytes("uploads/u1/batch.csv", koi.head(300).to_csv(index=False).encode())
    uri = cloud["data"].uri("uploads/u1/batch.csv")
    response = httpx.post(cloud["predict_http"], json={"run_id": run_id, "uri": uri}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["uri"] == cloud["data"].uri("uploads/u1/batch.predictions.csv")
    written = pd.read_csv(io.BytesIO(cloud["data"].read_bytes("uploads/u1/batch.predictions.csv")))
    assert len(written) == 300 and "prediction" in written.columns


@pytest.mark.parametrize(
    ("request_kwargs", "status", "message"),
    [
        ({"csv": "kepoi_name,koi_period\nK1,3.5\n"}, 400, "missing feature columns: koi_period_err1, "),
        (
            {"csv": "{header}\n{bad_row}\n"},
            400,
            "column 'koi_depth' has a value that is not a finite number: 'deep' in row 1",
        ),
        ({"unknown_run": True, "csv": "a\n1\n"}, 404, " does not exist"),
        ({"run_id": "../../etc/passwd", "csv": "a\n1\n"}, 400, "not a run id: '../../etc/passwd'"),
        ({"json": {"rows": "nope"}}, 400, "rows must be a non-empty list of objects"),
        (
            {"json": {"uri": "gs://someone-else/secret.csv"}},
            400,
            "uri must name a CSV uploaded to this app's storage",
        ),
        ({"json": {"uri": "{base}datasets/kepler/table.parquet"}}, 400, "uri must point into uploads/"),
        ({"json": {}}, 400, "send a CSV"),
    ],
)
def test_predict_errors_are_4xx_with_a_named_problem(cloud, trained, koi, request_kwargs, status, message):
    run_id, spec, _, _ = trained
    features = list(spec.features)
    row = koi.loc[0, features]
    run = new_run_id() if request_kwargs.get("unknown_run") else request_kwargs.get("run_id", run_id)
    if "csv" in request_kwargs:
        text = request_kwargs["csv"].format(
            header=",".join(features),
            bad_row=",".join("deep" if f == "koi_depth" else str(v) for f, v in row.items()),
        )
        response = httpx.post(
            cloud["predict_http"],
            params={"run_id": run},
            files={"file": ("x.csv", text.encode(), "text/csv")},
            timeout=60,
        )
    else:
        body = {
            k: (v.format(base=cloud["data"].uri("x").removesuffix("x")) if isinstance(v, str) else v)
            for k, v in request_kwargs["json"].items()
        }
        response = httpx.post(cloud["predict_http"], json={"run_id": run, **body}, timeout=60)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_http_train_bad_spec_fails_with_its_name(cloud):
    run_id = start_run(cloud["results"], koi_run_spec(["koi_period"]), EVALUATE)
    key = job_key(run_id, EVALUATE, "request.json")
    request = json.loads(cloud["results"].read_bytes(key))
    request["spec"]["evaluation"] = {"folds": 1}
    cloud["results"].write_bytes(key, json.dumps(request).encode())
    response = httpx.post(cloud["train_http"], json={"run_id": run_id, "mode": EVALUATE}, timeout=120)
    assert response.status_code == 200
    assert response.json()["state"] == "failed"
    assert response.json()["message"] == (
        "The run's spec is invalid: evaluation.folds: 1 must be a whole number from 2 to 20"
    )


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"run_id": "r" + "0" * 32, "mode": "evaluate"}, 404, "has no evaluate job request"),
        ({"run_id": "x", "mode": "evaluate"}, 400, "not a run id: 'x'"),
        ({"run_id": "r" + "0" * 32, "mode": "deploy"}, 400, "not a job mode: 'deploy'"),
        ([], 400, "the body must be a JSON object"),
        (b"[" * 20_000 + b"]" * 20_000, 400, "nested too deeply"),
        (b'{"run_id": "' + b"r" * 100_000 + b'"}', 413, "send only run_id and mode"),
        (b"{not json", 400, "not valid JSON"),
    ],
    ids=["no-request", "bad-run-id", "bad-mode", "not-an-object", "deep-nesting", "oversized", "broken"],
)
def test_http_train_bad_requests(cloud, body, status, message):
    if isinstance(body, bytes):
        response = httpx.post(
            cloud["train_http"], content=body, headers={"Content-Type": "application/json"}, timeout=30
        )
    else:
        response = httpx.post(cloud["train_http"], json=body, timeout=30)
    assert response.status_code == status and message in response.json()["error"], response.text[:300]


def test_embedded_worker_runs_the_same_scenario(tmp_path, koi):
    """The embedded default: local storage and a worker in a separate process."""
    data, results = LocalStorage(tmp_path / "data"), LocalStorage(tmp_path / "results")
    load_koi(data)
    spec = koi_run_spec(model=SMALL_FOREST)
    run_id = start_run(results, spec, FINAL)
    worker = LocalWorker()
    try:
        future = worker.submit(run, run_id, FINAL, data.url, results.url, 2)
        assert future.result(timeout=300) == SUCCEEDED
        assert worker.submit(run, run_id, FINAL, data.url, results.url, 2).result(timeout=60) == SUCCEEDED
    finally:
        worker.shutdown()
    status, _ = read_status(results, run_id, FINAL)
    assert [text for _, text in status.lines].count("Started") == 1  # the second hand-off did nothing
    from shared.predict import load_model, predict_rows

    out = predict_rows(load_model(results, run_id), koi.head(200).to_dict("records"))
    pipe, _, _ = train_final(koi, spec, column_kinds(profile_table(koi)), n_jobs=2)
    np.testing.assert_allclose(
        out["probability_PLANET"], pipe.predict_proba(koi.head(200)[list(spec.features)])[:, 1]
    )


def test_web_app_starts_jobs_through_the_train_function(cloud, koi):
    """The local cloud wiring: the web app calls the train and predict functions over HTTP."""
    from starlette.testclient import TestClient

    from shared.settings import Settings
    from webapp.app import create_app

    settings = Settings(
        storage_url=f"gs://{cloud['bucket']}/data",
        results_url=f"gs://{cloud['bucket']}/results",
        train_url=cloud["train_http"],
        predict_url=cloud["predict_http"],
        train_trigger="http",
    )
    app = create_app(settings)
    with TestClient(app) as client:
        with_csrf(client)
        started = client.post("/start", data={"dataset": "kepler"}, headers={"HX-Request": "true"})
        run_id = started.headers["HX-Redirect"].split("/")[2]
        client.get(f"/runs/{run_id}/features")  # fills the default features
        assert client.post(f"/runs/{run_id}/jobs/final", headers={"HX-Request": "true"}).status_code == 200
        status = _wait(cloud["results"], run_id, FINAL)
        assert status.state == SUCCEEDED, status.message
        rows = json.loads(koi.head(2).to_json(orient="records"))
        predicted = app.state.dispatcher.predict_rows(run_id, rows)
    assert [r["kepoi_name"] for r in predicted] == koi["kepoi_name"].head(2).tolist()
    assert all(abs(r["probability_PLANET"] + r["probability_FALSE POSITIVE"] - 1) < 1e-9 for r in predicted)


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda f: f.to_csv(index=False, lineterminator="\r").encode(), id="cr-only-lines"),
        pytest.param(lambda f: f.to_csv(index=False, sep=";").encode(), id="semicolons"),
        pytest.param(lambda f: f.to_csv(index=False, sep="\t").encode(), id="tabs"),
        pytest.param(_parquet_bytes, id="parquet"),
    ],
)
def test_predict_function_reads_every_table_an_upload_reads(cloud, trained, koi, encode):
    """Issue 16: Excel's CR-only CSV answered 500; semicolons, tabs and Parquet uploaded fine but
    could not be predicted. One reader now: the same predictions as a plain CSV."""
    run_id, spec, _, _ = trained
    rows = koi.head(40)[["kepoi_name", *spec.features]]
    expected = httpx.post(
        cloud["predict_http"], params={"run_id": run_id},
        files={"file": ("x.csv", rows.to_csv(index=False).encode(), "text/csv")}, timeout=60,
    )  # fmt: skip
    response = httpx.post(
        cloud["predict_http"],
        params={"run_id": run_id},
        files={"file": ("x", encode(rows), "text/csv")},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    got, want = (pd.read_csv(io.StringIO(r.text)) for r in (response, expected))
    assert len(got) == 40 and got["kepoi_name"].tolist() == rows["kepoi_name"].tolist()
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9)  # a forest sums in any order


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        ('{"run_id": "{run}", "rows": [{"koi_period": 1' + "0" * 400 + "}]}", 400, "beyond any float"),
        ('{"run_id": "{run}", "rows": [{"koi_period": {"a": 1}}]}', 400, "a dict is not a value"),
        ("[" * 100_000 + "]" * 100_000, 400, "nested too deeply"),
        ('{"run_id": "{run}", "rows": [' + '{"koi_period": 1.0},' * 2_000_000 + "{}]}", 413, "over 32 MiB"),
        ('{"run_id": "{run}", "rows": [1, 2', 400, "not valid JSON"),
    ],
    ids=["huge-integer", "nested-value", "deep-nesting", "oversized-body", "broken-json"],
)
def test_predict_function_refuses_hostile_json_with_a_4xx(cloud, trained, content, status, message):
    run_id = trained[0]
    body = content.replace("{run}", run_id).encode()
    response = httpx.post(
        cloud["predict_http"], content=body, headers={"Content-Type": "application/json"}, timeout=60
    )
    assert response.status_code == status, response.text[:300]
    assert message in response.json()["error"]
