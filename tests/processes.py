"""Real processes for the tests: functions-framework servers on 127.0.0.1 ports.

Every server is started with shared.processes.spawn (a process group of its own that dies
with the test run) and stopped even when its start-up or the test fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from shared.processes import spawn, stop

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_FRAMEWORK = str(Path(sys.executable).parent / "functions-framework")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path

    def stop(self) -> None:
        stop(self.process)


def wait_until_answering(url: str, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> float:
    """Seconds until the server answers any HTTP request (a 4xx counts: it is up)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return time.monotonic() - start
        except urllib.error.HTTPError:
            return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def start_function(
    source: Path,
    target: str,
    env: dict[str, str],
    log_dir: Path,
    *,
    signature: str = "http",
    cwd: Path = ROOT,
    functions_framework: str = FUNCTIONS_FRAMEWORK,
) -> Server:
    """``functions-framework`` serving ``target`` from ``source`` (by default the dev venv's; a
    deploy test passes a fresh venv's)."""
    port = free_port()
    log = log_dir / f"{target}-{port}.log"
    command = [
        functions_framework,
        "--source",
        str(source),
        "--target",
        target,
        "--signature-type",
        signature,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = Server(spawn(command, cwd=cwd, env=env, log=log), f"http://127.0.0.1:{port}/", log)
    try:
        wait_until_answering(server.url, server.process, log)
    except BaseException:
        server.stop()
        raise
    return server


def function_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env.update(values)
    env.setdefault("PYTHONPATH", str(ROOT))
    return env
