"""Sign-in for a deployment protected by a shared access token (ACCESS_TOKEN).

A wrong token spends the client's failure budget (``webapp.security.FailureLimiter``, shared with
``Authorization: Bearer``); a locked-out client is refused at once with a 429 and ``Retry-After``,
never held waiting: a delay would only tie up the server while parallel guesses go on.
"""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from webapp.security import locked_out_message, safe_next, too_many_attempts
from webapp.templating import templates

WRONG_TOKEN = "That access token is not right."


def login_page(request: Request) -> Response:
    context = {"next": safe_next(request.query_params.get("next")), "error": None}
    return templates.TemplateResponse(request, "login.html", context)


async def login(request: Request) -> Response:
    policy = request.app.state.access
    form = await request.form()
    next_page = safe_next(str(form.get("next") or ""))
    if policy.token is None:
        return RedirectResponse(next_page, status_code=303)
    attempt = policy.attempt(request.scope, str(form.get("token") or ""))
    if attempt.retry_after_s and "hx-request" in request.headers:
        return too_many_attempts(attempt.retry_after_s, htmx=True)
    if attempt.retry_after_s:
        message = locked_out_message(attempt.retry_after_s)
        return _refused(request, next_page, message, 429, {"Retry-After": str(attempt.retry_after_s)})
    if not attempt.granted:
        return _refused(request, next_page, WRONG_TOKEN, 401)
    response = RedirectResponse(next_page, status_code=303)
    policy.grant(response)
    return response


def _refused(
    request: Request, next_page: str, message: str, status: int, headers: dict[str, str] | None = None
) -> Response:
    """The sign-in page with the message beside the field, or (for htmx) the message alone."""
    headers = {**(headers or {}), "Vary": "HX-Request", "Cache-Control": "no-store"}
    if "hx-request" in request.headers:
        context = {"name": "token", "message": message}
        return templates.TemplateResponse(
            request, "_field_error.html", context, status_code=status, headers=headers
        )
    context = {"next": next_page, "error": message}
    return templates.TemplateResponse(request, "login.html", context, status_code=status, headers=headers)


routes = [
    Route("/login", login_page, name="login"),
    Route("/login", login, methods=["POST"], name="login_submit"),
]
