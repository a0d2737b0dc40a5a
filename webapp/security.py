"""Browser-facing protections: security headers, CSRF tokens, and an optional shared password.

- Every response carries a Content Security Policy with same-origin sources only and no
  inline scripts or styles (htmx is configured not to inject its indicator styles or to
  evaluate anything), ``nosniff``, a same-origin referrer policy and frame denial.
- Every state-changing request must carry the workspace's CSRF token: htmx sends it in the
  ``X-CSRF-Token`` header (``hx-headers`` on <body>), plain forms in a ``csrf_token`` field.
  The token is an HMAC of the workspace id, so the cookie still holds nothing but that id.
- With ``ACCESS_TOKEN`` set, every page except ``/healthz`` and static files asks for it once
  (a signed, expiring ``mission_access`` cookie) or takes it as ``Authorization: Bearer``.
"""

import hashlib
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, quote

from itsdangerous import BadSignature, TimestampSigner
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse, RedirectResponse, Response

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


class AccessPolicy:
    """The shared access token, if configured, and the signed cookie that remembers it."""

    def __init__(self, token: str | None, secret: str, https_only: bool) -> None:
        self.token = token
        self.signer = TimestampSigner(secret, salt="mission-access")
        self.https_only = https_only

    def matches(self, candidate: str) -> bool:
        return self.token is not None and hmac.compare_digest(candidate.encode(), self.token.encode())

    def granted(self, headers: Headers) -> bool:
        authorization = headers.get("authorization", "")
        if authorization.startswith("Bearer ") and self.matches(authorization[7:]):
            return True
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == ACCESS_COOKIE:
                try:
                    self.signer.unsign(value, max_age=ACCESS_MAX_AGE_S)
                except BadSignature:
                    return False
                return True
        return False

    def grant(self, response: Response) -> None:
        response.set_cookie(
            ACCESS_COOKIE,
            self.signer.sign("granted").decode(),
            max_age=ACCESS_MAX_AGE_S,
            httponly=True,
            secure=self.https_only,
            samesite="lax",
        )


class AccessGate:
    """With a shared access token configured, nothing but the open paths without it."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self.policy.token is None
            or scope["path"].startswith(OPEN_PATHS)
            or self.policy.granted(Headers(scope=scope))
        ):
            await self.app(scope, receive, send)
            return
        response: Response
        if scope["method"] in SAFE_METHODS and "hx-request" not in Headers(scope=scope):
            query = scope["query_string"].decode("latin-1")
            target = scope["path"] + ("?" + query if query else "")
            response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        else:
            response = PlainTextResponse(
                "This deployment needs its access token: open the app's address and sign in.",
                status_code=401,
            )
        await response(scope, receive, send)


def safe_next(value: str | None) -> str:
    """Only a path on this site (never //host or a scheme) may be the page after signing in."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
