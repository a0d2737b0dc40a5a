"""The job code shared by the train function and the embedded worker, against local storage."""

import io
import json
import threading
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from shared.errors import DataError, InvalidKey
from shared.evaluation import train_final
from shared.jobs import run_job
from shared.predict import ModelNotReady, load_model, predict_csv, predict_rows
from shared.profile import column_kinds, profile_table
from shared.runs import (
    EVALUATE,
    FAILED,
    FINAL,
    RUNNING,
    SUCCEEDED,
    JobConflict,
    job_key,
    new_run_id,
    parse_ticket_name,
    read_status,
    request_job,
    ticket_key,
    write_status,
)
from shared.storage import LocalStorage
from tests.runs_setup import KOI_PREDICTION_COLUMNS, SMALL_FOREST, koi_run_spec, load_koi, start_run


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("jobs")
    data, results = LocalStorage(root / "data"), LocalStorage(root / "results")
    load_koi(data)
    return data, results


@pytest.fixture(scope="module")
def trained(stores):
    data, results = stores
    spec = koi_run_spec(model=SMALL_FOREST)
    run_id = start_run(results, spec, FINAL)
    status = run_job(run_id, FINAL, data, results, threads=2)
    assert status.state == SUCCEEDED, status.message
    return run_id, spec


def test_evaluate_job_writes_metrics_and_progress(stores):
    data, results = stores
    run_id = start_run(results, koi_run_spec(), EVALUATE)
    status = run_job(run_id, EVALUATE, data, results, threads=2)
    assert status.state == SUCCEEDED and status.progress == 1.0
    texts = [text for _, text in status.lines]
    assert texts[:3] == ["Queued", "Started", f"Loaded 9,564 rows × {len(koi_run_spec().features)} features"]
    assert [t for t in texts if t.startswith("Fold ")][-1].startswith("Fold 3/3: ROC-AUC 0.9")
    assert texts[-1].startswith("Done: ROC-AUC 0.9")
    metrics = json.loads(results.read_bytes(job_key(run_id, EVALUATE, "metrics.json")))
    assert metrics["protocol"]["grouped_by"] == "kepid" and metrics["classes"] == ["FALSE POSITIVE", "PLANET"]
    assert metrics["dataset"]["source"] == "KEPLER_URI" and metrics["leakage_warnings"] == []
    oof = pd.read_parquet(io.BytesIO(results.read_bytes(job_key(run_id, EVALUATE, "oof.parquet"))))
    assert len(oof) == 9564 and set(oof["fold"]) == {1, 2, 3}


def test_importance_runs_only_when_asked_for(stores):
    data, results = stores
    features = ["koi_period", "koi_depth", "koi_prad", "koi_model_snr", "koi_steff", "koi_impact"]
    elapsed, metrics = {}, {}
    for importance in (False, True):
        spec = koi_run_spec(features, evaluation={"method": "kfold", "folds": 3, "importance": importance})
        run_id = start_run(results, spec, EVALUATE)
        started = time.perf_counter()
        assert run_job(run_id, EVALUATE, data, results, threads=2).state == SUCCEEDED
        elapsed[importance] = time.perf_counter() - started
        metrics[importance] = json.loads(results.read_bytes(job_key(run_id, EVALUATE, "metrics.json")))
    assert metrics[False]["importance"] == [] and "importance" not in metrics[False]["figures"]
    assert {row["feature"] for row in metrics[True]["importance"]} == set(features)
    assert "importance" in metrics[True]["figures"]
    assert elapsed[False] < elapsed[True]  # shuffling each feature in every split costs time


