"""The Starlette application factory."""

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from shared.settings import Settings
from shared.storage import open_storage
from webapp import datasets, home, runs
from webapp.dispatch import Dispatcher
from webapp.templating import ROOT


def create_app(settings: Settings | None = None) -> Starlette:
    if settings is None:
        from webapp.settings import SETTINGS as settings

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        app.state.background.shutdown(wait=False, cancel_futures=True)
        app.state.dispatcher.shutdown()

    app = Starlette(
        routes=[
            *home.routes,
            Mount("/datasets", routes=datasets.routes),
            Mount("/runs", routes=runs.routes),
            Mount("/static", app=StaticFiles(directory=ROOT / "static"), name="static"),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.storage = open_storage(settings.storage_url)
    app.state.results = open_storage(settings.results_url)
    app.state.dispatcher = Dispatcher(settings)
    # dataset downloads: I/O-bound, kept off the event loop
    app.state.background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fetch")
    return app
