"""A test browser for the web app: a TestClient that has loaded a page, so it holds a
workspace cookie and sends that workspace's CSRF token with every request, as htmx does."""

import re

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