def test_duplicate_delivery_runs_once(stores):
    data, results = stores
    # logistic regression: OpenMP (boosting) run from a second thread of one process runs at a
    # fraction of its speed; this test is about claiming, not fitting
    spec = koi_run_spec(["koi_period", "koi_depth"], model={"family": "logistic_regression"})
    run_id = start_run(results, spec, EVALUATE)
    outcomes = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(run_job(run_id, EVALUATE, data, results)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final, generation = read_status(results, run_id, EVALUATE)
    assert final.state == SUCCEEDED
    assert [text for _, text in final.lines].count("Started") == 1  # claimed exactly once
    again = run_job(run_id, EVALUATE, data, results)  # a late redelivery
    assert again == final and read_status(results, run_id, EVALUATE)[1] == generation


def test_bad_spec_in_request_fails_with_a_named_message(stores):
    data, results = stores
    run_id = start_run(results, koi_run_spec(["koi_period"]), EVALUATE)
    request = json.loads(results.read_bytes(job_key(run_id, EVALUATE, "request.json")))
    request["spec"]["model"] = {"family": "random_forest", "params": {"n_estimators": "0"}}
    results.write_bytes(job_key(run_id, EVALUATE, "request.json"), json.dumps(request).encode())
    status = run_job(run_id, EVALUATE, data, results)
    assert status.state == FAILED
    assert status.message == (
        "The run's spec is invalid: model.params.n_estimators: '0' is out of range; "
        "expected a whole number from 1 to 2,000"
    )
    assert "Traceback" not in status.to_json().decode()


def test_data_problem_fails_with_its_message(stores):
    data, results = stores
    spec = koi_run_spec(["koi_period", "no_such_column"])
    run_id = start_run(results, spec, EVALUATE)
    status = run_job(run_id, EVALUATE, data, results)
    assert status.state == FAILED and status.message == "missing feature columns: no_such_column"


def test_conflicting_requests_and_restart_of_a_dead_worker(stores):
    data, results = stores
    spec = koi_run_spec(["koi_period", "koi_depth"])
    run_id = start_run(results, spec, EVALUATE)
    with pytest.raises(JobConflict, match="already queued"):
        request_job(results, run_id, EVALUATE, spec)
    # a worker claimed it, then died: its heartbeat stops
    status, generation = read_status(results, run_id, EVALUATE)
    dead = replace(status, state=RUNNING, heartbeat=time.time() - 3600)
    write_status(results, run_id, EVALUATE, dead, generation)
    assert read_status(results, run_id, EVALUATE)[0].stale
    request = request_job(results, run_id, EVALUATE, spec)  # the user restarts it
    assert request.attempt == 2
    assert run_job(run_id, EVALUATE, data, results).state == SUCCEEDED
    with pytest.raises(JobConflict, match="already succeeded"):
        request_job(results, run_id, EVALUATE, spec)
    assert request_job(results, run_id, EVALUATE, spec, restart=True).attempt == 3


def test_final_job_bundle_predicts_like_the_in_process_pipeline(stores, trained, koi):
    _data, results = stores
    run_id, spec = trained
    status, _ = read_status(results, run_id, FINAL)
    assert any(text.startswith("Bundle written, ") and text.endswith(" MB") for _, text in status.lines)
    bundle = load_model(results, run_id)
    assert bundle.metadata["key_columns"] == ["kepoi_name", "kepid", "kepler_name"]
    pipe, _, _ = train_final(koi, spec, column_kinds(profile_table(koi)), n_jobs=2)
    rows = koi.sample(10_000, replace=True, random_state=1).reset_index(drop=True)
    source, sink = io.BytesIO(), io.BytesIO()
    rows.to_csv(source, index=False)
    source.seek(0)
    assert predict_csv(bundle, source, sink) == 10_000
    out = pd.read_csv(io.BytesIO(sink.getvalue()))
    assert list(out.columns) == KOI_PREDICTION_COLUMNS
    expected = pipe.predict_proba(rows[list(spec.features)])
    np.testing.assert_allclose(
        out[["probability_FALSE POSITIVE", "probability_PLANET"]].to_numpy(), expected, rtol=1e-9
    )
    np.testing.assert_array_equal(out["prediction"], pipe.predict(rows[list(spec.features)]))
    assert out["kepoi_name"].tolist() == rows["kepoi_name"].tolist()


@pytest.mark.parametrize(
    ("csv_text", "match"),
    [
        (
            "kepoi_name,koi_period\nK1,1.0\n",
            r"missing feature columns: koi_period_err1, koi_period_err2, koi_time0bk, ",
        ),
        ("", r"the file is empty: no header row"),
        ("{header}\n", r"the file has a header but no data rows"),
        (
            "{header}\n{row}\n{bad}\n",
            r"column 'koi_depth' has a value that is not a finite number: 'deep' in row 2",
        ),
        ("{header}\n{inf}\n", r"column 'koi_depth' has a value that is not a finite number: inf in row 1"),
    ],
)
def test_bad_prediction_files_are_named(stores, trained, koi, csv_text, match):
    _, results = stores
    run_id, spec = trained
    features = list(spec.features)
    row = koi.loc[0, features]
    fill = {
        "header": ",".join(features),
        "row": ",".join(map(str, row)),
        "bad": ",".join("deep" if f == "koi_depth" else str(v) for f, v in row.items()),
        "inf": ",".join("inf" if f == "koi_depth" else str(v) for f, v in row.items()),
    }
    with pytest.raises(DataError, match=match):
        predict_csv(load_model(results, run_id), io.BytesIO(csv_text.format(**fill).encode()), io.BytesIO())


def test_json_rows_and_extra_columns(stores, trained, koi):
    _, results = stores
    run_id, _spec = trained
    rows = koi.head(3).assign(extra="ignored").to_dict("records")
    out = predict_rows(load_model(results, run_id), json.loads(json.dumps(rows, default=str)))
    assert len(out) == 3 and set(out["prediction"]) <= {"PLANET", "FALSE POSITIVE"}
    with pytest.raises(DataError, match="rows must be a non-empty list of objects"):
        predict_rows(load_model(results, run_id), {"koi_period": 1})


def test_untrained_and_unknown_runs(stores):
    _data, results = stores
    with pytest.raises(ModelNotReady, match=r"does not exist") as unknown:
        load_model(results, new_run_id())
    assert not unknown.value.found
    run_id = start_run(results, koi_run_spec(["koi_period"]), EVALUATE)
    with pytest.raises(ModelNotReady, match=r"has not been trained on all data yet"):
        load_model(results, run_id)
    with pytest.raises(InvalidKey, match=r"not a run id: '../etc'"):
        load_model(results, "../etc")


def test_ticket_names_from_storage_events():
    run_id = new_run_id()
    assert ticket_key(run_id, "final", 3) == f"{run_id}/final/3.json"
    assert parse_ticket_name(ticket_key(run_id, "final", 3)) == (run_id, "final")
    assert parse_ticket_name(f"{run_id}/batch/1.json") == (run_id, "batch")
    for name in (
        f"runs/{run_id}/final/request.json",
        f"{run_id}/final/0.json",
        f"{run_id}/final/status.json",
        f"{run_id}/other/1.json",
        f"x/{run_id}/final/1.json",
        "rx/final/1.json",
    ):
        assert parse_ticket_name(name) is None
    with pytest.raises(InvalidKey, match=r"not a run id: '../x'"):
        ticket_key("../x", "final", 1)


def test_tuned_threshold_is_applied_by_the_bundle_and_predict(stores, koi):
    data, results = stores
    spec = koi_run_spec(["koi_period", "koi_depth", "koi_prad", "koi_model_snr"], threshold=0.8)
    run_id = start_run(results, spec, FINAL)
    assert run_job(run_id, FINAL, data, results, threads=2).state == SUCCEEDED
    bundle = load_model(results, run_id)
    assert bundle.metadata["threshold"] == 0.8 and bundle.metadata["positive_class"] == "PLANET"
    rows = koi.head(2000)
    proba = bundle.pipe.predict_proba(rows)[:, list(bundle.pipe.classes_).index("PLANET")]
    expected = np.where(proba >= 0.8, "PLANET", "FALSE POSITIVE")
    np.testing.assert_array_equal(bundle.pipe.predict(rows), expected)  # the pipeline itself
    out = predict_rows(bundle, json.loads(rows.to_json(orient="records")))
    np.testing.assert_array_equal(out["prediction"], expected)  # and the predict path
    assert (expected == "PLANET").sum() < (proba >= 0.5).sum()  # a stricter threshold, fewer planets
