"""Step 1: choose a built-in table or upload a CSV or Parquet file; see its column profile."""

import re
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.catalog import BUILTINS
from shared.data import check_finite, read_table
from shared.errors import DataError
from shared.runs import create_run
from shared.sources import describe, store_table
from webapp.datasets import cards, ready
from webapp.htmx import render
from webapp.uploads import UploadTooLarge, limited_request
from webapp.wizard import go_to_step, load_run, step_page
from webapp.workspace import workspace_of

SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


def start(request: Request) -> Response:
    context = {"cards": cards(request), "max_upload_mb": request.app.state.settings.max_upload_mb}
    return render(request, "start.html", "_start.html", context)


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


async def choose(request: Request) -> Response:
    """Start a run on a built-in dataset, from any page that shows its card; the dataset is read
    from its snapshot (or environment variable) first if this storage has not seen it yet."""
    form = await request.form()
    builtin = BUILTINS.get(str(form.get("dataset", "")))
    if builtin is None:
        raise HTTPException(400, "Choose one of the built-in datasets.")
    info, problem = await ready(request, builtin)
    if info is None:
        return problem  # the card, with why the table could not be read; no run is created
    run_id = await run_in_threadpool(
        create_run,
        request.app.state.results,
        workspace_of(request),
        builtin.id,
        builtin.name,
        _initial_spec(builtin.id),
    )
    return go_to_step(request, run_id, "features", whole_page=True)


async def upload(request: Request) -> Response:
    """Stream an upload in (size-limited), read it, store it as Parquet, start a run on it."""
    settings = request.app.state.settings
    context = {"cards": cards(request), "max_upload_mb": settings.max_upload_mb}
    form = None
    try:
        limited = limited_request(request, settings.max_upload_bytes, settings.max_upload_mb)
        form = await limited.form(max_files=1, max_fields=5)
        file = form.get("file")
        if file is None or not hasattr(file, "read") or not file.filename:
            raise DataError("Choose a CSV or Parquet file to upload.")
        data = await file.read()
        if len(data) > settings.max_upload_bytes:
            raise UploadTooLarge(settings.max_upload_mb)
        name = SAFE_NAME.sub("_", file.filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1])[:80] or "upload"
        frame = read_table(data, filename=name)
        dataset_id = "u" + secrets.token_hex(12)
        try:
            check_finite(frame)
            info = describe(
                frame, dataset_id=dataset_id, name=name, source="upload", source_label=name, target=None
            )
            # the table is serialised before anything is written: a refusal leaves nothing behind
            store_table(request.app.state.storage, frame, info)
        except DataError as error:
            raise DataError(f"{name}: {error}") from error
    except UploadTooLarge as error:
        return render(
            request, "start.html", "_start.html", {**context, "upload_error": str(error)}, status_code=413
        )
    except DataError as error:
        return render(
            request, "start.html", "_start.html", {**context, "upload_error": str(error)}, status_code=400
        )
    finally:
        if form is not None:
            await form.close()
    run_id = create_run(
        request.app.state.results, workspace_of(request), dataset_id, name, _initial_spec(dataset_id)
    )
    return go_to_step(request, run_id, "dataset")


async def dataset_step(request: Request) -> Response:
    state = load_run(request)
    return step_page(request, state, "dataset", {"profiles": state.info.profiles() if state.info else []})


start_routes = [
    Route("/start", start, name="start"),
    Route("/start", choose, methods=["POST"], name="choose_dataset"),
    Route("/upload", upload, methods=["POST"], name="upload"),
]
routes = [Route("/dataset", dataset_step, name="step_dataset")]
