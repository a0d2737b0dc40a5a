"""This browser's runs, and two or more of them side by side."""

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.errors import InvalidKey, ObjectNotFound
from shared.params import model_name
from shared.runs import (
    EVALUATE,
    FINAL,
    METRICS,
    DamagedRun,
    check_run_id,
    load_spec,
    made_with_draft,
    read_output,
    read_status,
    workspace_runs,
)
from shared.storage import Storage
from webapp.htmx import is_htmx, render
from webapp.pages import kept, run_version
from webapp.plots import SIZE, TICKS, curve_plots
from webapp.workspace import run_meta, workspace_of


def _summary(request: Request, run_id: str) -> dict:
    results = request.app.state.results
    meta, spec = run_meta(results, run_id), load_spec(results, run_id)
    evaluate, _ = read_status(results, run_id, EVALUATE)
    final, _ = read_status(results, run_id, FINAL)
    metrics = None
    if evaluate is not None and evaluate.state == "succeeded":
        metrics = read_output(results, run_id, EVALUATE, METRICS)
    evaluated = metrics.get("spec") if metrics else None
    return {
        "run_id": run_id,
        "meta": meta,
        "spec": spec,
        "evaluate": evaluate,
        "final": final,
        "metrics": metrics,
        # the scores shown belong to the model that was evaluated, whatever the run holds now
        "model": model_name(evaluated or spec),
        "changed_to": _change(evaluated, spec),
        "kept": (metrics or {}).get("kept_inputs"),
    }


def _change(evaluated: dict | None, draft: dict) -> str:
    """How the run's model differs from the one its scores belong to ("" if it does not)."""
    if evaluated is None or made_with_draft(evaluated, draft):
        return ""
    now = model_name(draft)
    return f"now {now}" if now != model_name(evaluated) else "settings changed since"


def _readable(results: Storage, run_ids: list[str]) -> tuple[list[str], list[str]]:
    """The runs whose record reads, and those whose record is damaged (listed, not shown)."""
    readable, damaged = [], []
    for run_id in run_ids:
        try:
            run_meta(results, run_id)
            readable.append(run_id)
        except DamagedRun:
            damaged.append(run_id)
    return readable, damaged


def history(request: Request) -> Response:
    workspace = workspace_of(request)
    results = request.app.state.results
    run_ids, damaged = _readable(results, workspace_runs(results, workspace))

    def page() -> Response:
        runs = [_summary(request, r) for r in run_ids]
        return render(request, "history.html", "_history.html", {"runs": runs, "damaged": damaged})

    versions = [(r, run_version(request, r, run_meta(results, r).dataset)) for r in run_ids]
    if any(version is None for _, version in versions):
        return page()
    return kept(("history", workspace, is_htmx(request), tuple(versions)), page)


def compare(request: Request) -> Response:
    workspace = workspace_of(request)
    chosen = request.query_params.getlist("run")
    if len(chosen) < 2:
        raise HTTPException(400, "Pick at least two runs to compare.")
    runs = []
    for run_id in chosen[:6]:
        try:
            summary = _summary(request, check_run_id(run_id))
        except (InvalidKey, ObjectNotFound):
            raise HTTPException(404, "No such run.") from None
        if summary["meta"].workspace != workspace:
            raise HTTPException(404, "No such run.")
        summary["plots"] = curve_plots(summary["metrics"]) if summary["metrics"] else None
        summary["legend"] = f"{summary['model']} · {run_id[:9]}"
        runs.append(summary)
    names = sorted({name for r in runs if r["metrics"] for name in r["metrics"]["metrics"]})
    context = {"runs": runs, "metric_names": names, "ticks": TICKS, "size": SIZE}
    return render(request, "compare.html", "_compare.html", context)


routes = [
    Route("/", history, name="history"),
    Route("/compare", compare, name="compare"),
]
