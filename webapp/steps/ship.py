"""Step 5: train on all data with the same live status, then the summary and the bundle."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.runs import EVALUATE, FINAL, same_model
from webapp.pages import STEP_JOBS, run_page
from webapp.runs import job_context
from webapp.wizard import load_run, step_page


@run_page(*STEP_JOBS)
def ship_step(request: Request) -> Response:
    state = load_run(request)
    stale_evaluation = False
    if state.evaluate is not None and state.evaluate.finished:
        metrics = job_context(request, state.run_id, EVALUATE)["metrics"]
        valid = state.valid_spec()
        stale_evaluation = metrics is not None and not same_model(
            metrics.get("spec"), valid and valid.to_dict()
        )
    context = {
        "job": job_context(request, state.run_id, FINAL),
        "valid": state.valid_spec() is not None,
        "stale_evaluation": stale_evaluation,
    }
    return step_page(request, state, "ship", context)


routes = [Route("/ship", ship_step, name="step_ship")]
