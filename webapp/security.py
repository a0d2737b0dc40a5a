"""Browser-facing protections: security headers, CSRF tokens, and an optional shared password.

- Every response carries a Content Security Policy with same-origin sources only and no
  inline scripts or styles (htmx is configured not to inject its indicator styles or to
  evaluate anything), ``nosniff``, a same-origin referrer policy and frame denial.
- Every state-changing request must carry the workspace's CSRF token: htmx sends it in the
  ``X-CSRF-Token`` header (``hx-headers`` on <body>), plain forms in a ``csrf_token`` field.
  The token is an HMAC of the workspace id, so the cookie still holds nothing but that id.
- With ``ACCESS_TOKEN`` set, every page except ``/healthz`` and static files asks for it once
  (a signed, expiring ``mission_access`` cookie bound to the token) or takes it as
  ``Authorization: Bearer``. Wrong tokens, from the header or the sign-in form, spend one
  per-client failure budget (``FailureLimiter``); past it the client is refused with a 429 for a
  doubling while.
"""

import hashlib
import hmac
import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote

from itsdangerous import BadSignature, TimestampSigner
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from shared.settings import SettingsError
from webapp.htmx import alert

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 1024 * 1024  # urlencoded forms here are small; uploads are multipart
ACCESS_COOKIE = "mission_access"
ACCESS_MAX_AGE_S = 30 * 24 * 3600
OPEN_PATHS = ("/healthz", "/static/", "/login")
MIN_CLOUD_TOKEN_LENGTH = 16
# the failure budget: FREE_FAILURES wrong tokens, then a lock-out that doubles with every further
# one, from FIRST_LOCK_S up to MAX_LOCK_S; a client quiet for FORGET_AFTER_S after its last lock
# (or failure) starts afresh
FREE_FAILURES = 5
FIRST_LOCK_S = 1.0
MAX_LOCK_S = 15 * 60.0
FORGET_AFTER_S = 60 * 60.0
MAX_TRACKED_CLIENTS = 10_000

log = logging.getLogger(__name__)


class SecurityHeaders:
    """Adds HEADERS to every response that does not set its own policy (figures do)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csrf_token(secret: str, workspace: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{workspace}".encode(), hashlib.sha256).hexdigest()[:40]


def _forbidden(problem: str) -> Response:
    return PlainTextResponse(
        f"Refused: {problem}. Reload the page and try again.", status_code=403, headers={"Vary": "HX-Request"}
    )


class CSRFProtection:
    """Refuses unsafe methods without the workspace's token. Runs inside SessionMiddleware."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        self.app = app
        self.secret = secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        workspace = scope.get("session", {}).get("ws")
        if not isinstance(workspace, str):
            await _forbidden("no session: this browser has not loaded a page of the app yet")(
                scope, receive, send
            )
            return
        expected = csrf_token(self.secret, workspace)
        headers = Headers(scope=scope)
        sent = headers.get(CSRF_HEADER)
        if sent is None and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            body = await _read_body(receive, MAX_FORM_BYTES)
            if body is None:
                await PlainTextResponse("Form too large.", status_code=413)(scope, receive, send)
                return
            sent = (parse_qs(body.decode("latin-1")).get(CSRF_FIELD) or [None])[0]
            receive = _replay(body)
        if sent is None or not hmac.compare_digest(sent, expected):
            problem = "missing CSRF token" if sent is None else "CSRF token does not match this session"
            await _forbidden(problem)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def same_token(candidate: str, token: str) -> bool:
    """Constant-time: SHA-256 digests of both are compared, so not even the length leaks."""
    return hmac.compare_digest(_digest(candidate), _digest(token))


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def check_access_token(token: str | None, cloud: bool) -> None:
    """A token short enough to guess is refused where the app is public (cloud mode)."""
    if token is None:
        return
    if not token:
        raise SettingsError("ACCESS_TOKEN is empty: unset it, or set a long random token")
    if cloud and len(token) < MIN_CLOUD_TOKEN_LENGTH:
        raise SettingsError(
            f"ACCESS_TOKEN is too short for cloud mode: use at least {MIN_CLOUD_TOKEN_LENGTH} random "
            'characters (python -c "import secrets; print(secrets.token_urlsafe(24))")'
        )


