"""Security: headers and CSP, CSRF, cookies, the cloud secret, the optional access token, and
one test per attack the original app was open to."""

import base64
import json
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from shared.runs import workspace_runs
from shared.settings import CLOUD, Settings, SettingsError
from tests.web import browser, csrf_of
from webapp.app import create_app
from webapp.security import CSP

ROOT = Path(__file__).resolve().parents[1]
HX = {"HX-Request": "true"}
CSV = b"period,depth,label\n1.5,200,planet\n2.5,300,false positive\n3.5,250,planet\n4.5,100,false positive\n"
STRONG = "k" * 40


@pytest.fixture
def app(tmp_path):
    return create_app(Settings(storage_url=str(tmp_path / "data"), results_url=str(tmp_path / "results")))


def _upload(client, name="stars.csv", data=CSV):
    return client.post("/upload", files={"file": (name, data, "text/csv")}, headers=HX)


def _run_id(response) -> str:
    """The run an htmx answer leads to: a step swapped in (upload) or a whole page (a dataset card)."""
    path = response.headers.get("HX-Redirect") or json.loads(response.headers["HX-Location"])["path"]
    return path.split("/")[2]


# --- headers and the policy -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/start", "/runs/", "/static/style.css", "/runs/r00/features", "/healthz"]
)
def test_every_response_carries_the_security_headers(app, path):
    response = browser(app).get(path)
    assert response.headers["Content-Security-Policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP and "frame-ancestors 'none'" in CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_templates_have_no_inline_script_style_or_handlers():
    """The CSP forbids them; a template that used one would silently break in the browser."""
    for path in sorted((ROOT / "templates").glob("*.html")):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path.name
        assert not re.search(r"\sstyle=", text) and "<style" not in text, path.name
        assert not re.search(r"\son[a-z]+=", text) and "javascript:" not in text, path.name
        assert "hx-on" not in text, path.name  # htmx's inline handlers would need unsafe-eval


def test_htmx_is_configured_for_the_policy(app):
    page = browser(app).get("/").text
    config = json.loads(re.search(r"name=\"htmx-config\" content='([^']+)'", page).group(1))
    assert config["includeIndicatorStyles"] is False and config["allowEval"] is False
    assert config["allowScriptTags"] is False


# --- CSRF --------------------------------------------------------------------------------------


def test_state_changing_requests_need_the_workspace_token(app):
    client = browser(app)
    token = client.headers.pop("X-CSRF-Token")
    missing = client.post("/start", data={"dataset": "kepler"}, headers=HX)
    assert missing.status_code == 403 and "missing CSRF token" in missing.text
    wrong = client.post("/start", data={"dataset": "kepler"}, headers={**HX, "X-CSRF-Token": "0" * 40})
    assert wrong.status_code == 403 and "does not match this session" in wrong.text
    other = browser(app).headers["X-CSRF-Token"]  # another browser's token is no good here
    assert (
        client.post("/start", data={"dataset": "kepler"}, headers={**HX, "X-CSRF-Token": other}).status_code
        == 403
    )
    upload = client.post("/upload", files={"file": ("a.csv", CSV, "text/csv")}, headers=HX)
    assert upload.status_code == 403  # multipart needs the header (htmx sends it)
    workspace = client.cookies.get("mission_session")
    assert workspace_runs(app.state.results, _workspace(workspace)) == []  # nothing was created
    # the token as a form field (a plain form without JavaScript) and as a header both pass
    as_field = client.post("/start", data={"dataset": "kepler", "csrf_token": token}, headers=HX)
    assert as_field.status_code == 204 and "/features" in as_field.headers["HX-Redirect"]
    assert _upload(client).status_code == 403
    client.headers["X-CSRF-Token"] = token
    assert _upload(client).status_code == 204


def test_a_cross_site_post_with_the_victims_cookie_is_refused(app):
    victim = browser(app)
    run_id = _run_id(_upload(victim))
    # another site can make the browser send the cookie, but it cannot read the page's token
    attacker = TestClient(app, cookies=dict(victim.cookies))
    attempt = attacker.post(f"/runs/{run_id}/features/target", data={"target": "label"})
    assert attempt.status_code == 403
    assert "label" not in victim.get(f"/runs/{run_id}/features").text.split("Target")[0]


def test_the_token_is_rendered_where_htmx_and_forms_find_it(app):
    client = browser(app)
    page = client.get("/start").text
    token = csrf_of(page)
    assert f'name="csrf_token" value="{token}"' in page  # every form carries it too
    assert token == client.headers["X-CSRF-Token"]


def _workspace(cookie: str) -> str:
    payload = cookie.split(".")[0]
    return json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))["ws"]


