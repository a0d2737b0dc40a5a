"""The local cloud: fake-gcs-server, the train and predict functions as functions-framework
processes, and the web app, wired together by environment variables exactly as in the cloud.

    make stack                       # or: .venv/bin/python functions/local_stack.py
    .venv/bin/python functions/local_stack.py --smoke   # start, check every part answers, stop

The same shape as cloudbuild.yaml: the web app starts a job by writing a ticket to the jobs
bucket (TRAIN_TRIGGER=storage); a stand-in for Eventarc (functions/relay.py) turns each new
object there into one storage-finalize CloudEvent for the train function's event entry point;
status updates and outputs go to the other bucket and invoke nothing. Searches too long for an
event-driven function go to the train function's HTTP entry point.

Ctrl-C or SIGTERM stops everything (and every part dies with this process even if it is
killed outright). Storage lives in a temporary folder for the session.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from functions.emulator import Emulator  # noqa: E402
from functions.relay import EventRelay  # noqa: E402
from shared.processes import spawn, stop  # noqa: E402
from shared.settings import EVENT_FUNCTION_LIMIT_S, HTTP_FUNCTION_LIMIT_S  # noqa: E402
from shared.storage import GCSStorage  # noqa: E402

BIN = Path(sys.executable).parent
BUCKET = "mission-control"
JOBS_BUCKET = "mission-control-jobs"


def _wait(url: str, process, timeout: float = 60) -> None:
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


def _port_near(preferred: int) -> int:
    """`preferred` when it is free, else any free port: a busy neighbour must not stop the stack."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise SystemExit("no free port on 127.0.0.1")


def _stop_like_ctrl_c(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="the web app's port")
    parser.add_argument("--smoke", action="store_true", help="start, check every part answers, then stop")
    parser.add_argument("--logs", type=Path, help="write each part's log to this folder, not the terminal")
    parser.add_argument(
        "--train-instances",
        type=int,
        default=2,
        help="train-function processes taking job events side by side",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)

    work = Path(tempfile.mkdtemp(prefix="mission-stack-"))
    log_dir = args.logs or (work if args.smoke else None)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)

    def logs(name: str) -> Path | None:
        """Interactive: every part logs to this terminal. A smoke run keeps its parts quiet."""
        return log_dir / f"{name}.log" if log_dir is not None else None

    gcs = Emulator(work / "gcs", _port_near(args.port + 3))
    processes = []
    relay = None
    try:
        gcs.start()
        for bucket in (BUCKET, JOBS_BUCKET):
            gcs.client().create_bucket(bucket)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "STORAGE_EMULATOR_HOST": gcs.url,
            "STORAGE_URL": f"gs://{BUCKET}/data",
            "RESULTS_URL": f"gs://{BUCKET}/results",
            "JOBS_URL": f"gs://{JOBS_BUCKET}",
        }

        def function(name: str, source: str, target: str, port: int, timeout_s: int, *extra: str) -> str:
            url = f"http://127.0.0.1:{port}/"
            command = [
                *(str(BIN / "functions-framework"), "--source", str(ROOT / "functions" / source / "main.py")),
                *("--target", target, "--host", "127.0.0.1", "--port", str(port), *extra),
            ]
            part_env = {**env, "JOB_TIMEOUT_S": str(timeout_s)}
            processes.append(spawn(command, cwd=ROOT, env=part_env, log=logs(name)))
            _wait(url, processes[-1])
            return url

        train_url = function("train", "train", "train_http", _port_near(args.port + 1), HTTP_FUNCTION_LIMIT_S)
        predict_url = function(
            "predict", "predict", "predict_http", _port_near(args.port + 2), HTTP_FUNCTION_LIMIT_S
        )
        event_urls = [
            function(
                f"train-event-{n}" if n else "train-event",
                "train",
                "train_event",
                _port_near(args.port + 4 + 2 * n),
                EVENT_FUNCTION_LIMIT_S,
                *("--signature-type", "cloudevent"),
            )
            for n in range(max(1, args.train_instances))
        ]
        relay = EventRelay(GCSStorage(JOBS_BUCKET, client=gcs.client()), event_urls).start()
        web_env = {
            **env,
            "TRAIN_TRIGGER": "storage",
            "TRAIN_URL": train_url,
            "PREDICT_URL": predict_url,
            "PORT": str(args.port),
        }
        processes.append(spawn([sys.executable, "-m", "webapp"], cwd=ROOT, env=web_env, log=logs("web")))
        web = f"http://127.0.0.1:{args.port}/"
        _wait(web + "healthz", processes[-1])
        if args.logs is not None:  # which process is which, for bench/cost.py
            events = [f"train-event-{n}" if n else "train-event" for n in range(len(event_urls))]
            names = ("train", "predict", *events, "web")
            pids = {name: process.pid for name, process in zip(names, processes, strict=True)}
            (args.logs / "pids.json").write_text(json.dumps(pids))
        print(f"storage emulator  {gcs.url}  (buckets {BUCKET}, {JOBS_BUCKET})")
        print(f"train function    {train_url}  (HTTP: long searches)")
        print(f"train events      {', '.join(event_urls)}  (a job ticket in gs://{JOBS_BUCKET} invokes one)")
        print(f"predict function  {predict_url}")
        print(f"web app           {web}", flush=True)
        while not args.smoke:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if relay is not None:
            relay.stop()
        for process in reversed(processes):
            stop(process)
        gcs.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
