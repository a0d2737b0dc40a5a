"""Rendered pages of a run, reused while nothing they show has changed.

A run's page depends on its spec, its jobs (a job's outputs never change under the generation of
its status) and its dataset's info. Their generations, read without reading the objects (a look
at each file locally, one listing on GCS), and the info's generation (a built-in may be
refreshed; an upload's never changes) are the page's version. A page is kept per version, path,
query and htmx-ness, and answered again without reading or rendering anything while the version
stands. While a job is queued or
running its page changes by the second (progress, a stall), so it is not kept.
"""

import functools
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from shared.cache import MEMO, Memo
from shared.errors import ObjectNotFound
from shared.runs import EVALUATE, FINAL, MODES, STATUS, Status, job_key, read_status, run_key
from shared.sources import UPLOAD_PREFIX, info_key
from webapp.htmx import is_htmx
from webapp.workspace import owned_run

PAGES = Memo(size=512)
DROPPED_HEADERS = ("set-cookie", "content-length")  # the session's, and recomputed per answer


@dataclass(frozen=True)
class Rendered:
    status_code: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    template: Any = None  # which template made it (the test client reports it, as for a fresh page)

    @classmethod
    def of(cls, response: Response) -> "Rendered":
        kept = tuple((k, v) for k, v in response.headers.items() if k not in DROPPED_HEADERS)
        return cls(response.status_code, bytes(response.body), kept, getattr(response, "template", None))

    def response(self) -> Response:
        response = KeptResponse(self.body, status_code=self.status_code)
        del response.headers["content-type"]
        for name, value in self.headers:
            response.headers.append(name, value)
        response.template = self.template
        return response


class KeptResponse(Response):
    template: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.template is not None and "http.response.debug" in scope.get("extensions", {}):
            await send({"type": "http.response.debug", "info": {"template": self.template, "context": {}}})
        await super().__call__(scope, receive, send)


def kept(key: Hashable, render: Callable[[], Response]) -> Response:
    """The page kept under ``key``, or ``render()``'s answer (kept if it is a successful one)."""
    answered: list[Response] = []

    def produce() -> Rendered | None:
        answered.append(render())
        return keepable(answered[0])

    rendered = PAGES.get(key, produce)
    return answered[0] if answered else rendered.response()


def status_at(request: Request, run_id: str, mode: str, generation: int) -> Status | None:
    """A job's status as of a listed generation, parsed once per generation (a status that has
    changed since it was listed is answered as it is now, and not kept)."""
    results = request.app.state.results
    newer: list[Status | None] = []

    def load() -> Status | None:
        status, read = read_status(results, run_id, mode)
        if read == generation:
            return status
        newer.append(status)
        return None

    status = MEMO.get(("status", results.url, run_id, mode, generation), load)
    return newer[0] if newer else status


def run_version(request: Request, run_id: str, dataset: str, modes: tuple[str, ...] = MODES) -> tuple | None:
    """What a page of the run showing these jobs shows, as generations (the spec, each job's
    status, the dataset's info); None while one of the jobs is unfinished."""
    # a job's outputs never change under its status's generation
    keys = [run_key(run_id, "spec.json"), *(job_key(run_id, mode, STATUS) for mode in modes)]
    objects = request.app.state.results.generations_of(keys)
    for mode in modes:
        generation = objects.get(job_key(run_id, mode, STATUS))
        if generation is not None:
            status = status_at(request, run_id, mode, generation)
            if status is None or not status.finished:
                return None
    info = 0
    if not dataset.startswith(UPLOAD_PREFIX):
        try:
            info = request.app.state.storage.stat(info_key(dataset)).generation
        except ObjectNotFound:
            return None
    return tuple(sorted(objects.items())), info


def generation_of(storage: Any, key: str) -> int:
    """An object's generation, 0 when there is none."""
    try:
        return storage.stat(key).generation
    except ObjectNotFound:
        return 0


STEP_JOBS = (EVALUATE, FINAL)  # every step shows them: the wizard's nav marks them done


def run_page(*modes: str) -> Callable[[Callable[[Request], Response]], Callable[[Request], Response]]:
    """A GET endpoint showing one of the browser's runs, its spec, its dataset and the jobs
    ``modes``, answered from PAGES while their version stands. Only successful answers are kept."""

    def decorate(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        @functools.wraps(handler)
        def endpoint(request: Request) -> Response:
            run_id, meta = owned_run(request)
            version = run_version(request, run_id, meta.dataset, modes)
            if version is None:
                return handler(request)
            key = (request.scope["path"], request.scope["query_string"], is_htmx(request), version)
            return kept(key, lambda: handler(request))

        return endpoint

    return decorate


def keepable(response: Response) -> Rendered | None:
    return Rendered.of(response) if response.status_code == 200 and hasattr(response, "body") else None
