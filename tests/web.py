"""A test browser for the web app: a TestClient that has loaded a page, so it holds a
workspace cookie and sends that workspace's CSRF token with every request, as htmx does."""

import re
import time

from starlette.testclient import TestClient

CSRF = re.compile(r'"X-CSRF-Token": "([0-9a-f]{40})"')


def csrf_of(page_text: str) -> str:
    return CSRF.search(page_text).group(1)


def browser(app, **kwargs) -> TestClient:
    client = TestClient(app, **kwargs)
    return with_csrf(client)


def with_csrf(client: TestClient) -> TestClient:
    client.headers["X-CSRF-Token"] = csrf_of(client.get("/").text)
    return client


HX = {"HX-Request": "true"}


def follow(client: TestClient, path: str, timeout: float = 300):
    """GET a job's status fragment as htmx polls it, until it stops polling; the last answer."""
    deadline = time.monotonic() + timeout
    response = client.get(path, headers=HX)
    while 'hx-trigger="every 1s"' in response.text:
        assert time.monotonic() < deadline, f"{path}: still running after {timeout} s"
        time.sleep(0.3)
        response = client.get(path, headers=HX)
    return response
