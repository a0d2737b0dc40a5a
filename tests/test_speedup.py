"""Comparing families fans out: measured alone on the machine (the solo phase of `make test`,
after the probe's own timing test), the wall time is about the slowest family's, not the sum."""

import time

import pytest
from starlette.testclient import TestClient

from tests.test_comparison import _rows, _run
from tests.web import HX, browser, kepler_app


@pytest.mark.solo
def test_the_comparison_takes_about_the_slowest_familys_time_not_the_sum(tmp_path):
    """The embedded worker group: four families side by side on two processes finish in at most
    0.65x the sum of their own times (alone on the machine: the solo phase of `make test`)."""
    application = kepler_app(tmp_path, compare_workers=2)
    with TestClient(application):
        client = browser(application)
        run_id = _run(client, application)
        client.get(f"/runs/{run_id}/model")  # the step a comparison starts from gets its workers ready
        time.sleep(5)
        families = ["hist_gradient_boosting", "logistic_regression", "mlp", "adaboost"]
        start = time.monotonic()
        client.post(f"/runs/{run_id}/compare", data={"family": families}, headers=HX)
        while 'hx-trigger="every 1s"' in (board := client.get(f"/runs/{run_id}/compare", headers=HX).text):
            time.sleep(0.1)
        wall = time.monotonic() - start
        assert set(_rows(board).values()) == {"succeeded"}
        own = [client.get(f"/runs/{run_id}/compare/result/{k}").json()["timings"]["wall_s"] for k in families]
        assert wall <= 0.65 * sum(own), (wall, own)
