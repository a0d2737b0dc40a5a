"""What every wizard step shares: the run's state, the step list, and how a step answers."""

import json
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from shared.catalog import BUILTINS, Builtin
from shared.errors import SpecError
from shared.runs import EVALUATE, FINAL, RunMeta, Status, load_meta, load_spec, read_status
from shared.sources import DatasetInfo, cached_info
from shared.spec import RunSpec
from webapp.htmx import is_htmx, render
from webapp.templating import path_for
from webapp.workspace import owned_run

STEPS = (
    ("dataset", "Dataset"),
    ("features", "Target & features"),
    ("model", "Model"),
    ("evaluate", "Evaluate"),
    ("ship", "Train & ship"),
    ("predict", "Predict"),
)


ACROSS_MISSIONS = "across_missions"  # the label setup of a run across missions (webapp.missions)


@dataclass
class RunState:
    run_id: str
    meta: RunMeta
    spec: dict[str, Any]
    info: DatasetInfo | None
    builtin: Builtin | None
    evaluate: Status | None
    final: Status | None

    def valid_spec(self) -> RunSpec | None:
        try:
            return RunSpec.from_dict(self.spec)
        except SpecError:
            return None


def load_run(request: Request, run_id: str | None = None) -> RunState:
    """The run named in the URL (owned by this browser), or ``run_id`` this request just made."""
    if run_id is None:
        run_id, meta = owned_run(request)
    else:
        meta = load_meta(request.app.state.results, run_id)
    results = request.app.state.results
    spec = load_spec(results, run_id)
    if spec.get("label_setup") == ACROSS_MISSIONS:  # no wizard steps: its one page is the report
        where = path_for(request, "transfer_report", run_id=run_id)
        raise HTTPException(303, f"This run across missions has one page: {where}", {"Location": where})
    return RunState(
        run_id=run_id,
        meta=meta,
        spec=spec,
        info=cached_info(request.app.state.storage, meta.dataset),
        builtin=BUILTINS.get(meta.dataset),
        evaluate=read_status(results, run_id, EVALUATE)[0],
        final=read_status(results, run_id, FINAL)[0],
    )


def steps(request: Request, state: RunState, current: str) -> list[dict[str, Any]]:
    done = {
        "dataset": state.info is not None,
        "features": bool(state.spec.get("target")) and bool(state.spec.get("features")),
        "model": bool(state.spec.get("model")),
        "evaluate": state.evaluate is not None and state.evaluate.state == "succeeded",
        "ship": state.final is not None and state.final.state == "succeeded",
        "predict": False,
    }
    return [
        {
            "key": key,
            "title": title,
            "number": n,
            "current": key == current,
            "done": done[key],
            "url": path_for(request, f"step_{key}", run_id=state.run_id),
        }
        for n, (key, title) in enumerate(STEPS, start=1)
    ]


def step_page(
    request: Request, state: RunState, step: str, context: dict[str, Any], *, status_code: int = 200
) -> Response:
    """A step as a full page, or (htmx) as the wizard fragment that replaces #wizard."""
    full = {"run": state, "step": step, "steps": steps(request, state, step), **context}
    return render(request, f"step_{step}.html", f"_step_{step}.html", full, status_code=status_code)


def go_to_step(request: Request, run_id: str, step: str, *, whole_page: bool = False) -> Response:
    """After a form posts: htmx follows to the step (pushing its URL); a plain form redirects.

    ``whole_page``: the form may sit on a page without the wizard (a dataset card on the
    datasets page), so htmx loads the step as a whole page instead of swapping #wizard.
    """
    url = path_for(request, f"step_{step}", run_id=run_id)
    if is_htmx(request) and whole_page:
        return Response(status_code=204, headers={"HX-Redirect": url})
    if is_htmx(request):
        location = json.dumps({"path": url, "target": "#wizard", "swap": "outerHTML"})
        return Response(status_code=204, headers={"HX-Location": location})
    return RedirectResponse(url, status_code=303)
