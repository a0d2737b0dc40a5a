"""One place that decides between a full page and an htmx partial.

A page template includes its partial, so the markup exists once; an htmx request gets only
the partial, everything else (first load, refresh, Back, a shared link) the whole page.
"""

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

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
