"""One place that decides between a full page and an htmx partial.

A page template includes its partial, so the markup exists once; an htmx request gets only
the partial, everything else (first load, refresh, Back, a shared link) the whole page.
"""

from collections.abc import Mapping
from html import escape
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import NoMatchFound

from webapp.templating import templates


def is_htmx(request: Request) -> bool:
    # a history-restore request wants the whole page (htmx's cache missed)
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render(
    request: Request,
    page: str,
    partial: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    name = partial if is_htmx(request) else page
    response = templates.TemplateResponse(
        request, name, dict(context), status_code=status_code, headers=dict(headers or {})
    )
    response.headers.append("Vary", "HX-Request")
    return response


# --- error answers ------------------------------------------------------------------------------
# Every error the app answers with goes through here, so a message that repeats what a client
# sent (a typed value, a file name) is always escaped: htmx inserts 4xx answers into the page as
# HTML whatever their content type.


def alert(message: str, testid: str = "error") -> str:
    """The escaped alert fragment an htmx request gets for an error."""
    return f'<p class="alert" role="alert" data-testid="{escape(testid)}">{escape(message, quote=False)}</p>'


def error_page(request: Request, title: str, body: str, head: str = "") -> str:
    """A minimal whole page around ``body`` (already escaped markup) for a plain request."""
    try:
        css = request.app.url_path_for("static", path="style.css")
        stylesheet = f'<link rel="stylesheet" href="{escape(css)}">\n'
    except (NoMatchFound, AttributeError, KeyError):  # no app, or no static mount
        stylesheet = ""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{head}<title>{escape(title)} · Mission Control for Exoplanets</title>\n{stylesheet}"
        f'</head>\n<body>\n<main id="main">\n<h1>{escape(title)}</h1>\n{body}\n'
        '<p><a href="/">Mission Control home</a></p>\n</main>\n</body>\n</html>\n'
    )


def error_response(
    request: Request,
    status_code: int,
    message: str,
    *,
    title: str | None = None,
    testid: str = "error",
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error answer: the escaped alert fragment for htmx, the same inside a page otherwise.
    Never kept by a browser or proxy (``no-store``); ``headers`` (e.g. ``Allow``) are kept."""
    body = alert(message, testid)
    if not is_htmx(request):
        body = error_page(request, title or _reason(status_code), body)
    answer = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
    answer.headers.setdefault("Cache-Control", "no-store")
    answer.headers.append("Vary", "HX-Request")
    return answer


def _reason(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"
