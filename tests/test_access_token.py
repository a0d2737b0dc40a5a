"""The shared access token under attack: a per-client failure budget for the Bearer header and the
sign-in form, a constant-time check, a minimum length in cloud mode, and a cookie bound to the token.

Every lock-out here runs on a hand-moved clock: no test sleeps or depends on how fast it runs."""

import hmac
import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.testclient import TestClient

from shared.settings import CLOUD, EMBEDDED, Settings, SettingsError
from tests.web import csrf_of
from webapp.app import create_app
from webapp.security import ACCESS_COOKIE, FailureLimiter, client_key, same_token

TOKEN = "correct horse battery staple"
STRONG = "k" * 40
HX = {"HX-Request": "true"}
RIGHT = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": "Bearer guess"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def _guarded(tmp_path, clock, token=TOKEN, secret=STRONG):
    settings = Settings(storage_url=str(tmp_path / "data"), secret_key=secret, access_token=token)
    app = create_app(settings)
    app.state.access.limiter = FailureLimiter(clock=clock)
    return app


@pytest.fixture
def guarded(tmp_path, clock):
    return _guarded(tmp_path, clock)


def _sign_in(client, token, headers=None):
    csrf = csrf_of(client.get("/login").text)
    data = {"token": token, "next": "/runs/", "csrf_token": csrf}
    return client.post("/login", data=data, headers=headers or {})


# --- the failure budget ------------------------------------------------------------------------


def test_five_wrong_bearer_guesses_then_429_even_for_the_right_token(guarded):
    client = TestClient(guarded, follow_redirects=False)
    for _ in range(5):
        wrong = client.get("/runs/", headers=WRONG)
        assert wrong.status_code == 401 and "not right" in wrong.text
    locked = client.get("/runs/", headers=RIGHT)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
    assert "try again in 1 second" in locked.text
    assert client.get("/runs/", headers=WRONG).status_code == 429


def test_the_lock_ends_and_each_further_failure_doubles_it(guarded, clock):
    client = TestClient(guarded, follow_redirects=False)
    for _ in range(5):
        client.get("/runs/", headers=WRONG)
    clock.now += 1
    assert client.get("/runs/", headers=WRONG).status_code == 401  # the lock ended; this one counts
    again = client.get("/runs/", headers=RIGHT)
    assert again.status_code == 429 and again.headers["Retry-After"] == "2"
    clock.now += 1.5
    assert client.get("/runs/", headers=RIGHT).headers["Retry-After"] == "1"  # whole seconds, rounded up
    clock.now += 0.5
    assert client.get("/runs/", headers=RIGHT).status_code == 200


def test_a_success_resets_the_budget(guarded, clock):
    client = TestClient(guarded, follow_redirects=False)
    for _ in range(4):
        assert client.get("/runs/", headers=WRONG).status_code == 401
    assert client.get("/runs/", headers=RIGHT).status_code == 200
    assert [client.get("/runs/", headers=WRONG).status_code for _ in range(6)] == [401] * 5 + [429]


def test_parallel_wrong_sign_ins_cannot_escape_the_budget(guarded):
    """The original form slept 0.5 s per wrong token: 30 parallel guesses took 1.38 s in all.
    Now the check and the count are one step, so only the free five are even checked."""
    first = TestClient(guarded)
    csrf = csrf_of(first.get("/login").text)
    cookies = dict(first.cookies)
    start = threading.Barrier(30)

    def guess(i):
        client = TestClient(guarded, cookies=cookies, follow_redirects=False)
        start.wait()
        return client.post(
            "/login", data={"token": f"guess-{i}", "next": "/", "csrf_token": csrf}
        ).status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = Counter(pool.map(guess, range(30)))
    assert statuses == {401: 5, 429: 25}
    right = TestClient(guarded, cookies=cookies, follow_redirects=False)
    assert _sign_in(right, TOKEN).status_code == 429  # and nothing slipped through: still locked


def test_two_clients_have_separate_budgets(guarded):
    guesser = TestClient(guarded, follow_redirects=False, client=("203.0.113.7", 5000))
    colleague = TestClient(guarded, follow_redirects=False, client=("203.0.113.8", 5000))
    for _ in range(5):
        guesser.get("/runs/", headers=WRONG)
    assert guesser.get("/runs/", headers=RIGHT).status_code == 429
    assert colleague.get("/runs/", headers=WRONG).status_code == 401
    assert colleague.get("/runs/", headers=RIGHT).status_code == 200
    # outside cloud mode X-Forwarded-For is the caller's own word: it buys no fresh budget
    forged = guesser.get("/runs/", headers={**RIGHT, "X-Forwarded-For": "198.51.100.1"})
    assert forged.status_code == 429


