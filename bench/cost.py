"""What one wizard session and 100,000 predicted rows cost in the deployed shape, measured on
the local cloud stack (`functions/local_stack.py`: the same functions, jobs bucket and event
path as cloudbuild.yaml) and priced at Google's list prices.

Run with `.venv/bin/python bench/cost.py` (`make bench` runs it with the other scripts).

A session: Kepler, HistGradientBoosting defaults, 5 grouped folds; train on all data; one
single-row prediction. Then a batch of 100,000 KOI rows (sampled with replacement). For each
part it measures the CPU-seconds its processes used (/proc), their peak memory, and how long
each job held its function (wall time from the request to its status saying done, an upper
bound: it includes the event relay's and the poll's delay). Cloud Run functions bill the
instance's allocated vCPU and memory for as long as a request runs (request-based billing,
rounded up to 100 ms), so the price follows wall time times size, not CPU used; the baseline line
prints what a bare scikit-learn cross_val_predict of the same evaluation costs in CPU-seconds
here, for scale.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from web_latency import check, model_form  # noqa: E402

from shared.processes import spawn, stop  # noqa: E402
from tests.processes import free_port, function_env  # noqa: E402

# Tier 1 list prices, request-based billing (cloud.google.com/run/pricing, checked 2026-12):
# the same for Cloud Run services and Cloud Run functions (2nd gen)
USD_PER_VCPU_S = 0.000024
USD_PER_GIB_S = 0.0000025
USD_PER_MILLION_REQUESTS = 0.40
# the sizes cloudbuild.yaml deploys: (vCPU, GiB)
SIZES = {"train-event": (2, 4), "train": (2, 4), "predict": (1, 2), "web": (1, 2)}
HTMX = {"HX-Request": "true"}
TICK = os.sysconf("SC_CLK_TCK")


def group_usage(pgid: int) -> tuple[float, float]:
    """(CPU-seconds, peak MiB of the largest process) of every live process in a process group."""
    cpu, peak = 0.0, 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            cpu += (int(fields[11]) + int(fields[12])) / TICK
            status = (entry / "status").read_text()
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            peak = max(peak, int(match.group(1)) / 1024 if match else 0.0)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return cpu, peak


def wait_done(client: httpx.Client, run_id: str, mode: str) -> float:
    start = time.monotonic()
    while True:
        body = check(client.get(f"/runs/{run_id}/jobs/{mode}", headers=HTMX), 200).text
        if 'data-state="succeeded"' in body:
            return time.monotonic() - start
        if 'data-state="failed"' in body:
            raise RuntimeError(f"{mode} failed:\n{body[-2000:]}")
        time.sleep(0.25)


def usd(seconds: float, part: str) -> float:
    cpu, gib = SIZES[part]
    return max(seconds, 0.1) * (cpu * USD_PER_VCPU_S + gib * USD_PER_GIB_S)


def kepler_table():
    from shared.catalog import KEPLER
    from shared.data import read_table
    from shared.snapshot import read_snapshot

    return read_table(read_snapshot(KEPLER.id), filename="kepler.csv")


def bare_evaluation_cpu_s(frame, features: list[str]) -> float:
    """CPU-seconds of a bare scikit-learn cross_val_predict on the same table, features and kind
    of folds (planet-like vs false positive, grouped by star), in this process."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    y = (frame["koi_disposition"] != "FALSE POSITIVE").to_numpy()
    start = time.process_time()
    cross_val_predict(
        HistGradientBoostingClassifier(random_state=0),
        frame[features],
        y,
        groups=frame["kepid"],
        cv=StratifiedGroupKFold(5, shuffle=True, random_state=0),
        method="predict_proba",
    )
    return time.process_time() - start


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="mission-cost-"))
    port = free_port()
    command = [
        *(sys.executable, "functions/local_stack.py", "--port", str(port), "--logs", str(work)),
        *("--train-instances", "1"),  # the session's jobs all on the one measured process
    ]
    stack = spawn(command, cwd=ROOT, env=function_env(), log=work / "stack.out")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not (work / "pids.json").exists():
            if stack.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((work / "stack.out").read_text()[-3000:])
            time.sleep(0.2)
        time.sleep(1)
        pids = json.loads((work / "pids.json").read_text())
        before = {part: group_usage(pid)[0] for part, pid in pids.items()}
        requests = 0
        wall: dict[str, float] = {}
        with httpx.Client(base_url=url, timeout=120) as client:
            page = check(client.get("/"), 200).text
            client.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page).group(1)
            started = check(client.post("/start", data={"dataset": "kepler"}), 303)
            run_id = re.search(r"/runs/(r[0-9a-f]{32})/", started.headers["location"]).group(1)
            check(client.post(f"/runs/{run_id}/model", data=model_form()), 303)
            plan = {"method": "kfold", "folds": "5", "stratified": "on", "group_column": "kepid", "seed": "1"}
            check(client.post(f"/runs/{run_id}/evaluate", data=plan), 200)
            wall["evaluate"] = wait_done(client, run_id, "evaluate")
            check(client.post(f"/runs/{run_id}/jobs/final", headers=HTMX), 200)
            wall["final"] = wait_done(client, run_id, "final")
            features = (
                check(client.get(f"/runs/{run_id}/predict/template.csv"), 200).text.split()[0].split(",")
            )
            frame = kepler_table()
            row = {name: str(frame[name].median()) for name in features}
            start = time.monotonic()
            check(client.post(f"/runs/{run_id}/predict/row", data=row, headers=HTMX), 200)
            wall["predict-row"] = time.monotonic() - start
            requests += 8
            session = {part: group_usage(pid)[0] - before[part] for part, pid in pids.items()}

            batch = work / "batch.csv"
            frame.sample(100_000, replace=True, random_state=1).to_csv(batch, index=False)
            before_batch = {part: group_usage(pid)[0] for part, pid in pids.items()}
            with batch.open("rb") as file:
                files = {"file": ("batch.csv", file, "text/csv")}
                check(client.post(f"/runs/{run_id}/predict/batch", files=files, headers=HTMX), 200)
            wall["batch"] = wait_done(client, run_id, "batch")
            batch_cpu = {part: group_usage(pid)[0] - before_batch[part] for part, pid in pids.items()}
        peaks = {part: group_usage(pid)[1] for part, pid in pids.items()}
    finally:
        stop(stack)

    print("CPU-seconds used per part (measured, this machine):")
    for part in pids:
        print(
            f"  {part:12} session {session[part]:7.1f} s   100k-row batch {batch_cpu[part]:6.1f} s"
            f"   peak {peaks[part]:6.0f} MiB"
        )
    print(
        "job wall time (request to done, upper bound): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in wall.items())
    )
    bare = bare_evaluation_cpu_s(frame, features)
    print(
        f"bare scikit-learn cross_val_predict of the same evaluation: {bare:.1f} CPU-s "
        f"(the session's train function used {session['train-event'] / bare:.1f}x that, with the final "
        "training and its explanations)"
    )
    session_usd = (
        usd(wall["evaluate"], "train-event")
        + usd(wall["final"], "train-event")
        + usd(wall["predict-row"], "predict")
        + usd(session["web"], "web")
        + requests * USD_PER_MILLION_REQUESTS / 1e6
    )
    batch_usd = usd(wall["batch"], "train-event") + usd(batch_cpu["web"], "web")
    print(
        f"list price per wizard session: ${session_usd:.4f}"
        f"  (about {1 / session_usd:,.0f} sessions per dollar)"
    )
    print(f"list price per 100,000 predicted rows: ${batch_usd:.4f}")
    print("free tier (per billing account, per month): 180,000 vCPU-s, 360,000 GiB-s, 2 million requests")


if __name__ == "__main__":
    main()
