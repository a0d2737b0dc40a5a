"""The session cookie (it holds the browser's workspace id and nothing else), made cheap.

The cookie's format is Starlette's SessionMiddleware's (base64 JSON signed with a time-stamped
HMAC), so either reads the other's cookies. What differs: a cookie value is verified once per
process (a repeat is a dictionary look-up), and the cookie is sent back only when the session is
new or changed, or its signature is more than a day old (so it still lives ``max_age`` seconds
after the last visit), instead of being signed again on every response.
"""

import json
import time
from base64 import b64decode, b64encode
from typing import Any

import itsdangerous
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REFRESH_AFTER_S = 24 * 3600
VERIFIED_KEPT = 20_000


class WorkspaceSession:
    def __init__(
        self,
        app: ASGIApp,
        secret_key: str,
        *,
        session_cookie: str,
        max_age: int,
        same_site: str = "lax",
        https_only: bool = False,
    ) -> None:
        self.app = app
        self.signer = itsdangerous.TimestampSigner(str(secret_key))
        self.cookie, self.max_age = session_cookie, max_age
        self.flags = f"httponly; samesite={same_site}" + ("; secure" if https_only else "")
        self._verified: dict[str, tuple[dict[str, Any], float]] = {}

    def _session(self, value: str | None) -> tuple[dict[str, Any], float]:
        """The session a cookie value holds and when it was signed; empty for a bad or old one."""
        if not value:
            return {}, 0.0
        verified = self._verified.get(value)
        if verified is None:
            try:
                data, signed = self.signer.unsign(value.encode(), max_age=self.max_age, return_timestamp=True)
                verified = json.loads(b64decode(data)), signed.timestamp()
            except (itsdangerous.BadSignature, ValueError):
                return {}, 0.0
            if len(self._verified) >= VERIFIED_KEPT:
                self._verified.clear()
            self._verified[value] = verified
        session, signed_at = verified
        if time.time() - signed_at > self.max_age:
            return {}, 0.0
        return dict(session), signed_at

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        value = HTTPConnection(scope).cookies.get(self.cookie)
        session, signed_at = self._session(value)
        scope["session"] = session
        before = dict(session)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                now = scope["session"]
                if now and (now != before or time.time() - signed_at > REFRESH_AFTER_S):
                    signed = self.signer.sign(b64encode(json.dumps(now).encode())).decode()
                    cookie = f"{self.cookie}={signed}; path=/; Max-Age={self.max_age}; {self.flags}"
                    MutableHeaders(scope=message).append("Set-Cookie", cookie)
                elif not now and value:
                    expired = (
                        f"{self.cookie}=null; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; {self.flags}"
                    )
                    MutableHeaders(scope=message).append("Set-Cookie", expired)
            await send(message)

        await self.app(scope, receive, send_with_cookie)
