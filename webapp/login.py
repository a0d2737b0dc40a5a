"""Sign-in for a deployment protected by a shared access token (ACCESS_TOKEN)."""

import asyncio

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from webapp.security import safe_next
from webapp.templating import templates

FAILED_SIGN_IN_DELAY_S = 0.5  # slows guessing; the token itself should be long and random


def login_page(request: Request) -> Response:
    context = {"next": safe_next(request.query_params.get("next")), "error": None}
    return templates.TemplateResponse(request, "login.html", context)


async def login(request: Request) -> Response:
    policy = request.app.state.access
    form = await request.form()
    next_page = safe_next(str(form.get("next") or ""))
    if policy.token is None:
        return RedirectResponse(next_page, status_code=303)
    if not policy.matches(str(form.get("token") or "")):
        await asyncio.sleep(FAILED_SIGN_IN_DELAY_S)
        context = {"next": next_page, "error": "That access token is not right."}
        return templates.TemplateResponse(request, "login.html", context, status_code=401)
    response = RedirectResponse(next_page, status_code=303)
    policy.grant(response)
    return response


routes = [
    Route("/login", login_page, name="login"),
    Route("/login", login, methods=["POST"], name="login_submit"),
]
