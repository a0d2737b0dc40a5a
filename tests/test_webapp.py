"""The web app starts on the embedded default and stays light (no scikit-learn)."""

import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from shared.settings import Settings
from webapp.app import create_app

ROOT = Path(__file__).resolve().parents[1]


def test_home_page_proves_the_stack_is_up(tmp_path):
    client = TestClient(create_app(Settings(storage_url=str(tmp_path / "storage"))))
    response = client.get("/")
    assert response.status_code == 200
    assert response.template.name == "home.html"
    assert "Stack is up" in response.text and "LocalStorage" in response.text
    assert "Histogram Gradient Boosting" in response.text  # rendered from the shared schema
    assert client.get("/static/style.css").status_code == 200


def test_healthz(tmp_path):
    client = TestClient(create_app(Settings(storage_url=str(tmp_path))))
    assert client.get("/healthz").json() == {"status": "ok"}


def test_webapp_does_not_import_scikit_learn():
    code = "import sys, webapp.app; webapp.app.create_app(); print('sklearn' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"STORAGE_URL": "/tmp/mission-control-import-check", "PATH": "/usr/bin"},
    )
    assert out.stdout.strip() == "False"


def _requirements(name: str) -> set[str]:
    """Package names a requirements/*.in file asks for, following -r includes."""
    names = set()
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names |= _requirements(line[3:].strip())
        elif line:
            names.add(line.split("==")[0].lower())
    return names


def test_each_deployable_gets_only_what_it_needs():
    assert "scikit-learn" not in _requirements("webapp.in")
    assert "starlette" not in _requirements("functions.in")
    pinned = {
        line.split("==")[0].lower()
        for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines()
        if "==" in line
    }
    assert _requirements("dev.in") <= pinned  # every direct requirement is locked


def test_the_loop_watch_catches_a_handler_that_blocks():
    """The watch that guards the wizard's tests (tests/loop_watch.py) does catch a blocking call."""
    import time

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from tests.loop_watch import BACKEND, LoopWatch

    async def blocking(request):
        time.sleep(0.08)  # what a storage call on the loop would do
        return PlainTextResponse("done")

    async def busy(request):
        deadline = time.thread_time() + 0.08  # CPU-bound work on the loop (parsing a big file)
        while time.thread_time() < deadline:
            pass
        return PlainTextResponse("done")

    async def fine(request):
        return PlainTextResponse("done")

    routes = [Route("/blocking", blocking), Route("/busy", busy), Route("/fine", fine)]
    watch = LoopWatch(Starlette(routes=routes))
    client = TestClient(watch, backend_options=BACKEND)
    assert client.get("/fine").status_code == 200
    watch.check()
    assert client.get("/blocking").status_code == 200
    with pytest.raises(AssertionError, match=r"the event loop was held:\nExecuting .* took 0\.\d+ seconds"):
        watch.check()
    assert client.get("/busy").status_code == 200
    with pytest.raises(AssertionError, match=r"the event loop was held:\nExecuting .* took 0\.\d+ seconds"):
        watch.check()
