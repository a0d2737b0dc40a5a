"""Error answers never carry unescaped client input, and stored figures keep a policy that fits them.

htmx inserts 4xx (and 503) answers into the page as HTML whatever their content type, so every
error body is an HTML fragment with its message escaped (a whole page around it for a plain
request), with the app's Content-Security-Policy. A figure opened on its own carries its own,
stricter policy: it must allow exactly what matplotlib puts in the SVG (a <style>, data: PNGs)
and never a script.
"""

import html
import re
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
from starlette.responses import Response
from starlette.testclient import TestClient

from tests.web import HX, PLAN, QUICK_FORM, browser, follow, kepler_app

pytestmark = pytest.mark.slow

LINK = "<a href=x>1</a>"
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    application = kepler_app(tmp_path_factory.mktemp("errors"))

    def boom(request):
        raise RuntimeError(f"an unexpected failure repeating {request.query_params.get('q')}")

    application.add_route("/test-boom", boom)  # stands for any bug an input could reach
    with TestClient(application):
        yield application


@pytest.fixture(scope="module")
def client(app):
    return browser(app)


@pytest.fixture(scope="module")
def evaluated(client):
    """A KOI run evaluated with a quick model: two classes, out-of-fold predictions, figures."""
    started = client.post("/start", data={"dataset": "kepler"}, headers=HX)
    run_id = re.fullmatch(r"/runs/(r[0-9a-f]{32})/features", started.headers["HX-Redirect"]).group(1)
    client.get(f"/runs/{run_id}/features")
    client.post(f"/runs/{run_id}/model", data=QUICK_FORM, headers=HX)
    client.post(f"/runs/{run_id}/evaluate", data=PLAN, headers=HX)
    done = follow(client, f"/runs/{run_id}/jobs/evaluate")
    assert 'data-state="succeeded"' in done.text, done.text[:2000]
    return run_id, done.text


