"""A run's jobs: start or restart, the self-replacing status fragment, and the downloads."""

import io
import json
import zipfile
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared import model_card
from shared.cache import MEMO
from shared.errors import InvalidKey, ObjectNotFound, SpecError
from shared.figures import TITLES as FIGURE_TITLES
from shared.params import results_label
from shared.runs import (
    BATCH,
    BATCH_OUTPUT,
    BUNDLE,
    CANDIDATES,
    EVALUATE,
    FINAL,
    JOB_TYPES,
    METRICS,
    METRICS_READY,
    QUEUED,
    RUNNING,
    STATUS,
    SUCCEEDED,
    SVG_TYPE,
    JobConflict,
    Status,
    check_mode,
    figure_name,
    job_key,
    load_spec,
    made_with_draft,
    read_output,
    read_status,
    request_job,
    run_key,
)
from shared.spec import RunSpec
from webapp.endpoints import form_endpoint
from webapp.htmx import is_htmx, render
from webapp.pages import kept, run_page, status_at
from webapp.threshold import view as threshold_view
from webapp.workspace import owned_run


def _mode(request: Request) -> str:
    try:
        return check_mode(request.path_params["mode"])
    except InvalidKey:
        raise HTTPException(404, "No such job.") from None


def _metrics_ready(status: Status) -> bool:
    return any(text == METRICS_READY for _, text in status.lines)


def _output(
    request: Request, run_id: str, mode: str, name: str, attempt: int, *, cached: bool = True
) -> dict[str, Any] | None:
    """A finished job's output: written before the job's status said so, never changed under
    its attempt number, so read and parsed once per process (``cached=False`` while the job
    still runs and may rewrite it)."""
    results = request.app.state.results

    def load() -> dict[str, Any] | None:
        return read_output(results, run_id, mode, name)

    return MEMO.get(("output", results.url, run_id, mode, attempt, name), load) if cached else load()


def job_context(
    request: Request,
    run_id: str,
    mode: str,
    problem: str = "",
    status: tuple[Status | None, int] | None = None,
) -> dict[str, Any]:
    """Everything the status fragment shows: state, progress lines, and once done the results.
    ``status``: the job's status and generation, if the caller has just read them."""
    status, _ = status or read_status(request.app.state.results, run_id, mode)
    ahead = (
        request.app.state.dispatcher.jobs_ahead(run_id, mode)
        if status is not None and status.state == QUEUED
        else None
    )
    # a job waiting in this app's own worker queue is not stalled, however long it waits; a
    # stalled one is still asked about, slowly, so a job that recovers shows without a reload
    stalled = status is not None and status.stale and ahead is None
    context: dict[str, Any] = {
        "run_id": run_id,
        "mode": mode,
        "status": status,
        "stalled": stalled,
        "jobs_ahead": ahead,
        "polling": status is not None and not status.finished,
        "poll_every": "10s" if stalled else "1s",
        "problem": problem,
        "metrics": None,
        "summary": None,
        "stale": "",
    }
    if mode == EVALUATE and status is not None and status.state == RUNNING and _metrics_ready(status):
        early = _output(request, run_id, mode, METRICS, status.attempt, cached=False)
        if early and early.get("attempt") == status.attempt:  # not a previous attempt's
            context["metrics"] = early
    if status is not None and status.state == SUCCEEDED:
        job_type = JOB_TYPES[mode]
        context[job_type.shown_as] = _output(request, run_id, mode, job_type.result, status.attempt)
        if mode == EVALUATE and context["metrics"] and context["metrics"].get("positive_class"):
            context["threshold"] = threshold_view(request, run_id)
        if mode == FINAL:
            context["has_candidates"] = request.app.state.results.exists(job_key(run_id, FINAL, CANDIDATES))
        if mode in (EVALUATE, FINAL):  # a family's result is meant to differ from the run's model
            context["stale"] = _stale(request, run_id, context[job_type.shown_as])
    return context


def _stale(request: Request, run_id: str, shown: Any) -> str:
    """Whose results these are, if the run's model changed since they were made ("" if not)."""
    made_with = shown.get("spec") if isinstance(shown, dict) else None
    if made_with is None:
        return ""
    current = load_spec(request.app.state.results, run_id)
    return "" if made_with_draft(made_with, current) else results_label(made_with, current)