# --- cookies and the secret --------------------------------------------------------------------


def test_session_cookie_is_lax_http_only_and_holds_only_the_workspace(app):
    client = TestClient(app)
    response = client.get("/")
    cookie = response.headers["set-cookie"].lower()
    assert "samesite=lax" in cookie and "httponly" in cookie and "secure" not in cookie
    session = client.cookies.get("mission_session")
    assert list(json.loads(base64.b64decode(session.split(".")[0] + "==")).keys()) == ["ws"]


def test_cloud_cookies_are_secure(tmp_path):
    settings = Settings(
        mode=CLOUD,
        storage_url=str(tmp_path),
        secret_key=STRONG,
        train_trigger="storage",
        jobs_url=str(tmp_path / "jobs"),
    )
    response = TestClient(create_app(settings), base_url="https://testserver").get("/")
    assert "secure" in response.headers["set-cookie"].lower()


@pytest.mark.parametrize(
    ("secret", "match"),
    [
        (None, "SECRET_KEY is not set"),
        ("change_me_in_production", "too weak"),  # the original app's README example
        ("prod_secret", "too weak"),
        ("short-but-random-9f3a", "too weak"),
    ],
)
def test_cloud_mode_refuses_to_start_without_a_real_secret(tmp_path, secret, match):
    settings = Settings(mode=CLOUD, storage_url=str(tmp_path), secret_key=secret, train_trigger="storage")
    with pytest.raises(SettingsError, match=match):
        create_app(settings)


def test_the_original_secret_variable_is_still_accepted(tmp_path):
    env = {
        "APP_MODE": "cloud",
        "FLASK_SECRET_KEY": STRONG,
        "STORAGE_URL": str(tmp_path),
        "JOBS_URL": str(tmp_path / "jobs"),
    }
    assert create_app(Settings.from_env(env)).state.session_secret == STRONG


# --- optional access token ---------------------------------------------------------------------


@pytest.fixture
def guarded(tmp_path):
    settings = Settings(storage_url=str(tmp_path), access_token="correct horse battery staple")
    return create_app(settings)


def test_access_token_guards_every_page_but_health_and_static(guarded):
    client = TestClient(guarded, follow_redirects=False)
    page = client.get("/runs/?x=1")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fruns%2F%3Fx%3D1"
    assert client.get("/start", headers=HX).status_code == 401
    assert client.get("/healthz").status_code == 200 and client.get("/static/style.css").status_code == 200
    login = client.get("/login?next=/runs/")
    assert login.status_code == 200 and 'type="password"' in login.text
    token = csrf_of(login.text)
    wrong = client.post("/login", data={"token": "guess", "next": "/runs/", "csrf_token": token})
    assert wrong.status_code == 401 and "That access token is not right." in wrong.text
    assert client.get("/runs/").status_code == 303
    right = client.post(
        "/login", data={"token": "correct horse battery staple", "next": "/runs/", "csrf_token": token}
    )
    assert right.status_code == 303 and right.headers["location"] == "/runs/"
    assert client.get("/runs/").status_code == 200


