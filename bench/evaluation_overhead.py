"""What an evaluation costs through the app against a bare scikit-learn script doing the same.

Run with `.venv/bin/python bench/evaluation_overhead.py [--repeats 3]` (`make bench` runs it).

The app: `python -m webapp` as `make run` starts it (embedded worker), Kepler with its default
binary setup and features, HistGradientBoosting defaults, 5 grouped stratified folds; timed
from the POST to the status fragment showing the metrics with "Feature importance" unticked
(the figures follow), and to the job's end (importance shown) with it ticked. The baseline, in
this process on the same cores: `cross_val_predict(HistGradientBoostingClassifier(), X, y, groups, cv=
StratifiedGroupKFold(5, shuffle=True), method="predict_proba")` on the same rows, features and
labels. Runs are interleaved (app, bare, app, bare, ...) and the medians compared.

Goal: app / bare <= 1.15 with importance off. (The app assigns grouped folds with
shared.folds.FastStratifiedGroupKFold, the same folds as scikit-learn's class in a fifth of the
time; the baseline uses scikit-learn's own.)
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from web_latency import WEBAPP, app_env, check, model_form, serve, start_run  # noqa: E402

GOAL = 1.15
HTMX = {"HX-Request": "true"}
FOLDS = 5


def app_evaluation_s(client: httpx.Client, run_id: str, importance: bool, seed: int) -> float:
    plan = {
        "method": "kfold",
        "folds": str(FOLDS),
        "stratified": "on",
        "group_column": "kepid",
        "seed": str(seed),
    }
    if importance:
        plan["importance"] = "on"
    start = time.perf_counter()
    check(client.post(f"/runs/{run_id}/evaluate", data=plan), 200)
    while True:
        body = check(client.get(f"/runs/{run_id}/jobs/evaluate", headers=HTMX), 200).text
        if 'data-testid="metrics"' in body and not importance:  # the metrics are on the page
            return time.perf_counter() - start
        if 'data-state="succeeded"' in body:  # with importance: until it is shown too
            return time.perf_counter() - start
        if 'data-state="failed"' in body:
            raise RuntimeError(body[-2000:])
        time.sleep(0.05)


def bare_problem(storage: Path, run_id: str):
    """The run's rows, features, labels and groups, as a bare script would prepare them."""
    from shared.data import read_table
    from shared.snapshot import read_snapshot

    spec = json.loads((storage / "runs" / run_id / "spec.json").read_text())
    frame = read_table(read_snapshot(spec["dataset"]), filename="table.csv")
    mapping = spec.get("label_mapping") or {}
    labels = frame[spec["target"]].map(lambda v: mapping.get(v, v))
    keep = labels.notna()
    if spec.get("score_classes"):
        keep &= ~frame[spec["target"]].isin(spec["score_classes"])
    frame = frame[keep]
    return frame[spec["features"]], labels[keep].astype(str), frame[spec["group_column"]]


def bare_evaluation_s(x, y, groups, seed: int) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    start = time.perf_counter()
    cross_val_predict(
        HistGradientBoostingClassifier(),
        x,
        y,
        groups=groups,
        cv=StratifiedGroupKFold(FOLDS, shuffle=True, random_state=seed),
        method="predict_proba",
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    storage = Path(tempfile.mkdtemp(prefix="mission-eval-bench-"))
    env = app_env(storage)
    env.pop("COMPUTE_THREADS", None)  # every core, as the bare script uses
    times: dict[str, list[float]] = {"app": [], "app+importance": [], "bare": []}
    with (
        serve(WEBAPP, ROOT, env, storage / "web.log") as server,
        httpx.Client(base_url=server.url, timeout=120) as client,
    ):
        page = check(client.get("/"), 200).text
        client.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page).group(1)
        run_id = start_run(client)
        check(client.get(f"/runs/{run_id}/features"), 200)
        check(client.post(f"/runs/{run_id}/model", data=model_form()), 303)
        x, y, groups = bare_problem(storage, run_id)
        app_evaluation_s(client, run_id, False, 0)  # warm: the worker's imports, the table's cache
        bare_evaluation_s(x, y, groups, 0)
        for repeat in range(args.repeats):
            times["app"].append(app_evaluation_s(client, run_id, False, repeat + 1))
            times["bare"].append(bare_evaluation_s(x, y, groups, repeat + 1))
            times["app+importance"].append(app_evaluation_s(client, run_id, True, repeat + 1))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"Kepler, {len(x):,} rows x {x.shape[1]} features, HistGradientBoosting, {FOLDS} grouped folds")
    for name, values in times.items():
        print(f"  {name:15} median {median[name]:6.2f} s   ({', '.join(f'{v:.2f}' for v in values)})")
    ratio = median["app"] / median["bare"]
    print(
        f"app / bare, importance off: {ratio:.2f}  (goal <= {GOAL}: {'met' if ratio <= GOAL else 'MISSED'})"
    )
    print(f"app / bare, importance on:  {median['app+importance'] / median['bare']:.2f}")


if __name__ == "__main__":
    main()
