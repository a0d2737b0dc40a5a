"""Step 1: choose a built-in table or upload a CSV or Parquet file; see its column profile."""

import re
import shutil
import tempfile
from concurrent.futures.process import BrokenProcessPool

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared import worker
from shared.catalog import BUILTINS
from shared.errors import DataError
from shared.runs import create_run
from shared.sources import import_key, imports_location
from webapp.datasets import cards, cards_version, ready
from webapp.endpoints import form_endpoint, in_pool
from webapp.htmx import is_htmx, render
from webapp.pages import STEP_JOBS, kept, run_page
from webapp.steps.features import fill_default_features
from webapp.uploads import UploadTooLarge, limited_request
from webapp.wizard import go_to_step, load_run, step_page
from webapp.workspace import workspace_of

SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
INGEST_TIMEOUT_S = 600
READ_HERE_BYTES = 1024 * 1024  # larger uploads are parsed in a process of their own


def _start_context(request: Request, **problems: str) -> dict:
    settings = request.app.state.settings
    imports = imports_location(request.app.state.storage)
    return {
        "cards": cards(request),
        "max_upload_mb": settings.max_upload_mb,
        "imports": {
            "uri": imports,
            "max_mb": settings.max_import_mb,
            "example": f"gcloud storage cp koi.csv {imports}"
            if imports.startswith("gs://")
            else f"cp koi.csv {imports}",
        },
        **problems,
    }


def start(request: Request) -> Response:
    def page() -> Response:
        return render(request, "start.html", "_start.html", _start_context(request))

    return kept(("start", workspace_of(request), is_htmx(request), cards_version(request)), page)


def _initial_spec(dataset_id: str) -> dict:
    builtin = BUILTINS.get(dataset_id)
    if builtin is None:
        return {"dataset": dataset_id, "features": []}
    setup = builtin.default_setup
    return {
        "dataset": dataset_id,
        "target": builtin.target,
        "features": None,
        "label_setup": setup.key,
        "label_mapping": setup.mapping,
        "positive_class": setup.positive_class,
        "score_classes": list(setup.score_classes),
        "group_column": builtin.group_column,
    }


@form_endpoint
def choose(request: Request, form: FormData) -> Response:
    """Start a run on a built-in dataset, from any page that shows its card; the dataset is read
    from its snapshot (or environment variable) first if this storage has not seen it yet."""
    builtin = BUILTINS.get(str(form.get("dataset", "")))
    if builtin is None:
        raise HTTPException(400, "Choose one of the built-in datasets.")
    info, problem = ready(request, builtin)
    if info is None:
        return problem  # the card, with why the table could not be read; no run is created
    run_id = create_run(
        request.app.state.results, workspace_of(request), builtin.id, builtin.name, _initial_spec(builtin.id)
    )
    fill_default_features(request, load_run(request, run_id))
    return go_to_step(request, run_id, "features", whole_page=True)


async def upload(request: Request) -> Response:
    """Stream an upload in (size-limited, on the event loop), then read it, store it as Parquet
    and start a run on it in the thread pool."""
    settings = request.app.state.settings
    try:
        limited = limited_request(request, settings.max_upload_bytes, settings.max_upload_mb)
        async with limited.form(max_files=1, max_fields=5) as form:
            return await in_pool(request, _store_upload, request, form)
    except UploadTooLarge as error:
        return await in_pool(request, _start_page, request, str(error), 413)


def _start_page(request: Request, problem: str, status_code: int, *, field: str = "upload_error") -> Response:
    context = _start_context(request, **{field: problem})
    return render(request, "start.html", "_start.html", context, status_code=status_code)


def _store_upload(request: Request, form: FormData) -> Response:
    settings = request.app.state.settings
    try:
        file = form.get("file")
        if file is None or not hasattr(file, "read") or not file.filename:
            raise DataError("Choose a CSV or Parquet file to upload.")
        name = SAFE_NAME.sub("_", file.filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1])[:80] or "upload"
        with tempfile.NamedTemporaryFile(prefix="upload-") as spooled:
            file.file.seek(0)
            shutil.copyfileobj(file.file, spooled)
            spooled.flush()
            size = spooled.tell()
            if size > settings.max_upload_bytes:
                raise UploadTooLarge(settings.max_upload_mb)
            if size <= READ_HERE_BYTES:  # parsed in a few milliseconds: not worth a process hop
                dataset_id, name = worker.ingest(settings.storage_url, spooled.name, name)
            else:
                dataset_id, name = _in_ingest_process(request, name, worker.ingest, spooled.name, name)
    except UploadTooLarge as error:
        return _start_page(request, str(error), 413)
    except DataError as error:
        return _start_page(request, str(error), 400)
    return _new_run_on(request, dataset_id, name)


def _in_ingest_process(request: Request, name: str, ingest, *args) -> tuple[str, str]:
    """(dataset id, name) from ``ingest(storage_url, *args)`` run in the app's ingest process;
    DataError if the file is unusable or the process died reading it."""
    storage_url = request.app.state.settings.storage_url
    future = request.app.state.ingest.submit(ingest, storage_url, *args)
    try:
        return future.result(timeout=INGEST_TIMEOUT_S)
    except BrokenProcessPool:
        raise DataError(
            f"{name}: the process reading it stopped (out of memory?); try a smaller file"
        ) from None


def _new_run_on(request: Request, dataset_id: str, name: str) -> Response:
    run_id = create_run(
        request.app.state.results, workspace_of(request), dataset_id, name, _initial_spec(dataset_id)
    )
    return go_to_step(request, run_id, "dataset")


@form_endpoint
def import_table(request: Request, form: FormData) -> Response:
    """Start a run on a table the user copied into storage's imports/ folder: the way in for
    tables bigger than a request may carry (Cloud Run's 32 MiB)."""
    settings = request.app.state.settings
    name = str(form.get("name", "")).strip()
    try:
        import_key(name)  # a bad name is refused before a process is asked
        limit = settings.max_import_mb * 1024 * 1024
        dataset_id, name = _in_ingest_process(request, name, worker.ingest_stored, name, limit)
    except DataError as error:
        return _start_page(request, str(error), 400, field="import_error")
    return _new_run_on(request, dataset_id, name)


@run_page(*STEP_JOBS)
def dataset_step(request: Request) -> Response:
    state = load_run(request)
    return step_page(request, state, "dataset", {"profiles": state.info.profiles() if state.info else []})


start_routes = [
    Route("/start", start, name="start"),
    Route("/start", choose, methods=["POST"], name="choose_dataset"),
    Route("/upload", upload, methods=["POST"], name="upload"),
    Route("/import", import_table, methods=["POST"], name="import_table"),
]
routes = [Route("/dataset", dataset_step, name="step_dataset")]
