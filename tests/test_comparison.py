"""Compare model families: each family's score equals a bare scikit-learn cross_val_score of the
same pipeline on the same splits, and the comparison fans out as one job per family."""

import os
import re
import signal
import time

import numpy as np
import pytest
from sklearn.model_selection import cross_val_score
from starlette.testclient import TestClient

from shared.comparison import family_spec
from shared.evaluation import evaluate, prepare, splits
from shared.params import FAMILIES
from shared.pipeline import build_pipeline
from shared.runs import EVALUATE, family_mode, read_status, update_spec
from shared.spec import RunSpec
from tests.nasa import koi_spec
from tests.web import HX, PLAN, browser, follow, kepler_app

FEATURES = ["koi_period", "koi_depth", "koi_prad", "koi_model_snr", "koi_teq", "koi_duration", "koi_impact"]


def test_every_family_scores_what_a_bare_cross_val_score_gives(koi, koi_kinds):
    """The acceptance: KOI (500 rows, 3 grouped folds), every family at its defaults: the
    leaderboard's ROC-AUC per split is scikit-learn's own on the same pipeline and splits."""
    frame = koi.sample(500, random_state=5).reset_index(drop=True)
    spec = RunSpec.from_dict(koi_spec(FEATURES, evaluation={"method": "kfold", "folds": 3}))
    data = prepare(frame, spec)
    folds = list(splits(data, spec.evaluation))
    for key in FAMILIES:
        chosen = family_spec(spec, key)
        ours = evaluate(frame, chosen, koi_kinds).metrics["roc_auc"]["folds"]
        pipe = build_pipeline(chosen, koi_kinds, n_jobs=1)
        bare = cross_val_score(pipe, data.features, data.labels, cv=folds, scoring="roc_auc")
        assert np.allclose(ours, bare, rtol=0, atol=1e-9), (key, ours, bare)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    application = kepler_app(tmp_path_factory.mktemp("compare"), job_stale_after_s=4.0, compare_workers=2)
    with TestClient(application):
        yield application


QUICK = ["logistic_regression", "hist_gradient_boosting"]


def _run(client, app) -> str:
    response = client.post("/start", data={"dataset": "kepler"}, headers=HX)
    run_id = re.search(r"/runs/(r[0-9a-f]{32})/", response.headers["HX-Redirect"]).group(1)
    client.get(f"/runs/{run_id}/features")  # fills the default features
    update_spec(app.state.results, run_id, lambda s: {**s, "features": FEATURES, "evaluation": {"folds": 3}})
    return run_id


def _rows(text: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-family="(\w+)" data-state="(\w+)"', text))


def test_the_board_fills_family_by_family_and_use_this_one_sets_the_model(app):
    client = browser(app)
    run_id = _run(client, app)
    started = client.post(f"/runs/{run_id}/compare", data={"family": QUICK}, headers=HX)
    assert started.status_code == 200 and 'hx-trigger="every 1s"' in started.text
    assert set(_rows(started.text)) == set(QUICK)
    seen_partial = False
    deadline = time.monotonic() + 240
    while 'hx-trigger="every 1s"' in (board := client.get(f"/runs/{run_id}/compare", headers=HX).text):
        states = set(_rows(board).values())
        seen_partial |= "succeeded" in states and bool(states - {"succeeded"})
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert set(_rows(board).values()) == {"succeeded"}
    assert seen_partial  # the board showed finished families while others still ran
    scores = [float(v) for v in re.findall(r'data-metric="roc_auc">([0-9.]+) ±', board)]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True)  # best first
    best = next(iter(_rows(board)))
    used = client.post(f"/runs/{run_id}/compare/use", data={"family": best}, headers=HX)
    assert used.status_code == 204 and used.headers["HX-Location"].endswith(
        '/evaluate", "target": "#wizard", "swap": "outerHTML"}'
    )
    client.post(f"/runs/{run_id}/evaluate", data=PLAN, headers=HX)
    done = follow(client, f"/runs/{run_id}/jobs/evaluate").text
    assert 'data-state="succeeded"' in done
    family_auc = float(
        re.search(rf'data-family="{best}".*?data-metric="roc_auc">([0-9.]+)', board, re.S).group(1)
    )
    evaluated = float(re.search(r'data-metric="roc_auc">([0-9.]+)<', done).group(1))
    assert evaluated == pytest.approx(family_auc, abs=1e-3)  # the evaluate step used that model


def test_a_killed_family_stalls_alone_and_runs_again(app):
    client = browser(app)
    run_id = _run(client, app)
    client.post(
        f"/runs/{run_id}/compare",
        data={"family": ["hist_gradient_boosting", "logistic_regression"]},
        headers=HX,
    )
    deadline = time.monotonic() + 120
    while (
        status := read_status(app.state.results, run_id, family_mode("hist_gradient_boosting"))[0]
    ).state != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(int(status.worker.rsplit(":", 1)[1]), signal.SIGKILL)  # that family's worker only
    deadline = time.monotonic() + 120
    while (rows := _rows(client.get(f"/runs/{run_id}/compare", headers=HX).text)).get(
        "hist_gradient_boosting"
    ) != "stalled":
        assert time.monotonic() < deadline, rows
        time.sleep(0.3)
    while rows.get("logistic_regression") != "succeeded":  # the other family finishes
        assert time.monotonic() < deadline, rows
        time.sleep(0.3)
        rows = _rows(client.get(f"/runs/{run_id}/compare", headers=HX).text)
    again = client.post(
        f"/runs/{run_id}/compare/rerun", data={"family": "hist_gradient_boosting"}, headers=HX
    )
    assert again.status_code == 200, again.text[:300]
    deadline = time.monotonic() + 240
    while 'hx-trigger="every 1s"' in (board := client.get(f"/runs/{run_id}/compare", headers=HX).text):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert _rows(board) == {"hist_gradient_boosting": "succeeded", "logistic_regression": "succeeded"} or set(
        _rows(board).values()
    ) == {"succeeded"}
    assert read_status(app.state.results, run_id, EVALUATE)[0] is None  # nothing else was run
