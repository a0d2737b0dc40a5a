"""Comparing model families fans out: each family is a job of its own, run side by side. This
prints, for one comparison, its wall time (from the request to the last family's result) and the
sum of the families' own times (each job's cross-validation, as its result records it): their
ratio is 1 when the families run one after another, 1/instances when they spread perfectly.

Two shapes, measured in one run each: the embedded default (the web app's worker group, one
single-threaded process per core) and the local cloud stack (`functions/local_stack.py` with two
train-function instances taking the job events, as Cloud Functions would start instances).

Run with `.venv/bin/python bench/compare_fanout.py`.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from web_latency import check  # noqa: E402

from shared.processes import spawn, stop  # noqa: E402
from tests.processes import free_port, function_env  # noqa: E402

HTMX = {"HX-Request": "true"}
FAMILIES = ["hist_gradient_boosting", "logistic_regression", "mlp", "adaboost"]
FEATURES = ["koi_period", "koi_depth", "koi_prad", "koi_model_snr", "koi_teq", "koi_duration", "koi_impact"]
PLAN = {
    "method": "kfold",
    "folds": "3",
    "stratified": "on",
    "group_column": "kepid",
    "seed": "1",
    "test_size": "0.2",
}


def compare(client: httpx.Client) -> tuple[float, dict[str, float]]:
    """One comparison on Kepler (seven features, 3 grouped folds): its wall time and each family's."""
    page = check(client.get("/"), 200).text
    client.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page).group(1)
    started = check(client.post("/start", data={"dataset": "kepler"}, headers=HTMX), 204)
    run_id = re.search(r"/runs/(r[0-9a-f]{32})/", started.headers["HX-Redirect"]).group(1)
    check(client.get(f"/runs/{run_id}/features"), 200)
    check(client.post(f"/runs/{run_id}/features/visible", data={"q": "", "on": "0"}, headers=HTMX), 200)
    for name in FEATURES:
        check(
            client.post(f"/runs/{run_id}/features/toggle", data={"column": name, "on": "1"}, headers=HTMX),
            200,
        )
    check(client.get(f"/runs/{run_id}/model"), 200)  # where a person starts the comparison from
    check(client.post(f"/runs/{run_id}/evaluate", data=PLAN, headers=HTMX), 200)  # sets the plan
    while "every 1s" in check(client.get(f"/runs/{run_id}/jobs/evaluate", headers=HTMX), 200).text:
        time.sleep(0.2)
    start = time.monotonic()
    check(client.post(f"/runs/{run_id}/compare", data={"family": FAMILIES}, headers=HTMX), 200)
    while "every 1s" in (board := check(client.get(f"/runs/{run_id}/compare", headers=HTMX), 200).text):
        time.sleep(0.1)
    wall = time.monotonic() - start
    states = re.findall(r'<tr data-family="(\w+)" data-state="(\w+)"', board)
    if {s for _, s in states} != {"succeeded"}:
        raise SystemExit(f"the comparison did not finish: {states}")
    own = {}
    for key in FAMILIES:
        result = json.loads(check(client.get(f"/runs/{run_id}/compare/result/{key}"), 200).text)
        own[key] = result["timings"]["wall_s"]
    return wall, own


def report(shape: str, wall: float, own: dict[str, float]) -> None:
    total = sum(own.values())
    times = ", ".join(f"{k} {v:.1f} s" for k, v in own.items())
    print(
        f"{shape}: comparison {wall:.1f} s, families' own {total:.1f} s ({times}); ratio {wall / total:.2f}"
    )


def embedded() -> None:
    from starlette.testclient import TestClient

    from shared.catalog import KEPLER
    from shared.settings import Settings
    from shared.sources import fetch_builtin
    from shared.storage import LocalStorage
    from webapp.app import create_app

    root = Path(tempfile.mkdtemp(prefix="mission-fanout-"))
    settings = Settings(storage_url=str(root / "data"), results_url=str(root / "results"), compare_workers=2)
    fetch_builtin(KEPLER, settings, LocalStorage(root / "data"))
    with TestClient(create_app(settings)) as client:
        report("embedded, 2 worker processes", *compare(client))


def stack() -> None:
    work = Path(tempfile.mkdtemp(prefix="mission-fanout-stack-"))
    port = free_port()
    command = [
        *(sys.executable, "functions/local_stack.py", "--port", str(port), "--logs", str(work)),
        *("--train-instances", "2"),
    ]
    process = spawn(command, cwd=ROOT, env=function_env(), log=work / "stack.out")
    try:
        deadline = time.monotonic() + 180
        while "web app" not in (work / "stack.out").read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((work / "stack.out").read_text()[-3000:])
            time.sleep(0.2)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            report("make stack, 2 train-function instances", *compare(client))
    finally:
        stop(process)


if __name__ == "__main__":
    embedded()
    stack()
