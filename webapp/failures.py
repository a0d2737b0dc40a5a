"""How the app answers when something outside a request's control fails (storage down, ...):
a short message and a 5xx status that says so, never a traceback.

Storage unreachable (StorageUnavailable: the bucket's server refuses or times out, the storage
folder is missing, the disk is full) is a 503 with ``Retry-After``: htmx requests get a small
alert fragment (base.html's htmx config swaps 503 answers in) that asks for the same URL again
after a few seconds when it was a GET, so a page heals itself once storage is back; other
requests get a plain page saying the same. The details (which object, which error) go to the
log only: they name storage locations, which are never shown to browsers.
"""

import logging
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import NoMatchFound

from shared.errors import CorruptObject, StorageUnavailable
from webapp.htmx import is_htmx

log = logging.getLogger("webapp.failures")
RETRY_AFTER_S = 5
STORAGE_UNAVAILABLE = "Storage is unreachable right now, so this cannot be done. Try again shortly."


def _same_url(request: Request) -> str | None:
    """The request's own path and query, to ask again (only for a GET, and only a local path)."""
    if request.method != "GET" or not request.url.path.startswith("/") or request.url.path.startswith("//"):
        return None
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _fragment(again: str | None) -> str:
    retry = (
        f' hx-get="{escape(again)}" hx-trigger="load delay:{RETRY_AFTER_S}s" hx-target="this"'
        ' hx-swap="outerHTML"'
        if again
        else ""
    )
    return (
        f'<div class="alert" role="alert" data-testid="storage-unavailable"{retry}>'
        f"{escape(STORAGE_UNAVAILABLE)}</div>"
    )


def _page(request: Request, again: str | None) -> str:
    try:
        css = request.app.url_path_for("static", path="style.css")
        stylesheet = f'<link rel="stylesheet" href="{escape(css)}">'
    except NoMatchFound:
        stylesheet = ""
    refresh = f'<meta http-equiv="refresh" content="{RETRY_AFTER_S}">' if again else ""
    link = f'<p><a href="{escape(again)}">Try again</a></p>' if again else ""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{refresh}<title>Storage unreachable · Mission Control for Exoplanets</title>\n{stylesheet}\n"
        '</head>\n<body>\n<main id="main">\n<h1>Storage unreachable</h1>\n'
        f'<p class="alert" role="alert" data-testid="storage-unavailable">{escape(STORAGE_UNAVAILABLE)}</p>\n'
        f"{link}</main>\n</body>\n</html>\n"
    )


async def storage_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("503 for %s %s: %s", request.method, request.url.path, exc)
    again = _same_url(request)
    body = _fragment(again) if is_htmx(request) else _page(request, again)
    headers = {"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store", "Vary": "HX-Request"}
    return HTMLResponse(body, status_code=503, headers=headers)


DAMAGED = (
    "A stored record of this run is damaged, so this cannot be shown. Restart the job, or start a new run."
)


async def damaged_record(request: Request, exc: Exception) -> Response:
    """A stored record that is not whole (CorruptObject): said plainly; which object, in the log."""
    log.error("damaged record for %s %s: %s", request.method, request.url.path, exc)
    body = f'<p class="alert" role="alert" data-testid="damaged-record">{escape(DAMAGED)}</p>'
    if not is_htmx(request):
        body = (
            '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            "<title>Damaged record · Mission Control for Exoplanets</title>\n</head>\n"
            f'<body>\n<main id="main">\n<h1>Damaged record</h1>\n{body}\n</main>\n</body>\n</html>\n'
        )
    return HTMLResponse(body, status_code=500, headers={"Cache-Control": "no-store", "Vary": "HX-Request"})


exception_handlers: dict[Any, Any] = {StorageUnavailable: storage_unavailable, CorruptObject: damaged_record}
