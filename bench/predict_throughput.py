"""Batch prediction through the predict function (HTTP, CSV in and out) versus the bare
pipeline (pd.read_csv -> predict_proba -> to_csv), on 100,000 KOI-like rows, in one run.

Run with `.venv/bin/python bench/predict_throughput.py [--rows N]`. Prints rows/s for both,
the ratio (goal >= 1.0; and >= 66,000 rows/s, three times a comparable Flask app), and the
function process's peak memory. The model: RandomForest with the schema's defaults.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.catalog import KEPLER  # noqa: E402
from shared.jobs import run_job  # noqa: E402
from shared.predict import load_model  # noqa: E402
from shared.runs import FINAL, new_run_id, request_job, save_spec  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.sources import fetch_builtin, load_table  # noqa: E402
from shared.spec import RunSpec  # noqa: E402
from shared.storage import LocalStorage  # noqa: E402
from tests.nasa import KOI_EXCLUDED  # noqa: E402
from tests.processes import function_env, start_function  # noqa: E402


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    data, results = LocalStorage(work / "data"), LocalStorage(work / "results")
    fetch_builtin(KEPLER, Settings(), data)  # the snapshot the project carries
    koi = load_table(data, "kepler")
    spec = RunSpec.from_dict({
        "dataset": "kepler", "target": "koi_disposition", "label_mapping": KEPLER.default_setup.mapping,
        "features": [c for c in koi.columns if c not in KOI_EXCLUDED], "group_column": "kepid",
        "model": {"family": "random_forest"},
    })  # fmt: skip
    run_id = new_run_id()
    save_spec(results, run_id, spec.to_dict())
    request_job(results, run_id, FINAL, spec)
    assert run_job(run_id, FINAL, data, results).state == "succeeded"
    rows = koi.sample(args.rows, replace=True, random_state=0)
    csv_path = work / "rows.csv"
    rows.to_csv(csv_path, index=False)
    size_mb = csv_path.stat().st_size / 1e6

    # the bare pipeline, as a notebook would do it (same fitted model)
    pipe = load_model(results, run_id).pipe
    start = time.perf_counter()
    frame = pd.read_csv(csv_path)
    proba = pipe.predict_proba(frame[list(spec.features)])
    out = frame[["kepoi_name"]].assign(prediction=pipe.classes_[proba.argmax(axis=1)])
    for i, name in enumerate(pipe.classes_):
        out[f"probability_{name}"] = proba[:, i]
    out.to_csv(io.StringIO(), index=False)
    bare = time.perf_counter() - start

    env = function_env(STORAGE_URL=str(work / "data"), RESULTS_URL=str(work / "results"))
    server = start_function(ROOT / "functions/predict/main.py", "predict_http", env, work)
    try:
        with httpx.Client(timeout=600) as client:
            warm = client.post(
                server.url,
                params={"run_id": run_id},
                files={"file": ("w.csv", rows.head(100).to_csv(index=False), "text/csv")},
            )
            assert warm.status_code == 200, warm.text
            start = time.perf_counter()
            with csv_path.open("rb") as body:
                response = client.post(
                    server.url, params={"run_id": run_id}, files={"file": ("rows.csv", body)}
                )
            ours = time.perf_counter() - start
        assert response.status_code == 200, response.text[:500]
        assert response.text.count("\n") == args.rows + 1
        peak = peak_rss_mb(server.process.pid)
    finally:
        server.stop()
    print(
        f"{args.rows:,} KOI-like rows ({size_mb:.1f} MB CSV), RandomForest defaults (300 trees), "
        f"{os.cpu_count()} cores"
    )
    print(
        f"bare pipeline (read_csv -> predict_proba -> to_csv): {bare:6.2f} s  {args.rows / bare:9,.0f} rows/s"
    )
    print(
        f"predict function over HTTP (CSV in, CSV out):       {ours:6.2f} s  {args.rows / ours:9,.0f} rows/s"
    )
    print(f"throughput ratio function / bare: {bare / ours:.2f}   (goal >= 1.0; >= 66,000 rows/s)")
    print(f"predict function peak memory (VmHWM): {peak:.0f} MB")


if __name__ == "__main__":
    main()
