"""A run's jobs: start or restart, the self-replacing status fragment, and the downloads."""

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.errors import InvalidKey, ObjectNotFound, SpecError
from shared.runs import (
    FINAL,
    JobConflict,
    check_mode,
    check_run_id,
    job_key,
    load_spec,
    read_status,
    request_job,
    run_key,
)
from shared.spec import RunSpec
from webapp.htmx import render


def _ids(request: Request) -> tuple[str, str]:
    try:
        run_id = check_run_id(request.path_params["run_id"])
        mode = check_mode(request.path_params.get("mode", FINAL))
    except InvalidKey:
        raise HTTPException(404, "No such run.") from None
    return run_id, mode


def _status_context(request: Request, run_id: str, mode: str, problem: str = "") -> dict:
    status, _ = read_status(request.app.state.results, run_id, mode)
    polling = status is not None and not status.finished and not status.stale
    return {"run_id": run_id, "mode": mode, "status": status, "polling": polling, "problem": problem}


async def job_status(request: Request) -> Response:
    run_id, mode = _ids(request)
    context = _status_context(request, run_id, mode)
    if context["status"] is None and not request.app.state.results.exists(run_key(run_id, "spec.json")):
        raise HTTPException(404, "No such run.")
    return render(request, "job.html", "_job_status.html", context)


async def start_job(request: Request) -> Response:
    """Start the job, or restart it when it failed or its worker died (or when asked to)."""
    run_id, mode = _ids(request)
    results = request.app.state.results
    form = await request.form()
    try:
        spec = RunSpec.from_dict(load_spec(results, run_id))
        request_job(results, run_id, mode, spec, restart=form.get("restart") == "1")
    except ObjectNotFound:
        raise HTTPException(404, "No such run.") from None
    except SpecError as error:
        context = _status_context(request, run_id, mode, f"The run's settings are not complete: {error}")
        return render(request, "job.html", "_job_status.html", context, status_code=400)
    except JobConflict as error:
        context = _status_context(request, run_id, mode, f"Not started: {error}.")
        return render(request, "job.html", "_job_status.html", context, status_code=409)
    request.app.state.dispatcher.start(run_id, mode)
    return render(request, "job.html", "_job_status.html", _status_context(request, run_id, mode))


def _download(name: str, media_type: str, filename: str):
    async def download(request: Request) -> Response:
        run_id, _ = _ids(request)
        try:
            data = request.app.state.results.read_bytes(job_key(run_id, FINAL, name))
        except ObjectNotFound:
            raise HTTPException(404, f"This run has no {filename} yet: train it on all data first.") from None
        disposition = f'attachment; filename="{run_id}-{filename}"'
        return Response(data, media_type=media_type, headers={"Content-Disposition": disposition})

    return download


routes = [
    Route("/{run_id}/jobs/{mode}", job_status, name="job_status"),
    Route("/{run_id}/jobs/{mode}", start_job, methods=["POST"], name="start_job"),
    Route("/{run_id}/bundle.zip", _download("bundle.zip", "application/zip", "bundle.zip"), name="bundle"),
    Route(
        "/{run_id}/candidates.csv",
        _download("candidates.csv", "text/csv", "candidates.csv"),
        name="candidates",
    ),
]
