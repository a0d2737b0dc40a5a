"""The landing page and the health check."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.params import FAMILIES
from webapp.templating import templates


def home(request: Request) -> Response:
    storage = request.app.state.storage
    context = {
        "families": FAMILIES.values(),
        "storage_kind": type(storage).__name__,
        "mode": request.app.state.settings.mode,
    }
    return templates.TemplateResponse(request, "home.html", context)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


routes = [
    Route("/", home, name="home"),
    Route("/healthz", healthz, name="healthz"),
]
