"""Nothing the project starts outlives what started it: `make run` and its training worker,
`make stack` and its parts, and the tests' own servers, on SIGTERM, on failure, on SIGKILL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from shared.processes import spawn, stop
from shared.runs import read_status
from shared.storage import LocalStorage
from tests.browser import app_env, wait_healthy
from tests.processes import ROOT, free_port

pytestmark = pytest.mark.slow


def _processes() -> dict[int, tuple[int, str]]:
    """Every live process: pid → (parent pid, command line)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found[int(entry.name)] = (int(fields[1]), command)
        except (OSError, ValueError, IndexError):
            continue
    return found


def _tree(root: int) -> dict[int, str]:
    """``root`` and every process descended from it: pid → command line."""
    table = _processes()
    tree = {root: table[root][1]} if root in table else {}
    grew = True
    while grew:
        grew = False
        for pid, (parent, command) in table.items():
            if parent in tree and pid not in tree:
                tree[pid], grew = command, True
    return tree


def _left(pids: dict[int, str], timeout: float = 30.0) -> dict[int, str]:
    """Which of ``pids`` are still alive after waiting up to ``timeout`` for them to go."""
    deadline = time.monotonic() + timeout
    while (alive := {p: c for p, c in pids.items() if p in _processes()}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def test_sigterm_to_make_run_stops_the_app_and_its_worker_mid_job(tmp_path):
    port = free_port()
    env = app_env(port, tmp_path / "storage")
    make = spawn(["make", "-s", "run"], cwd=ROOT, env=env, log=tmp_path / "make.log")
    try:
        wait_healthy(f"http://127.0.0.1:{port}/", make, tmp_path / "make.log", timeout=180)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            page = client.get("/").text
            client.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page).group(1)
            started = client.post("/start", data={"dataset": "kepler"})
            run_id = re.search(r"/runs/(r[0-9a-f]{32})/", started.headers["location"]).group(1)
            assert client.get(f"/runs/{run_id}/features").status_code == 200  # the default features
            plan = {
                "method": "kfold",
                "folds": "10",
                "stratified": "on",
                "group_column": "kepid",
                "seed": "1",
            }
            assert client.post(f"/runs/{run_id}/evaluate", data=plan).status_code == 200
        results = LocalStorage(tmp_path / "storage")
        deadline = time.monotonic() + 60
        while (status := read_status(results, run_id, "evaluate")[0]).state != "running":
            assert time.monotonic() < deadline and status.state == "queued", status
            time.sleep(0.1)
        started = _tree(make.pid)
        assert sum("multiprocessing" in c for c in started.values()) >= 2, started  # the worker, its helper
        os.kill(make.pid, signal.SIGTERM)  # only to make, as `kill <pid>` would
        make.wait(timeout=30)
        assert _left(started) == {}
    finally:
        stop(make)


def test_sigterm_to_make_stack_stops_every_part(tmp_path):
    port = free_port()
    make = spawn(["make", "-s", "stack", f"STACK_ARGS=--port {port}"], cwd=ROOT, log=tmp_path / "stack.log")
    try:
        wait_healthy(f"http://127.0.0.1:{port}/", make, tmp_path / "stack.log", timeout=120)
        parts = _tree(make.pid)
        assert sum("functions-framework" in c for c in parts.values()) >= 2, parts
        assert any("fake-gcs" in c for c in parts.values()) and any("-m webapp" in c for c in parts.values())
        os.kill(make.pid, signal.SIGTERM)
        make.wait(timeout=60)
        assert _left(parts) == {}
    finally:
        stop(make)


FAILING_TESTS = """
import os, time
from pathlib import Path
import pytest
from tests.processes import ROOT, function_env, start_function

PIDS = Path(os.environ["PIDS_FILE"])

@pytest.fixture
def server(tmp_path):
    started = start_function(ROOT / "functions" / "predict" / "main.py", "predict_http", function_env(), tmp_path)
    with PIDS.open("a") as pids:
        pids.write(f"{started.process.pid}\\n")
    yield started
    started.stop()

@pytest.fixture
def broken(server):
    raise RuntimeError("this fixture fails after its server started")

def test_fails(server):
    assert False, "on purpose"

def test_fixture_fails(broken):
    pass

def test_never_ends(server):
    if os.environ.get("HANG"):
        time.sleep(600)
"""


def _pytest(tmp_path: Path, pids: Path, **env: str) -> subprocess.Popen:
    (tmp_path / "test_on_purpose.py").write_text(textwrap.dedent(FAILING_TESTS))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "PIDS_FILE": str(pids), **env}
    return spawn(
        [*command, str(tmp_path / "test_on_purpose.py")], cwd=tmp_path, env=environment, log=tmp_path / "log"
    )


def _servers(pids: Path) -> list[int]:
    return [int(line) for line in pids.read_text().split()] if pids.exists() else []


def test_servers_of_failing_tests_and_fixtures_are_stopped(tmp_path):
    pids = tmp_path / "pids"
    run = _pytest(tmp_path, pids)
    assert run.wait(timeout=180) == 1, (tmp_path / "log").read_text()[-3000:]
    log = (tmp_path / "log").read_text()
    assert "1 failed, 1 passed, 1 error" in log, log[-3000:]
    assert len(_servers(pids)) == 3
    assert _left(dict.fromkeys(_servers(pids), "functions-framework")) == {}


def test_servers_go_when_the_test_run_is_killed_outright(tmp_path):
    pids = tmp_path / "pids"
    run = _pytest(tmp_path, pids, HANG="1")
    try:
        deadline = time.monotonic() + 120
        while len(_servers(pids)) < 3:  # the third test's server is up, and it hangs
            assert time.monotonic() < deadline and run.poll() is None, (tmp_path / "log").read_text()[-3000:]
            time.sleep(0.2)
        servers = _tree(_servers(pids)[-1])  # the hanging test's functions-framework and its worker
        assert len(servers) >= 2, servers
        run.kill()  # SIGKILL: no fixture teardown runs
        run.wait()
        assert _left(servers) == {}
    finally:
        stop(run)