def job_status(request: Request) -> Response:
    """The self-replacing status fragment. A waiting browser asks every second: while the job runs
    this reads one object (its status); once it has finished the fragment is kept per status
    generation (and, for an evaluation, per saved threshold, which it shows)."""
    run_id, _ = owned_run(request)
    mode = _mode(request)
    status_key, spec_key = job_key(run_id, mode, STATUS), run_key(run_id, "spec.json")
    generations = request.app.state.results.generations_of([status_key, spec_key])
    generation = generations.get(status_key, 0)
    status = status_at(request, run_id, mode, generation) if generation else None

    def page() -> Response:
        context = {"job": job_context(request, run_id, mode, status=(status, generation))}
        return render(request, "job.html", "_job_status.html", context)

    if status is None or not status.finished:
        return page()
    spec = generations.get(spec_key, 0)  # results are labelled stale when the model changes
    return kept(("job", request.scope["path"], is_htmx(request), generation, spec), page)


def batch_output(request: Request, run_id: str) -> dict[str, Any] | None:
    """The run's last successful batch prediction: its token, the stored input and output, rows."""
    return read_output(request.app.state.results, run_id, BATCH, BATCH_OUTPUT)


def start(
    request: Request,
    run_id: str,
    mode: str,
    *,
    restart: bool,
    options: dict | None = None,
    spec: RunSpec | None = None,
) -> Response:
    """Queue the job (from the run's current spec unless given one) and hand it to the compute
    side; answer with its status fragment at once."""
    results = request.app.state.results
    try:
        spec = spec or RunSpec.from_dict(load_spec(results, run_id))
        job = request_job(results, run_id, mode, spec, restart=restart, options=options)
    except SpecError as error:
        context = {"job": job_context(request, run_id, mode, f"The run's settings are not complete: {error}")}
        return render(request, "job.html", "_job_status.html", context, status_code=400)
    except JobConflict as error:
        context = {"job": job_context(request, run_id, mode, f"Not started: {error}.")}
        return render(request, "job.html", "_job_status.html", context, status_code=409)
    request.app.state.dispatcher.start(job)
    return render(request, "job.html", "_job_status.html", {"job": job_context(request, run_id, mode)})


@form_endpoint
def start_job(request: Request, form: FormData) -> Response:
    """Start the job, or restart it when it failed or its worker died (or when asked to)."""
    run_id, _ = owned_run(request)
    return start(request, run_id, _mode(request), restart=form.get("restart") == "1")


def download(name: str, media_type: str, mode: str = FINAL, missing: str = "train it on all data first"):
    """An endpoint answering one of a job's stored outputs as a file (404 saying how to get it)."""

    def answer(request: Request) -> Response:
        run_id, _ = owned_run(request)
        try:
            data = request.app.state.results.read_bytes(job_key(run_id, mode, name))
        except ObjectNotFound:
            raise HTTPException(404, f"This run has no {name} yet: {missing}.") from None
        disposition = f'attachment; filename="{run_id}-{name}"'
        return Response(data, media_type=media_type, headers={"Content-Disposition": disposition})

    return answer


# matplotlib's SVG carries a <style> element, and raster parts (a heatmap's image) as data: PNGs
# in <image> elements, and nothing active; this policy keeps it that way even when the file is
# opened directly rather than through an <img> (and lets those two kinds of content show).
FIGURE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "Cache-Control": "private, no-cache",
}


def figure(request: Request) -> Response:
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


def card(request: Request) -> Response:
    """The model card of the run's trained model, as HTML (the bundle carries it as Markdown)."""
    run_id, _ = owned_run(request)
    try:
        bundle = request.app.state.results.read_bytes(job_key(run_id, FINAL, BUNDLE))
    except ObjectNotFound:
        raise HTTPException(404, "This run has no model card yet: train it on all data first.") from None
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        metadata = json.loads(archive.read("metadata.json"))
    context = {"run_id": run_id, "metadata": metadata, "sections": model_card.sections(metadata)}
    return render(request, "model_card.html", "_model_card.html", context)


routes = [
    Route("/card", run_page(FINAL)(card), name="model_card"),
    Route("/figures/{mode}/{name}.svg", run_page(EVALUATE, FINAL)(figure), name="figure"),
    Route("/jobs/{mode}", job_status, name="job_status"),
    Route("/jobs/{mode}", start_job, methods=["POST"], name="start_job"),
    Route("/bundle.zip", download(BUNDLE, "application/zip"), name="bundle"),
    Route("/candidates.csv", download(CANDIDATES, "text/csv"), name="candidates"),
]