def test_the_sign_in_page_and_htmx_show_when_to_try_again(guarded):
    client = TestClient(guarded, follow_redirects=False)
    wrong = _sign_in(client, "guess", headers=HX)
    assert wrong.status_code == 401 and wrong.text.startswith('<p class="field-error" id="error-token"')
    for _ in range(4):
        wrong = _sign_in(client, "guess")
        assert wrong.status_code == 401 and "That access token is not right." in wrong.text
    page = _sign_in(client, TOKEN)
    assert page.status_code == 429 and page.headers["Retry-After"] == "1"
    assert 'type="password"' in page.text and "try again in 1 second." in page.text
    fragment = _sign_in(client, TOKEN, headers=HX)
    assert fragment.status_code == 429 and fragment.headers["Retry-After"] == "1"
    assert fragment.text == (
        '<p class="alert" role="alert" data-testid="locked-out">'
        "Too many wrong access tokens from your address: try again in 1 second.</p>"
    )
    gate = client.get("/runs/", headers={**HX, **RIGHT})
    assert gate.status_code == 429 and gate.text == fragment.text  # the same answer for the header


def test_a_valid_cookie_passes_while_its_address_is_locked_out(guarded):
    member = TestClient(guarded, follow_redirects=False)
    assert _sign_in(member, TOKEN).status_code == 303
    guesser = TestClient(guarded, follow_redirects=False)  # the same address (one NAT, say)
    for _ in range(5):
        guesser.get("/runs/", headers=WRONG)
    assert guesser.get("/runs/", headers=RIGHT).status_code == 429
    assert member.get("/runs/").status_code == 200  # the cookie is no guess at the token


@pytest.mark.parametrize(
    ("failures", "retry_after"),
    [(4, 0), (5, 1), (6, 2), (7, 4), (8, 8), (14, 512), (15, 900), (30, 900)],
)
def test_the_lock_out_doubles_up_to_fifteen_minutes(clock, failures, retry_after):
    limiter = FailureLimiter(clock=clock)
    for _ in range(failures):
        assert limiter.attempt("a", lambda: False).retry_after_s == 0  # each waits out the last lock
        clock.now += 1000
    clock.now -= 1000
    assert limiter.attempt("a", lambda: True).retry_after_s == retry_after


def test_a_long_quiet_client_starts_afresh(clock):
    limiter = FailureLimiter(clock=clock)
    for _ in range(5):
        limiter.attempt("a", lambda: False)
    clock.now += 1 + 3600  # the 1 s lock and an hour of quiet
    assert [limiter.attempt("a", lambda: False).retry_after_s for _ in range(6)] == [0] * 5 + [1]


def test_the_limiter_tracks_at_most_its_bound_of_clients(clock):
    limiter = FailureLimiter(free=1, max_clients=3, clock=clock)
    for client in "abcd":
        limiter.attempt(client, lambda: False)
    assert limiter.tracked() == 3
    assert limiter.attempt("a", lambda: True).granted  # the oldest was dropped
    assert limiter.attempt("d", lambda: True).retry_after_s == 1


def test_a_locked_out_client_is_not_even_checked(clock):
    limiter = FailureLimiter(free=1, clock=clock)
    limiter.attempt("a", lambda: False)
    checked = []
    assert limiter.attempt("a", lambda: checked.append(1) or True).retry_after_s == 1
    assert checked == []


@pytest.mark.parametrize(
    ("trust", "forwarded", "key"),
    [
        (False, None, "192.0.2.10"),
        (False, "198.51.100.9", "192.0.2.10"),  # not behind a trusted proxy: the header is ignored
        (True, "198.51.100.9", "198.51.100.9"),
        (True, "6.6.6.6, 198.51.100.9", "198.51.100.9"),  # the entry the front end wrote, not the caller's
        (True, None, "192.0.2.10"),
        (True, "2001:db8::1", "2001:db8::/64"),
        (True, "2001:db8::ffff:1", "2001:db8::/64"),  # one subscriber's /64 is one client
        (True, "not-an-address", "not-an-address"),
    ],
)
def test_client_key(trust, forwarded, key):
    headers = [] if forwarded is None else [(b"x-forwarded-for", forwarded.encode())]
    scope = {"type": "http", "headers": headers, "client": ("192.0.2.10", 5000)}
    assert client_key(scope, trust) == key


