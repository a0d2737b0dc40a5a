"""Cold start of each function: from launching its functions-framework process to its first
answered request, and to its first real answer (a job status or a prediction).

Run with `.venv/bin/python bench/cold_start.py [--repeat N]`. Goal: under 1.5 s to the first
answered request on this machine. The baseline, measured in the same run, is a bare Python
process that imports scikit-learn, pandas and Flask and does nothing else.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.processes import function_env, start_function  # noqa: E402

BARE = "import flask, pandas, sklearn.ensemble, sklearn.pipeline"


def bare_import_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", BARE], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    env = function_env(STORAGE_URL=str(work / "data"), RESULTS_URL=str(work / "results"))
    print(f"median of {args.repeat} launches")
    bare = statistics.median(bare_import_seconds() for _ in range(args.repeat))
    print(f"{'baseline: python -c ' + repr(BARE):<62} {bare:6.2f} s")
    for function, target in (("train", "train_http"), ("predict", "predict_http")):
        first, real = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            server = start_function(ROOT / "functions" / function / "main.py", target, env, work)
            first.append(time.perf_counter() - start)
            body = {"run_id": "r" + "0" * 32, "mode": "final", "rows": [{"x": 1}]}
            response = httpx.post(server.url, json=body, timeout=30)  # a real lookup in storage: 404
            real.append(time.perf_counter() - start)
            assert response.status_code == 404, response.text
            server.stop()
        for label, seconds in (
            ("launch to first answered request (goal < 1.5 s)", first),
            ("launch to first storage-backed answer", real),
        ):
            print(f"{function + ' function: ' + label:<62} {statistics.median(seconds):6.2f} s")


if __name__ == "__main__":
    main()
