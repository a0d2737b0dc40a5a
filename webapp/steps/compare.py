"""Compare model families (on the model step): every ticked family with its defaults, each
cross-validated on the run's own splits as a job of its own, side by side wherever jobs run;
a board that fills family by family, "Use this one", and a re-run of one family alone."""

import json

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.comparison import RANKED_BY, SHOWN, family_spec, ranked
from shared.errors import InvalidKey, ObjectNotFound, SpecError
from shared.params import FAMILIES
from shared.runs import (
    COMPARISON,
    FAMILY_RESULT,
    JobConflict,
    family_mode,
    load_spec,
    now_iso,
    read_output,
    request_job,
    run_key,
    update_spec,
)
from shared.spec import RunSpec
from webapp.endpoints import form_endpoint
from webapp.htmx import is_htmx, render
from webapp.runs import job_context
from webapp.wizard import go_to_step
from webapp.workspace import owned_run


def _manifest(request: Request, run_id: str) -> dict | None:
    """Which families the run's last comparison started (None before the first)."""
    try:
        manifest = json.loads(request.app.state.results.read_bytes(run_key(run_id, COMPARISON)))
    except (ObjectNotFound, ValueError):
        return None
    families = manifest.get("families") if isinstance(manifest, dict) else None
    if not isinstance(families, list):
        return None
    return {**manifest, "families": [k for k in families if k in FAMILIES]}


def board(request: Request, run_id: str, problem: str = "") -> dict:
    """The comparison's rows: finished families best first, then the others in their order."""
    manifest = _manifest(request, run_id)
    rows = []
    for key in (manifest or {}).get("families", []):
        job = job_context(request, run_id, family_mode(key))
        rows.append({"key": key, "name": FAMILIES[key].name, "job": job, "result": job.get("family")})
    done = [result["family"] for result in ranked([r["result"] for r in rows if r["result"]], RANKED_BY)]
    rows.sort(
        key=lambda r: done.index(r["key"]) if r["key"] in done else len(done)
    )  # stable: others keep order
    return {
        "run_id": run_id,
        "rows": rows,
        "started": manifest is not None,
        "best": done[0] if done else None,
        "polling": any(r["job"]["polling"] for r in rows),
        "poll_every": "1s",
        "shown": SHOWN,
        "metric": RANKED_BY,
        "problem": problem,
    }


def _answer(request: Request, run_id: str, problem: str = "", status_code: int = 200) -> Response:
    if not is_htmx(request):
        return go_to_step(request, run_id, "model")
    context = {"board": board(request, run_id, problem)}
    return render(request, "step_model.html", "_family_board.html", context, status_code=status_code)


def show(request: Request) -> Response:
    run_id, _ = owned_run(request)
    return _answer(request, run_id)


def _start(request: Request, run_id: str, keys: list[str], spec: RunSpec) -> str:
    """Request and hand out one job per family; the problems, in words ("" if none)."""
    problems = []
    for key in keys:
        try:
            job = request_job(
                request.app.state.results, run_id, family_mode(key), family_spec(spec, key), restart=True
            )
        except JobConflict as error:
            problems.append(f"{FAMILIES[key].name}: not started: {error}")
            continue
        request.app.state.dispatcher.start(job)
    return "; ".join(problems)


@form_endpoint
def start(request: Request, form: FormData) -> Response:
    """Compare the ticked families (every family if none is ticked)."""
    run_id, _ = owned_run(request)
    keys = [k for k in form.getlist("family") if k in FAMILIES] or list(FAMILIES)
    try:
        spec = RunSpec.from_dict(load_spec(request.app.state.results, run_id))
    except SpecError as error:
        return _answer(request, run_id, f"Finish the earlier steps first: {error}", 400)
    manifest = {"families": keys, "started": now_iso(), "ranked_by": RANKED_BY}
    request.app.state.results.write_bytes(
        run_key(run_id, COMPARISON), json.dumps(manifest).encode(), content_type="application/json"
    )
    return _answer(request, run_id, _start(request, run_id, keys, spec))


def _family(form: FormData) -> str:
    key = str(form.get("family", ""))
    try:
        family_mode(key)
    except InvalidKey:
        raise HTTPException(400, f"{key!r} is not a model family") from None
    return key


@form_endpoint
def rerun(request: Request, form: FormData) -> Response:
    """Run one family's part again (after it failed or stalled), alone."""
    run_id, _ = owned_run(request)
    key = _family(form)
    try:
        spec = RunSpec.from_dict(load_spec(request.app.state.results, run_id))
    except SpecError as error:
        return _answer(request, run_id, f"Finish the earlier steps first: {error}", 400)
    return _answer(request, run_id, _start(request, run_id, [key], spec))


@form_endpoint
def use(request: Request, form: FormData) -> Response:
    """Make this family (with the parameters it was compared with) the run's model."""
    run_id, _ = owned_run(request)
    key = _family(form)
    result = read_output(request.app.state.results, run_id, family_mode(key), FAMILY_RESULT)
    if result is None:
        raise HTTPException(409, f"{FAMILIES[key].name} has no result in this comparison yet.")
    model = {"family": key, "params": result["params"]}
    update_spec(request.app.state.results, run_id, lambda s: {**s, "model": model, "calibration": "none"})
    return go_to_step(request, run_id, "evaluate")


def result(request: Request) -> Response:
    """One family's part of the comparison as JSON: scores per split, times, the spec it ran."""
    run_id, _ = owned_run(request)
    key = request.path_params["family"]
    try:
        mode = family_mode(key)
    except InvalidKey:
        raise HTTPException(404, "No such family.") from None
    found = read_output(request.app.state.results, run_id, mode, FAMILY_RESULT)
    if found is None:
        raise HTTPException(404, f"{FAMILIES[key].name} has no result in this comparison yet.")
    return JSONResponse(found)


routes = [
    Route("/compare", show, name="family_board"),
    Route("/compare", start, methods=["POST"], name="compare_families"),
    Route("/compare/rerun", rerun, methods=["POST"], name="rerun_family"),
    Route("/compare/use", use, methods=["POST"], name="use_family"),
    Route("/compare/result/{family}", result, name="family_result"),
]