def _assert_escaped_error(response, status: int, typed: str) -> None:
    """The answer is an HTML error whose text shows ``typed`` escaped, never as markup."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert typed not in response.text  # not as markup anywhere
    assert html.escape(typed, quote=False) in response.text  # but shown, escaped
    assert re.search(r'<p class="alert" role="alert" data-testid="[a-z-]+">', response.text)
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("query", "typed"),
    [
        (f"preset=recall&goal={quote(LINK)}", LINK),
        (f"preset=precision&goal={quote(SCRIPT)}", SCRIPT),
        (f"threshold={quote(LINK)}", LINK),
    ],
    ids=["recall-goal-link", "precision-goal-script", "threshold-link"],
)
def test_a_typed_value_echoed_in_a_400_comes_back_escaped(client, evaluated, query, typed):
    run_id, _ = evaluated
    response = client.get(f"/runs/{run_id}/threshold?{query}", headers=HX)
    _assert_escaped_error(response, 400, typed)
    assert "is not a number between 0 and 1" in html.unescape(response.text)
    assert "<html" not in response.text and "HX-Request" in response.headers["vary"]
    # a plain request (a shared link) is sent to the evaluate step, or refused: escaped either way
    plain = client.get(f"/runs/{run_id}/threshold?{query}")
    assert plain.status_code in (200, 400) and typed not in plain.text
    assert "script-src 'self'" in plain.headers["content-security-policy"]


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_a_posted_threshold_is_escaped_too(client, evaluated, htmx):
    run_id, _ = evaluated
    response = client.post(
        f"/runs/{run_id}/threshold", data={"threshold": SCRIPT}, headers=HX if htmx else {}
    )
    _assert_escaped_error(response, 400, SCRIPT)
    if htmx:
        assert "<html" not in response.text and "HX-Request" in response.headers["vary"]
    else:
        assert response.text.startswith("<!doctype html>") and "<h1>Bad Request</h1>" in response.text


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_missing_pages_and_runs_are_html_with_the_policy(client, htmx):
    headers = HX if htmx else {}
    for path, message in [
        ("/no-such-page", "Not Found"),
        (f"/runs/r{'0' * 32}/features", "No such run."),
        (f"/runs/{quote('<img src=x onerror=alert(1)>', safe='')}/features", "No such run."),
    ]:
        response = client.get(path, headers=headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert f'data-testid="error">{message}</p>' in response.text and "<img" not in response.text
    refused = client.put("/start", headers=headers)  # the method's header survives
    assert refused.status_code == 405 and "GET" in refused.headers["allow"]


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_an_unexpected_failure_is_a_short_escaped_500_with_the_policy(app, htmx):
    visitor = TestClient(app, raise_server_exceptions=False)
    response = visitor.get(f"/test-boom?q={quote(SCRIPT)}", headers=HX if htmx else {})
    assert response.status_code == 500
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert 'data-testid="server-error"' in response.text
    assert "alert(1)" not in response.text and "Traceback" not in response.text
    assert ("<html" in response.text) is not htmx


def test_the_error_helper_escapes_for_both_kinds_of_request():
    from starlette.requests import Request

    from webapp.htmx import error_response

    for headers, page in (([(b"hx-request", b"true")], False), ([], True)):
        request = Request(
            {"type": "http", "method": "GET", "path": "/", "headers": headers, "query_string": b""}
        )
        answer: Response = error_response(request, 400, f"{SCRIPT} & {LINK}")
        body = answer.body.decode()
        assert SCRIPT not in body and LINK not in body and "&lt;script&gt;" in body and "&amp;" in body
        assert answer.status_code == 400 and ("<!doctype html>" in body) is page


# --- figures opened on their own -------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


def _policy(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def _allows(policy: dict[str, list[str]], directive: str, source: str) -> bool:
    sources = policy.get(directive, policy.get("default-src", []))
    return source in sources and "'none'" not in sources


def _contents(svg: bytes) -> set[str]:
    """The kinds of content an SVG holds that a policy must allow (or must stop)."""
    kinds = set()
    for element in ET.fromstring(svg).iter():
        tag = element.tag.removeprefix(SVG)
        if tag == "style" or "style" in element.attrib:
            kinds.add("inline style")
        if tag == "script" or any(name.lower().startswith("on") for name in element.attrib):
            kinds.add("script")
        for name in ("href", XLINK_HREF, "src"):
            target = element.attrib.get(name)
            if target is None or target.startswith("#"):
                continue
            if tag == "image" and target.startswith("data:image/"):
                kinds.add("data image")
            else:
                kinds.add(f"other reference {target[:40]}")
    return kinds


def test_every_stored_figure_allows_what_it_holds_and_no_script(client, evaluated):
    _, page = evaluated
    figures = re.findall(r'<img src="([^"]+)" alt="[^"]+" data-testid="plot-([a-z_]+)"', page)
    assert "confusion" in {name for _, name in figures}
    seen = set()
    for src, name in figures:
        answer = client.get(src)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/svg+xml"
        policy = _policy(answer.headers["content-security-policy"])
        kinds = _contents(answer.content)
        seen |= kinds
        assert "script" not in kinds and not any(k.startswith("other reference") for k in kinds), (
            name,
            kinds,
        )
        if "inline style" in kinds:
            assert _allows(policy, "style-src", "'unsafe-inline'"), name
        if "data image" in kinds:  # the confusion matrix's heatmap: a PNG inside the SVG
            assert _allows(policy, "img-src", "data:"), (name, policy)
        # nothing active, nothing from elsewhere, even if a figure ever held it
        assert policy["default-src"] == ["'none'"] and "script-src" not in policy, name
        assert set(policy) <= {"default-src", "style-src", "img-src"}, policy
        assert policy.get("img-src", ["data:"]) == ["data:"], policy
    assert "data image" in seen  # the check above really ran on a figure with a PNG
