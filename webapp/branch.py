"""New run from this one: the same dataset, target, label setup, features and evaluation plan
(and, if asked, the model), as a fresh run to try something else without redoing every step."""

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.runs import create_run, load_spec
from webapp.endpoints import form_endpoint
from webapp.wizard import go_to_step
from webapp.workspace import owned_run

DATA_FIELDS = (
    "dataset", "target", "features", "label_setup", "label_mapping", "positive_class",
    "score_classes", "class_roles", "group_column", "evaluation",
)  # fmt: skip
MODEL_FIELDS = ("model", "calibration", "feature_selection")  # the threshold is never copied


def branched_spec(spec: dict, keep_model: bool) -> dict:
    fields = DATA_FIELDS + (MODEL_FIELDS if keep_model else ())
    return {name: spec[name] for name in fields if name in spec}


@form_endpoint
def branch(request: Request, form: FormData) -> Response:
    """Make the new run, then go to its model step (a whole page: the button may sit outside the
    wizard, on the history page)."""
    run_id, meta = owned_run(request)
    results = request.app.state.results
    spec = branched_spec(load_spec(results, run_id), form.get("keep_model") == "on")
    new_id = create_run(results, meta.workspace, meta.dataset, meta.dataset_name, spec)
    return go_to_step(request, new_id, "model", whole_page=True)


routes = [Route("/branch", branch, methods=["POST"], name="branch_run")]
