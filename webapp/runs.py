"""A run's jobs: start or restart, the self-replacing status fragment, and the downloads."""

import io
import json
import zipfile
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared import model_card
from shared.errors import InvalidKey, ObjectNotFound, SpecError
from shared.figures import TITLES as FIGURE_TITLES
from shared.runs import (
    EVALUATE,
    FINAL,
    SEARCH,
    SUCCEEDED,
    SVG_TYPE,
    JobConflict,
    check_mode,
    figure_name,
    job_key,
    load_spec,
    read_status,
    request_job,
)
from shared.spec import RunSpec
from webapp.htmx import render
from webapp.threshold import view as threshold_view
from webapp.workspace import owned_run


def _mode(request: Request) -> str:
    try:
        return check_mode(request.path_params["mode"])
    except InvalidKey:
        raise HTTPException(404, "No such job.") from None


def _output(request: Request, run_id: str, mode: str, name: str) -> dict[str, Any] | None:
    try:
        return json.loads(request.app.state.results.read_bytes(job_key(run_id, mode, name)))
    except ObjectNotFound:
        return None


def job_context(request: Request, run_id: str, mode: str, problem: str = "") -> dict[str, Any]:
    """Everything the status fragment shows: state, progress lines, and once done the results."""
    status, _ = read_status(request.app.state.results, run_id, mode)
    polling = status is not None and not status.finished and not status.stale
    context: dict[str, Any] = {
        "run_id": run_id,
        "mode": mode,
        "status": status,
        "polling": polling,
        "problem": problem,
        "metrics": None,
        "summary": None,
    }
    if status is not None and status.state == SUCCEEDED:
        if mode == EVALUATE:
            context["metrics"] = _output(request, run_id, mode, "metrics.json")
            if context["metrics"] and context["metrics"].get("positive_class"):
                context["threshold"] = threshold_view(request, run_id)
        elif mode == SEARCH:
            context["leaderboard"] = _output(request, run_id, mode, "leaderboard.json")
        else:
            context["summary"] = _output(request, run_id, mode, "summary.json")
            context["has_candidates"] = request.app.state.results.exists(
                job_key(run_id, FINAL, "candidates.csv")
            )
    return context


async def job_status(request: Request) -> Response:
    run_id, _ = owned_run(request)
    return render(request, "job.html", "_job_status.html", job_context(request, run_id, _mode(request)))


def start(
    request: Request, run_id: str, mode: str, *, restart: bool, options: dict | None = None
) -> Response:
    """Queue the job from the run's current spec and hand it to the compute side."""
    results = request.app.state.results
    try:
        spec = RunSpec.from_dict(load_spec(results, run_id))
        request_job(results, run_id, mode, spec, restart=restart, options=options)
    except SpecError as error:
        context = job_context(request, run_id, mode, f"The run's settings are not complete: {error}")
        return render(request, "job.html", "_job_status.html", context, status_code=400)
    except JobConflict as error:
        context = job_context(request, run_id, mode, f"Not started: {error}.")
        return render(request, "job.html", "_job_status.html", context, status_code=409)
    request.app.state.dispatcher.start(run_id, mode)
    return render(request, "job.html", "_job_status.html", job_context(request, run_id, mode))


async def start_job(request: Request) -> Response:
    """Start the job, or restart it when it failed or its worker died (or when asked to)."""
    run_id, _ = owned_run(request)
    form = await request.form()
    return start(request, run_id, _mode(request), restart=form.get("restart") == "1")


def _download(name: str, media_type: str):
    async def download(request: Request) -> Response:
        run_id, _ = owned_run(request)
        try:
            data = request.app.state.results.read_bytes(job_key(run_id, FINAL, name))
        except ObjectNotFound:
            raise HTTPException(404, f"This run has no {name} yet: train it on all data first.") from None
        disposition = f'attachment; filename="{run_id}-{name}"'
        return Response(data, media_type=media_type, headers={"Content-Disposition": disposition})

    return download


# matplotlib's SVG carries a <style> element and nothing active; this policy keeps it that way
# even when the file is opened directly rather than through an <img>.
FIGURE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Cache-Control": "private, no-cache",
}


async def figure(request: Request) -> Response:
    """A stored evaluation figure (or the final model's SHAP summary), by a name from a fixed list."""
    run_id, _ = owned_run(request)
    mode, name = request.path_params["mode"], request.path_params["name"]
    if mode not in (EVALUATE, FINAL) or name not in FIGURE_TITLES:
        raise HTTPException(404, "No such figure.")
    try:
        data = request.app.state.results.read_bytes(job_key(run_id, mode, figure_name(name)))
    except ObjectNotFound:
        raise HTTPException(404, f"This run has no {FIGURE_TITLES[name].lower()} yet.") from None
    return Response(data, media_type=SVG_TYPE, headers=FIGURE_HEADERS)


async def card(request: Request) -> Response:
    """The model card of the run's trained model, as HTML (the bundle carries it as Markdown)."""
    run_id, _ = owned_run(request)
    try:
        bundle = request.app.state.results.read_bytes(job_key(run_id, FINAL, "bundle.zip"))
    except ObjectNotFound:
        raise HTTPException(404, "This run has no model card yet: train it on all data first.") from None
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        metadata = json.loads(archive.read("metadata.json"))
    context = {"run_id": run_id, "metadata": metadata, "sections": model_card.sections(metadata)}
    return render(request, "model_card.html", "_model_card.html", context)


routes = [
    Route("/card", card, name="model_card"),
    Route("/figures/{mode}/{name}.svg", figure, name="figure"),
    Route("/jobs/{mode}", job_status, name="job_status"),
    Route("/jobs/{mode}", start_job, methods=["POST"], name="start_job"),
    Route("/bundle.zip", _download("bundle.zip", "application/zip"), name="bundle"),
    Route("/candidates.csv", _download("candidates.csv", "text/csv"), name="candidates"),
]