# --- the check itself --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "token", "same"),
    [
        (TOKEN, TOKEN, True),
        ("ünïcode tøken", "ünïcode tøken", True),
        (TOKEN.upper(), TOKEN, False),
        (TOKEN[:-1] + "E", TOKEN, False),
        ("short", TOKEN, False),
        (TOKEN + " and more", TOKEN, False),
        ("", TOKEN, False),
    ],
)
def test_the_token_check_is_constant_time(monkeypatch, candidate, token, same):
    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert same_token(candidate, token) is same
    assert len(compared) == 1
    assert [len(value) for value in compared[0]] == [32, 32]  # digests: the lengths never differ


# --- the cookie is bound to the token ----------------------------------------------------------


def test_rotating_the_token_signs_everyone_out(tmp_path, clock):
    old_app = _guarded(tmp_path, clock, token=TOKEN)
    client = TestClient(old_app, follow_redirects=False)
    assert _sign_in(client, TOKEN).status_code == 303
    cookie = client.cookies.get(ACCESS_COOKIE)
    assert (
        TestClient(old_app, cookies={ACCESS_COOKIE: cookie}, follow_redirects=False).get("/runs/").status_code
        == 200
    )

    new_app = _guarded(tmp_path, clock, token="a brand new token, rotated")  # the same SECRET_KEY
    stale = TestClient(new_app, cookies={ACCESS_COOKIE: cookie}, follow_redirects=False)
    asked = stale.get("/runs/")
    assert asked.status_code == 303 and asked.headers["location"] == "/login?next=%2Fruns%2F"
    assert stale.get("/runs/", headers=HX).status_code == 401
    assert _sign_in(stale, "a brand new token, rotated").status_code == 303
    assert stale.get("/runs/").status_code == 200


def test_a_cookie_from_before_binding_is_refused(guarded):
    signed_constant = guarded.state.access.signer.sign("granted").decode()  # what the old app signed
    client = TestClient(guarded, cookies={ACCESS_COOKIE: signed_constant}, follow_redirects=False)
    assert client.get("/runs/").status_code == 303


# --- the token's length ------------------------------------------------------------------------


def _settings(tmp_path, mode, token):
    return Settings(
        mode=mode,
        storage_url=str(tmp_path),
        secret_key=STRONG,
        train_trigger="storage",
        jobs_url=str(tmp_path / "jobs"),
        access_token=token,
    )


@pytest.mark.parametrize(
    ("mode", "token", "match"),
    [
        (CLOUD, "0123456789", "ACCESS_TOKEN is too short for cloud mode: use at least 16 "),
        (CLOUD, "x" * 15, "ACCESS_TOKEN is too short for cloud mode: use at least 16 "),
        (CLOUD, "", "ACCESS_TOKEN is empty"),
        (EMBEDDED, "", "ACCESS_TOKEN is empty"),
    ],
)
def test_a_guessable_token_refuses_to_start(tmp_path, mode, token, match):
    with pytest.raises(SettingsError, match=match):
        create_app(_settings(tmp_path, mode, token))


def test_a_short_cloud_token_from_the_environment_refuses_to_start(tmp_path):
    env = {
        "APP_MODE": "cloud",
        "SECRET_KEY": STRONG,
        "STORAGE_URL": str(tmp_path),
        "JOBS_URL": str(tmp_path / "jobs"),
        "ACCESS_TOKEN": "0123456789",
    }
    with pytest.raises(SettingsError, match=r"ACCESS_TOKEN .* at least 16 random characters"):
        create_app(Settings.from_env(env))


@pytest.mark.parametrize(("mode", "token", "warned"), [(CLOUD, "x" * 16, False), (EMBEDDED, "abc", True)])
def test_long_enough_tokens_start(tmp_path, caplog, mode, token, warned):
    with caplog.at_level(logging.WARNING, logger="webapp.security"):
        app = create_app(_settings(tmp_path, mode, token))
    assert app.state.access.token == token
    assert ("fewer than 16 characters" in caplog.text) is warned
