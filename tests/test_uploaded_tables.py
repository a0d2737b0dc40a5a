"""An uploaded table gets the same guard rails as a built-in: the detector's findings left out by
default, a host-star-like group column chosen and explained, label setups built class by class,
and scores reported beside what a model that learned nothing would score.

The table is the archive's K2 export, uploaded as a user would (not recognised as built-in)."""

import json
import re

import pytest
from starlette.testclient import TestClient

from shared.params import FAMILIES
from shared.runs import load_spec, read_output
from shared.settings import Settings
from tests.nasa import K2_PATH
from tests.web import HX, browser, follow

pytestmark = pytest.mark.slow
FLAGGED = {"disp_refname", "pl_refname", "st_refname", "default_flag"}
PHYSICAL = {"pl_orbper", "pl_rade", "st_teff"}  # the export has no pl_trandep


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from webapp.app import create_app

    root = tmp_path_factory.mktemp("uploads")
    settings = Settings(
        storage_url=str(root / "data"), results_url=str(root / "results"), threads=2, max_upload_mb=8
    )
    application = create_app(settings)
    with TestClient(application):
        yield application


@pytest.fixture(scope="module")
def k2_run(app):
    """A run on the uploaded K2 table, with target `disposition` chosen and nothing else touched."""
    client = browser(app)
    uploaded = client.post(
        "/upload", files={"file": ("my_k2.csv", K2_PATH.read_bytes(), "text/csv")}, headers=HX
    )
    assert uploaded.status_code == 204, uploaded.text[:300]
    run_id = json.loads(uploaded.headers["HX-Location"])["path"].split("/")[2]
    chosen = client.post(
        f"/runs/{run_id}/features/target", data={"target": "disposition", "setup": "raw"}, headers=HX
    )
    assert chosen.status_code == 200
    return client, run_id


def test_defaults_leave_out_references_and_group_by_host(app, k2_run):
    client, run_id = k2_run
    spec = load_spec(app.state.results, run_id)
    assert spec["group_column"] == "hostname"
    assert not FLAGGED & set(spec["features"]) and set(spec["features"]) >= PHYSICAL
    assert "disposition" not in spec["features"]
    page = client.get(f"/runs/{run_id}/features").text
    assert "names the sources or references rows came from" in page  # the reason is shown
    assert "marks one row per value of &#39;pl_name&#39;" in page
    evaluate = client.get(f"/runs/{run_id}/evaluate").text
    assert re.search(r'<option value="hostname" selected>', evaluate)
    suggestion = re.search(r'data-testid="group-suggestion">(.*?)</p>', evaluate, re.S).group(1)
    assert "<code>hostname</code> (chosen)" in suggestion and "by chance" in suggestion


def test_an_evaluation_with_every_default_is_honest(app, k2_run):
    """The issue's own case: logistic regression, with every column and split default untouched."""
    client, run_id = k2_run
    model = {
        "family": "logistic_regression",
        **{k: str(v) for k, v in FAMILIES["logistic_regression"].defaults().items()},
    }
    assert client.post(f"/runs/{run_id}/model", data=model, headers=HX).status_code == 204
    page = client.get(f"/runs/{run_id}/evaluate").text
    form = {
        name: value
        for name, value in re.findall(
            r'<input id="(folds|test_size|seed)" name="\1" [^>]*value="([^"]*)"', page
        )
    }
    group = re.search(r'<option value="([^"]+)" selected>', page).group(1)
    form |= {"method": "kfold", "stratified": "on", "group_column": group}  # as the form is shown
    started = client.post(f"/runs/{run_id}/evaluate", data=form, headers=HX)
    assert started.status_code == 200, started.text[:500]
    done = follow(client, f"/runs/{run_id}/jobs/evaluate")
    assert 'data-state="succeeded"' in done.text, done.text[:2000]
    metrics = read_output(app.state.results, run_id, "evaluate", "metrics.json")
    assert metrics["protocol"]["grouped_by"] == "hostname"
    assert not FLAGGED & set(metrics["spec"]["features"])
    auc = metrics["metrics"]["roc_auc"]["mean"]
    assert 0.7 < auc < 0.85  # 0.791 here; led by the reference columns it claimed 0.978
    assert f'data-metric="roc_auc">{auc:.3f}<' in done.text
    assert 'data-baseline="majority-roc_auc">0.500<' in done.text  # the baseline sits beside it


def test_classes_merge_drop_and_set_aside_on_an_upload(app, k2_run):
    client, run_id = k2_run
    page = client.post(
        f"/runs/{run_id}/features/target", data={"target": "disposition", "setup": "custom"}, headers=HX
    ).text
    classes = dict(re.findall(r'<label for="role-(\d+)">([^<]+)</label>', page))
    assert set(classes.values()) == {"CONFIRMED", "CANDIDATE", "FALSE POSITIVE", "REFUTED"}
    roles = {
        "CONFIRMED": "positive",
        "CANDIDATE": "aside",
        "FALSE POSITIVE": "negative",
        "REFUTED": "negative",
    }
    form = {"target": "disposition", "setup": "custom", "roles_for": "disposition"}
    form |= {f"role-{i}": roles[name] for i, name in classes.items()}
    saved = client.post(f"/runs/{run_id}/features/target", data=form, headers=HX)
    assert saved.status_code == 200
    spec = load_spec(app.state.results, run_id)
    assert spec["label_setup"] == "custom" and spec["positive_class"] == "CONFIRMED"
    assert spec["label_mapping"] == {
        "CONFIRMED": "CONFIRMED",
        "CANDIDATE": None,
        "FALSE POSITIVE": "FALSE POSITIVE + REFUTED",
        "REFUTED": "FALSE POSITIVE + REFUTED",
    }
    assert spec["score_classes"] == ["CANDIDATE"] and spec["group_column"] == "hostname"
    assert "ranked after training: CANDIDATE" in saved.text
    for i, name in classes.items():  # the saved roles are what the page shows
        assert re.search(
            rf'id="role-{i}" name="role-{i}">.*?<option value="{roles[name]}" selected>', saved.text, re.S
        )

    one_class = {**form, **{f"role-{i}": "positive" for i in classes}}
    refused = client.post(f"/runs/{run_id}/features/target", data=one_class, headers=HX)
    assert refused.status_code == 400 and "leaves 1 class to learn" in refused.text
    assert load_spec(app.state.results, run_id)["label_mapping"] == spec["label_mapping"]  # nothing lost
