"""One log line per request; JSON lines in cloud mode (Cloud Logging parses them)."""

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("webapp.requests")


class RequestLog:
    def __init__(self, app: ASGIApp, *, as_json: bool) -> None:
        self.app, self.as_json = app, as_json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            millis = (time.perf_counter() - start) * 1000
            if self.as_json:
                log.info(
                    json.dumps(
                        {
                            "severity": "ERROR" if status >= 500 else "INFO",
                            "httpRequest": {
                                "requestMethod": scope["method"],
                                "requestUrl": scope["path"],
                                "status": status,
                                "latency": f"{millis / 1000:.4f}s",
                            },
                        }
                    )
                )
            else:
                log.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, millis)
