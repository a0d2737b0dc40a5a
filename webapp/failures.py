"""How the app answers when something outside a request's control fails (storage down, ...):
a short message and a 5xx status that says so, never a traceback.

Storage unreachable (StorageUnavailable: the bucket's server refuses or times out, the storage
folder is missing, the disk is full) is a 503 with ``Retry-After``: htmx requests get a small
alert fragment (base.html's htmx config swaps 503 answers in) that asks for the same URL again
after a few seconds when it was a GET, so a page heals itself once storage is back; other
requests get a plain page saying the same. The details (which object, which error) go to the
log only: they name storage locations, which are never shown to browsers.

A damaged stored record (CorruptObject) is a 500 saying so; a run whose own record (meta.json)
is damaged is named as damaged to its owner and is a 404 to everyone else. Every HTTPException
(a refused input, a missing page) is answered here too, its detail escaped (htmx inserts error
answers into the page as HTML, and a detail may repeat what the client sent), and anything
unhandled is a short 500 with the app's security headers: never a traceback, never raw input.
"""

import logging
import re
from html import escape
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from shared.errors import CorruptObject, StorageUnavailable
from shared.runs import WORKSPACE_ID, DamagedRun, workspace_run_key
from webapp.endpoints import in_pool
from webapp.htmx import error_page, error_response, is_htmx
from webapp.security import HEADERS as SECURITY_HEADERS
from webapp.workspace import SESSION_KEY

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
    refresh = f'<meta http-equiv="refresh" content="{RETRY_AFTER_S}">\n' if again else ""
    link = f'\n<p><a href="{escape(again)}">Try again</a></p>' if again else ""
    body = (
        '<p class="alert" role="alert" data-testid="storage-unavailable">'
        f"{escape(STORAGE_UNAVAILABLE)}</p>{link}"
    )
    return error_page(request, "Storage unreachable", body, head=refresh)


async def storage_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("503 for %s %s: %s", request.method, request.url.path, exc)
    again = _same_url(request)
    body = _fragment(again) if is_htmx(request) else _page(request, again)
    headers = {"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store", "Vary": "HX-Request"}
    return HTMLResponse(body, status_code=503, headers=headers)


DAMAGED = (
    "A stored record of this run is damaged, so this cannot be shown. Restart the job, or start a new run."
)
NO_SUCH_RUN = "No such run."  # as webapp.workspace.owned_run answers a run that is not yours
RUN_IN_PATH = re.compile(r"/runs/(r[0-9a-f]{32})(?:/|$)")


def damaged_run(run_id: str) -> str:
    return (
        f"Run {run_id} is damaged: its own record (who made it, from which dataset) cannot be read, "
        "so it cannot be opened. Start a new run; nothing else was changed."
    )


async def damaged_record(request: Request, exc: Exception) -> Response:
    """A stored record that is not whole (CorruptObject): said plainly; which object, in the log.

    A run whose own record (meta.json) is damaged has no readable owner: it is named as damaged
    to the browser whose workspace lists it (the list create_run writes beside the meta), and
    answered like any run that is not yours (404) to everyone else.
    """
    log.error("damaged record for %s %s: %s", request.method, request.url.path, exc)
    match = RUN_IN_PATH.match(request.url.path)
    if isinstance(exc, DamagedRun) or match:
        run_id = exc.run_id if isinstance(exc, DamagedRun) else match.group(1)
        try:
            listed = await in_pool(request, _listed, request, run_id)
        except StorageUnavailable as error:
            return await storage_unavailable(request, error)
        if not listed:
            return error_response(request, 404, NO_SUCH_RUN)
        if isinstance(exc, DamagedRun):
            return error_response(
                request, 500, damaged_run(run_id), title="Damaged run", testid="damaged-run"
            )
    return error_response(request, 500, DAMAGED, title="Damaged record", testid="damaged-record")


def _listed(request: Request, run_id: str) -> bool:
    """Whether this browser's workspace lists the run (without reading the run's meta)."""
    workspace = request.scope.get("session", {}).get(SESSION_KEY)
    if not isinstance(workspace, str) or not WORKSPACE_ID.fullmatch(workspace):
        return False
    return request.app.state.results.exists(workspace_run_key(workspace, run_id))


async def http_error(request: Request, exc: Exception) -> Response:
    """The one place HTTPException details become a response: escaped (a detail may repeat what
    the client sent, and htmx inserts error answers into the page as HTML), with its status and
    headers kept; the security headers are added by the middleware as for every answer."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return error_response(request, exc.status_code, str(exc.detail), headers=exc.headers)


SERVER_ERROR = "Something went wrong on the server; it has been logged. Try again, or reload the page."


async def server_error(request: Request, exc: Exception) -> Response:
    """Anything unhandled: a short escaped message, never a traceback. This answer leaves from
    outside the middleware stack (Starlette's ServerErrorMiddleware), so the security headers
    are set here."""
    answer = error_response(request, 500, SERVER_ERROR, title="Server error", testid="server-error")
    for name, value in SECURITY_HEADERS.items():
        answer.headers.setdefault(name, value)
    return answer


exception_handlers: dict[Any, Any] = {
    StorageUnavailable: storage_unavailable,
    CorruptObject: damaged_record,
    HTTPException: http_error,
    Exception: server_error,
}