@pytest.mark.parametrize("next_page", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_sign_in_never_redirects_off_site(guarded, next_page):
    client = TestClient(guarded, follow_redirects=False)
    token = csrf_of(client.get("/login").text)
    data = {"token": "correct horse battery staple", "next": next_page, "csrf_token": token}
    assert client.post("/login", data=data).headers["location"] == "/"


def test_bearer_token_and_forged_access_cookie(guarded):
    assert (
        TestClient(guarded)
        .get("/", headers={"Authorization": "Bearer correct horse battery staple"})
        .status_code
        == 200
    )
    forged = TestClient(guarded, follow_redirects=False, cookies={"mission_access": "granted.AAAA.BBBB"})
    assert forged.get("/").status_code == 303


# --- the original app's attacks ------------------------------------------------------------------


def test_forged_cookie_with_state_and_paths_is_ignored(app):
    """The original app kept file paths in the cookie and loaded them: any cookie we did not sign
    is dropped, and even a signed one holds only a workspace id."""
    owner = browser(app)
    run_id = _run_id(_upload(owner))
    state = {"ws": "w" + "0" * 32, "model_path": "/etc/passwd", "run": run_id}
    forged = base64.b64encode(json.dumps(state).encode()).decode() + ".forged.signature"
    intruder = TestClient(app, cookies={"mission_session": forged})
    assert intruder.get(f"/runs/{run_id}/features").status_code == 404
    assert intruder.get(f"/runs/{run_id}/bundle.zip").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/runs/..%2F..%2Fetc%2Fpasswd/features",
        "/runs/../../etc/passwd/features",
        "/runs/%2e%2e/features",
        "/runs/r0000000000000000000000000000000x/bundle.zip",
        "/runs/.session-key/features",
        "/runs/{run}/figures/evaluate/..%2F..%2Fspec.svg",
        "/runs/{run}/predict/predictions/..%2F..%2F..%2F.session-key.csv",
    ],
)
def test_path_traversal_in_ids_is_a_404(app, path):
    client = browser(app)
    run_id = _run_id(_upload(client))
    response = client.get(path.format(run=run_id))
    assert response.status_code == 404
    assert "session" not in response.text.lower() or "No such" in response.text


def test_upload_filename_never_becomes_a_path(app, tmp_path):
    client = browser(app)
    response = _upload(client, name="../../../../tmp/evil.csv")
    assert response.status_code == 204
    run_id = _run_id(response)
    assert not (tmp_path / "evil.csv").exists() and not Path("/tmp/evil.csv").exists()
    stored = [p for p in (tmp_path / "data").rglob("*") if "evil" in p.name]
    assert stored == []  # stored under a generated id; the name is only a label
    assert "evil.csv" in client.get(f"/runs/{run_id}/dataset").text


def test_a_dataset_uri_sent_by_a_client_is_never_used(app):
    client = browser(app)
    sent = client.post(
        "/upload", files={"file": ("a.csv", CSV, "text/csv")}, data={"dataset_uri": "/etc/passwd"}, headers=HX
    )
    run_id = _run_id(sent)
    spec = json.loads(app.state.results.read_bytes(f"runs/{run_id}/spec.json"))
    assert re.fullmatch(r"u[0-9a-f]{24}", spec["dataset"]) and "/etc/passwd" not in json.dumps(spec)
    unknown = client.post("/start", data={"dataset": "/etc/passwd"}, headers=HX)
    assert unknown.status_code == 400 and "Choose one of the built-in datasets" in unknown.text
    assert len(workspace_runs(app.state.results, _workspace(client.cookies.get("mission_session")))) == 1


def test_the_target_posted_as_a_feature_is_refused(app):
    client = browser(app)
    run_id = _run_id(_upload(client))
    client.post(f"/runs/{run_id}/features/target", data={"target": "label"}, headers=HX)
    refused = client.post(f"/runs/{run_id}/features/toggle", data={"column": "label", "on": "1"}, headers=HX)
    assert refused.status_code == 400 and "target" in refused.text
    spec = json.loads(app.state.results.read_bytes(f"runs/{run_id}/spec.json"))
    assert "label" not in spec["features"]


def test_dataset_uris_never_reach_the_browser(tmp_path):
    from shared.catalog import KEPLER
    from shared.sources import fetch_builtin
    from tests.nasa import KOI_PATH

    settings = Settings(storage_url=str(tmp_path), dataset_uris={"kepler": str(KOI_PATH)})
    app = create_app(settings)
    fetch_builtin(KEPLER, settings, app.state.storage)
    client = browser(app)
    run_id = _run_id(client.post("/start", data={"dataset": "kepler"}, headers=HX))
    pages = [
        "/",
        "/start",
        "/datasets/",
        "/datasets/kepler/card",
        f"/runs/{run_id}/dataset",
        f"/runs/{run_id}/features",
    ]
    for path in pages:
        text = client.get(path).text
        assert str(KOI_PATH) not in text and KOI_PATH.name not in text, path
    assert "KEPLER_URI" in client.get("/datasets/").text  # the source is named by its variable only
