"""The web app as a real server process and headless Chromium driving it, for the browser tests.

Plain helpers plus fixtures, not a pytest plugin: ``tests/conftest.py`` imports the fixtures.
``docs/screenshots.py`` uses the same helpers to start the app and the browser.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shared.processes import spawn
from tests.processes import ROOT, Server, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
# Small, so the oversized-upload test needs only a few MB; a 20-row batch CSV is far below it.
MAX_UPLOAD_MB = 2


def app_env(port: int, storage: Path, *, max_upload_mb: int = MAX_UPLOAD_MB) -> dict[str, str]:
    """The environment `python -m webapp` runs with: local storage, the built-in tables from the
    snapshots the project carries, and no archive (it is unreachable on purpose)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    for name in (
        "KEPLER_URI",
        "K2_URI",
        "TESS_URI",
        "RESULTS_URL",
        "SECRET_KEY",
        "APP_MODE",
        "TRAIN_TRIGGER",
    ):
        env.pop(name, None)
    env.update(
        PORT=str(port),
        HOST="127.0.0.1",
        STORAGE_URL=str(storage),
        COMPUTE_THREADS="2",
        ARCHIVE_TAP_URL="http://127.0.0.1:9/TAP/sync",  # unreachable on purpose: nothing downloads
        MAX_UPLOAD_MB=str(max_upload_mb),
        PYTHONPATH=str(ROOT),
    )
    return env


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Until GET /healthz answers 200; fails early with the log if the server exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the app at {url} was not healthy within {timeout} s:\n{log.read_text()[-3000:]}")


def start_app(
    storage: Path,
    log_dir: Path,
    *,
    port: int | None = None,
    max_upload_mb: int = MAX_UPLOAD_MB,
    **settings: str,
) -> Server:
    """`python -m webapp` from the checkout in its own process group (its worker is a child);
    ``settings``: more environment variables (e.g. JOB_STALE_AFTER_S="3")."""
    port = port or free_port()
    log = log_dir / f"webapp-{port}.log"
    env = {**app_env(port, storage, max_upload_mb=max_upload_mb), **settings}
    process = spawn([sys.executable, "-m", "webapp"], cwd=ROOT, env=env, log=log)
    server = Server(process, f"http://127.0.0.1:{port}/", log)
    try:
        wait_healthy(server.url, process, log)
    except BaseException:
        stop_app(server)
        raise
    return server


def stop_app(server: Server) -> None:
    """Stop the server and anything left in its process group (the embedded worker)."""
    server.stop()


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless; never a downloaded browser (no `playwright install`)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@pytest.fixture
def port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real app server per test module, with its own empty storage."""
    root = tmp_path_factory.mktemp("browser-app")
    (root / "storage").mkdir()
    server = start_app(root / "storage", root)
    try:
        yield server
    finally:
        stop_app(server)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, app_server: Server) -> Iterator[Page]:
    """A fresh browser context (a new workspace cookie) on the app, downloads accepted."""
    context = browser.new_context(base_url=app_server.url, viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    refused: list[str] = []  # the Content Security Policy's refusals, reported on the console
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        yield page
        assert refused == [], refused  # the wizard runs entirely under the policy
    finally:
        context.close()
