"""The Starlette application factory."""

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from shared.settings import Settings
from shared.storage import open_storage
from webapp import home
from webapp.templating import ROOT


def create_app(settings: Settings | None = None) -> Starlette:
    if settings is None:
        from webapp.settings import SETTINGS as settings
    app = Starlette(
        routes=[
            *home.routes,
            Mount("/static", app=StaticFiles(directory=ROOT / "static"), name="static"),
        ]
    )
    app.state.settings = settings
    app.state.storage = open_storage(settings.storage_url)
    return app