class Attempt(NamedTuple):
    granted: bool
    retry_after_s: int = 0  # more than 0: the client is locked out and the token was not checked


@dataclass(slots=True)
class _Record:
    failures: int
    until: float  # the end of the lock-out, or the last failure's time when not locked out


class FailureLimiter:
    """Wrong tokens per client, in this process: a few are free, then each one locks the client out
    for twice as long as the one before. Check, verification and count happen under one lock, so
    parallel guesses cannot slip in between a check and a count."""

    def __init__(
        self,
        *,
        free: int = FREE_FAILURES,
        first_lock_s: float = FIRST_LOCK_S,
        max_lock_s: float = MAX_LOCK_S,
        forget_after_s: float = FORGET_AFTER_S,
        max_clients: int = MAX_TRACKED_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self.first_lock_s = first_lock_s
        self.max_lock_s = max_lock_s
        self.forget_after_s = forget_after_s
        self.max_clients = max_clients
        self.clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()  # least recently failed first
        self._lock = threading.Lock()

    def attempt(self, client: str, verify: Callable[[], bool]) -> Attempt:
        """``verify()`` (a quick, non-blocking check) unless ``client`` is locked out; counts the
        outcome: a success clears the client's record."""
        with self._lock:
            now = self.clock()
            record = self._records.get(client)
            if record is not None and now >= record.until + self.forget_after_s:
                del self._records[client]
                record = None
            if record is not None and now < record.until:
                return Attempt(False, max(1, math.ceil(record.until - now)))
            if verify():
                self._records.pop(client, None)
                return Attempt(True)
            self._fail(client, record, now)
            return Attempt(False)

    def tracked(self) -> int:
        with self._lock:
            return len(self._records)

    def _fail(self, client: str, record: _Record | None, now: float) -> None:
        failures = 1 if record is None else record.failures + 1
        until = now
        if failures >= self.free:
            until += min(self.max_lock_s, self.first_lock_s * 2 ** min(failures - self.free, 64))
        self._records[client] = _Record(failures, until)
        self._records.move_to_end(client)
        while len(self._records) > self.max_clients:
            self._records.popitem(last=False)


def client_key(scope: Scope, trust_proxy: bool) -> str:
    """Whose failure budget a request spends: its address (an IPv6 client's /64, which one
    subscriber usually holds whole, so rotating addresses within it does not buy more guesses)."""
    address = ""
    if trust_proxy:
        # Google's front end (cloud mode) writes the caller's address into X-Forwarded-For; were
        # anything appended to what the caller sent, the last entry would still be the one Google
        # wrote, while the first would be the caller's own (forgeable) words
        forwarded = ",".join(Headers(scope=scope).getlist("x-forwarded-for"))
        address = forwarded.rsplit(",", 1)[-1].strip()
    if not address and scope.get("client"):
        address = scope["client"][0]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def wait_text(seconds: int) -> str:
    if seconds >= 120:
        return f"{math.ceil(seconds / 60)} minutes"
    return "1 second" if seconds == 1 else f"{seconds} seconds"


def locked_out_message(retry_after_s: int) -> str:
    return f"Too many wrong access tokens from your address: try again in {wait_text(retry_after_s)}."


def too_many_attempts(retry_after_s: int, htmx: bool) -> Response:
    """The 429 for a locked-out client: plain text, or a fragment htmx swaps in."""
    message = locked_out_message(retry_after_s)
    headers = {"Retry-After": str(retry_after_s), "Vary": "HX-Request", "Cache-Control": "no-store"}
    if htmx:
        return HTMLResponse(alert(message, "locked-out"), 429, headers=headers)
    return PlainTextResponse(message, 429, headers=headers)


class AccessPolicy:
    """The shared access token, if configured, the signed cookie that remembers it, and the
    failure budget that slows guessing it."""

    def __init__(
        self,
        token: str | None,
        secret: str,
        https_only: bool,
        *,
        cloud: bool | None = None,
        limiter: FailureLimiter | None = None,
    ) -> None:
        # create_app says cloud mode through https_only (cloud serves only HTTPS); ``cloud`` is
        # for a caller that means the one without the other
        cloud = https_only if cloud is None else cloud
        check_access_token(token, cloud)
        if token is not None and len(token) < MIN_CLOUD_TOKEN_LENGTH:
            log.warning(
                "ACCESS_TOKEN has fewer than %d characters: fine on this machine, refused in cloud mode",
                MIN_CLOUD_TOKEN_LENGTH,
            )
        self.token = token
        self.signer = TimestampSigner(secret, salt="mission-access")
        self.https_only = https_only
        # cloud mode is reached only through Google's front end, which says who the caller is
        self.trust_proxy = cloud
        self.limiter = limiter or FailureLimiter()
        # what the cookie signs: changes with the token, so a new token signs everyone out; keyed
        # by the secret, so a cookie gives no way to test guesses at the token offline
        self.cookie_value = (
            ""
            if token is None
            else hmac.new(secret.encode(), _digest("access:" + token), "sha256").hexdigest()[:16]
        )

    def matches(self, candidate: str) -> bool:
        return self.token is not None and same_token(candidate, self.token)

    def attempt(self, scope: Scope, candidate: str) -> Attempt:
        """One try at the token, spending the client's failure budget."""
        return self.limiter.attempt(client_key(scope, self.trust_proxy), lambda: self.matches(candidate))

    def remembered(self, headers: Headers) -> bool:
        """The request carries an unexpired access cookie signed for the current token (any of
        several: a stale one may linger beside the new one)."""
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == ACCESS_COOKIE and self._valid(value):
                return True
        return False

    def _valid(self, cookie: str) -> bool:
        try:
            signed = self.signer.unsign(cookie, max_age=ACCESS_MAX_AGE_S)
        except BadSignature:
            return False
        return self.token is not None and hmac.compare_digest(signed, self.cookie_value.encode())

    def grant(self, response: Response) -> None:
        response.set_cookie(
            ACCESS_COOKIE,
            self.signer.sign(self.cookie_value).decode(),
            max_age=ACCESS_MAX_AGE_S,
            httponly=True,
            secure=self.https_only,
            samesite="lax",
        )


def bearer_token(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class AccessGate:
    """With a shared access token configured, nothing but the open paths without it."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.policy.token is None or scope["path"].startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        # a valid cookie is no guess: it passes even while its address is locked out (a colleague
        # behind the same NAT as a guesser keeps working)
        if self.policy.remembered(headers):
            await self.app(scope, receive, send)
            return
        token = bearer_token(headers)
        if token is not None:
            attempt = self.policy.attempt(scope, token)
            if attempt.granted:
                await self.app(scope, receive, send)
                return
            response = _refused_bearer(attempt, "hx-request" in headers)
        elif scope["method"] in SAFE_METHODS and "hx-request" not in headers:
            query = scope["query_string"].decode("latin-1")
            target = scope["path"] + ("?" + query if query else "")
            response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        else:
            response = PlainTextResponse(
                "This deployment needs its access token: open the app's address and sign in.",
                status_code=401,
            )
        await response(scope, receive, send)


def _refused_bearer(attempt: Attempt, htmx: bool) -> Response:
    if attempt.retry_after_s:
        return too_many_attempts(attempt.retry_after_s, htmx)
    return PlainTextResponse(
        "The access token in the Authorization header is not right.",
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def safe_next(value: str | None) -> str:
    """Only a path on this site (never //host or a scheme) may be the page after signing in."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
