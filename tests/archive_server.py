"""A local stand-in for the NASA Exoplanet Archive's TAP service, serving the real exports.

It answers `GET /TAP/sync?query=select+<columns>+from+<table>&format=csv` like the archive:
plain CSV without the `#` comment block the download button adds, with a Content-Length. A
query naming a column the table lacks is refused with 400, as TAP refuses it.
"""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.nasa import K2_PATH, KOI_PATH, TESS_PATH

TABLES = {"cumulative": KOI_PATH, "toi": TESS_PATH, "k2pandc": K2_PATH}


class ArchiveServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: Counter[str] = Counter()
        self.queries: list[str] = []  # the column lists asked for
        self.fail_with: int | None = None  # answer every request with this HTTP status

    @property
    def tap_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/TAP/sync"


class _Handler(BaseHTTPRequestHandler):
    server: ArchiveServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        words = query.get("query", [""])[0].split()
        ok = len(words) == 4 and words[0] == "select" and words[2] == "from"
        table = words[3] if ok else None
        if self.server.fail_with:
            return self._send(self.server.fail_with, b"service unavailable")
        if parts.path != "/TAP/sync" or query.get("format") != ["csv"] or table not in TABLES:
            return self._send(400, b"bad TAP query")
        lines = [
            line for line in TABLES[table].read_bytes().splitlines(keepends=True) if not line.startswith(b"#")
        ]
        asked = words[1].split(",")
        if asked != ["*"] and asked != lines[0].decode().strip().split(","):
            return self._send(400, b"bad TAP query: unknown or reordered columns")
        self.server.hits[table] += 1
        self.server.queries.append(words[1])
        self._send(200, b"".join(lines))

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def archive_server():
    server = ArchiveServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()
