"""The local cloud: fake-gcs-server, the train and predict functions as functions-framework
processes, and the web app, wired together by environment variables exactly as in the cloud.

    make stack                       # or: .venv/bin/python functions/local_stack.py
    .venv/bin/python functions/local_stack.py --smoke   # start, check every part answers, stop

Ctrl-C or SIGTERM stops everything (and every part dies with this process even if it is
killed outright). Storage lives in a temporary folder for the session.
"""

from __future__ import annotations

import argparse
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
from shared.processes import spawn, stop  # noqa: E402

BIN = Path(sys.executable).parent
BUCKET = "mission-control"


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
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)

    work = Path(tempfile.mkdtemp(prefix="mission-stack-"))

    def logs(name: str) -> Path | None:
        """Interactive: every part logs to this terminal. A smoke run keeps its parts quiet."""
        return work / f"{name}.log" if args.smoke else None

    gcs = Emulator(work / "gcs", _port_near(args.port + 3))
    processes = []
    try:
        gcs.start()
        gcs.client().create_bucket(BUCKET)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "STORAGE_EMULATOR_HOST": gcs.url,
            "STORAGE_URL": f"gs://{BUCKET}/data",
            "RESULTS_URL": f"gs://{BUCKET}/results",
        }
        ports = {"train": _port_near(args.port + 1), "predict": _port_near(args.port + 2)}

        def function(name: str, target: str) -> str:
            url = f"http://127.0.0.1:{ports[name]}/"
            command = [
                *(str(BIN / "functions-framework"), "--source", str(ROOT / "functions" / name / "main.py")),
                *("--target", target, "--host", "127.0.0.1", "--port", str(ports[name])),
            ]
            processes.append(spawn(command, cwd=ROOT, env=env, log=logs(name)))
            _wait(url, processes[-1])
            return url

        train_url, predict_url = function("train", "train_http"), function("predict", "predict_http")
        web_env = {**env, "TRAIN_URL": train_url, "PREDICT_URL": predict_url, "PORT": str(args.port)}
        processes.append(spawn([sys.executable, "-m", "webapp"], cwd=ROOT, env=web_env, log=logs("web")))
        web = f"http://127.0.0.1:{args.port}/"
        _wait(web + "healthz", processes[-1])
        print(f"storage emulator  {gcs.url}  (bucket {BUCKET})")
        print(f"train function    {train_url}")
        print(f"predict function  {predict_url}")
        print(f"web app           {web}", flush=True)
        while not args.smoke:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for process in reversed(processes):
            stop(process)
        gcs.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
