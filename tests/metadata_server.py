"""A stand-in for Cloud Run's metadata server, as far as google-auth uses it to fetch an ID token
(`google.oauth2.id_token.fetch_id_token`): the ping and the identity endpoint. Pointed at by
GCE_METADATA_HOST / GCE_METADATA_IP, so the web app runs its real cloud code path; it records
every audience asked for, and the functions see a bearer token for exactly that audience."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNT = "/computeMetadata/v1/instance/service-accounts/default"
IDENTITY = f"{ACCOUNT}/identity"
EMAIL = "mission-control-web@test-project.iam.gserviceaccount.com"


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def id_token(audience: str) -> str:
    now = int(time.time())
    claims = {
        "aud": audience,
        "iss": "https://accounts.google.com",
        "email": EMAIL,
        "iat": now,
        "exp": now + 3600,
    }
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims)}.{_b64(b'not-signed-here')}"


class MetadataServer:
    def __init__(self) -> None:
        self.audiences: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Metadata-Flavor") != "Google":
                    self.send_error(403, "Missing Metadata-Flavor header")
                    return
                url = urllib.parse.urlsplit(self.path)
                if url.path == IDENTITY:
                    audience = urllib.parse.parse_qs(url.query).get("audience", [""])[0]
                    server.audiences.append(audience)
                    body, kind = id_token(audience).encode(), "text/plain"
                elif url.path.startswith(ACCOUNT):
                    info = {"email": EMAIL, "aliases": ["default"], "scopes": []}
                    body, kind = json.dumps(info).encode(), "application/json"
                else:
                    body, kind = b"ok", "text/plain"
                self.send_response(200)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> MetadataServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    @property
    def env(self) -> dict[str, str]:
        return {"GCE_METADATA_HOST": self.address, "GCE_METADATA_IP": self.address}
