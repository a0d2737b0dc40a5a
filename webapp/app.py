"""The Starlette application factory."""

import gc
import logging
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from shared.settings import CLOUD, Settings, SettingsError
from shared.storage import LocalStorage, open_storage
from shared.worker import LocalWorker
from webapp import branch, datasets, history, home, login, missions, runs, threshold
from webapp.dispatch import Dispatcher
from webapp.endpoints import offloaded
from webapp.failures import exception_handlers
from webapp.logs import RequestLog
from webapp.security import AccessGate, AccessPolicy, CSRFProtection, SecurityHeaders
from webapp.session import WorkspaceSession
from webapp.steps import compare, dataset, evaluate, features, model, predict, ship
from webapp.templating import ROOT

MIN_SECRET_LENGTH = 32
SWITCH_INTERVAL_S = 0.001
# the original app's README examples, and the usual stand-ins
PLACEHOLDER_SECRETS = {"change_me_in_production", "prod_secret", "changeme", "secret", "dev"}


def session_secret(settings: Settings) -> str:
    """SECRET_KEY (or FLASK_SECRET_KEY); in embedded mode a key kept beside local storage."""
    if settings.mode == CLOUD:
        key = settings.secret_key or ""
        if not key:
            raise SettingsError("SECRET_KEY is not set: cloud mode needs a real secret to sign sessions")
        if len(key) < MIN_SECRET_LENGTH or key.lower() in PLACEHOLDER_SECRETS:
            raise SettingsError(
                f"SECRET_KEY is too weak for cloud mode: use at least {MIN_SECRET_LENGTH} random characters "
                '(python -c "import secrets; print(secrets.token_urlsafe(32))")'
            )
        return key
    if settings.secret_key:
        return settings.secret_key
    storage = open_storage(settings.storage_url)
    if not isinstance(storage, LocalStorage):
        return secrets.token_urlsafe(32)  # sessions last as long as this process
    path = Path(storage.url) / ".session-key"
    try:  # create-only: two workers starting together end up with the same key
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32))
    for _ in range(50):  # the other worker may still be writing it
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.01)
    raise SettingsError(f"{path} is empty; delete it and start again")


def create_app(settings: Settings | None = None) -> Starlette:
    if settings is None:
        from webapp.settings import SETTINGS as settings

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # what start-up made (modules, templates) lives as long as the process: out of the garbage
        # collector's way, so a collection (which pauses every thread) scans only what requests made
        gc.freeze()
        # the event loop's thread waits at most this long for the interpreter lock when pages are
        # being rendered in the thread pool (the default, 5 ms per busy thread, let a health
        # check wait over 100 ms behind a burst of page renders)
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        yield
        app.state.pool.shutdown(wait=False, cancel_futures=True)
        app.state.ingest.shutdown()
        app.state.background.shutdown(wait=False, cancel_futures=True)
        app.state.dispatcher.shutdown()

    logging.basicConfig(
        level=logging.INFO, format="%(message)s" if settings.mode == CLOUD else "%(asctime)s %(message)s"
    )
    secret = session_secret(settings)
    cloud = settings.mode == CLOUD
    access = AccessPolicy(settings.access_token, secret, https_only=cloud, cloud=cloud)
    middleware = [
        Middleware(RequestLog, as_json=settings.mode == CLOUD),
        Middleware(SecurityHeaders),
        Middleware(
            WorkspaceSession,
            secret_key=secret,
            session_cookie="mission_session",
            same_site="lax",
            https_only=settings.mode == CLOUD,
            max_age=400 * 24 * 3600,
        ),
        Middleware(AccessGate, policy=access),
        Middleware(CSRFProtection, secret=secret),
    ]
    run_steps = [
        *runs.routes,  # first: the job fragment every waiting browser asks for each second
        *dataset.routes,
        *features.routes,
        *model.routes,
        *evaluate.routes,
        *ship.routes,
        *predict.routes,
        *threshold.routes,
        *branch.routes,
        *compare.routes,
        *missions.run_routes,
    ]
    app = Starlette(
        routes=offloaded(
            [
                *home.routes,
                *login.routes,
                *dataset.start_routes,
                Mount("/datasets", routes=datasets.routes),
                Mount("/missions", routes=missions.routes),
                Mount("/runs", routes=[*history.routes, Mount("/{run_id}", routes=run_steps)]),
                Mount("/static", app=StaticFiles(directory=ROOT / "static"), name="static"),
            ]
        ),
        middleware=middleware,
        exception_handlers=exception_handlers,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.session_secret = secret
    app.state.access = access
    app.state.storage = open_storage(settings.storage_url)
    app.state.results = open_storage(settings.results_url)
    app.state.dispatcher = Dispatcher(settings, app.state.results)
    # every page and storage call runs in this pool: bounded, so a burst of requests queues for a
    # thread instead of starting hundreds (see webapp.endpoints)
    app.state.pool = ThreadPoolExecutor(max_workers=settings.web_threads, thread_name_prefix="web")
    # uploads are parsed in a process of their own (see shared.worker.ingest)
    app.state.ingest = LocalWorker()
    # dataset downloads: long, kept apart from the pages' pool
    app.state.background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fetch")
    return app
