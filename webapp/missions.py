"""Across missions: train on one survey (or several), test and score on another. A page to set
it up (with the missions' common vocabulary), a run with one job, and its report."""

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from shared.catalog import BUILTINS
from shared.errors import DataError
from shared.job_options import FOLDS
from shared.missions import POSITIVE, SETUP, mission_names, quantities
from shared.params import DEFAULT_FAMILY, FAMILIES
from shared.runs import BUNDLE, CANDIDATES, TRANSFER, create_run, request_job
from shared.sources import ensure_builtin
from shared.spec import RunSpec
from shared.vocabulary import QUANTITIES
from webapp.endpoints import form_endpoint
from webapp.htmx import is_htmx, render
from webapp.plots import SIZE, TICKS
from webapp.runs import download, job_context
from webapp.wizard import ACROSS_MISSIONS
from webapp.workspace import owned_run, workspace_of

LATER = (TRANSFER, "wait for the run across missions to finish")


def _vocabulary() -> list[dict]:
    return [
        {"quantity": q, "columns": {m: b.physical.get(q.key) for m, b in BUILTINS.items()}}
        for q in QUANTITIES.values()
    ]


def _setup_context(request: Request, problem: str = "", chosen: dict | None = None) -> dict:
    return {
        "missions": BUILTINS,
        "vocabulary": _vocabulary(),
        "families": FAMILIES,
        "chosen": chosen or {"train": ["kepler"], "test": "tess", "family": DEFAULT_FAMILY, "folds": 5},
        "folds": FOLDS,
        "problem": problem,
    }


def setup(request: Request) -> Response:
    return render(request, "missions.html", "_missions.html", _setup_context(request))


@form_endpoint
def start(request: Request, form: FormData) -> Response:
    """Make the run (its spec in the common vocabulary) and request its one job."""
    chosen = {
        "train": form.getlist("train"),
        "test": str(form.get("test", "")),
        "family": str(form.get("family", DEFAULT_FAMILY)),
        "folds": str(form.get("folds", FOLDS.default)),
    }
    try:
        train, test = mission_names(chosen["train"], chosen["test"])
        features, _ = quantities(train, test)
        if chosen["family"] not in FAMILIES:
            raise DataError(f"family: {chosen['family']!r} is not a model family")
        if not chosen["folds"].isdigit() or not FOLDS.allows(int(chosen["folds"])):
            raise DataError(f"folds: {chosen['folds']!r} must be a whole number from {FOLDS.range_text}")
        for mission in (*train, test):
            ensure_builtin(BUILTINS[mission], request.app.state.settings, request.app.state.storage)
    except DataError as error:
        context = _setup_context(request, str(error), chosen)
        return render(request, "missions.html", "_missions.html", context, status_code=400)
    spec = {
        "dataset": train[0], "target": "label", "features": features, "group_column": "group",
        "positive_class": POSITIVE, "label_setup": ACROSS_MISSIONS,
        "model": {"family": chosen["family"], "params": {}},
        "evaluation": {"method": "kfold", "folds": int(chosen["folds"])},
    }  # fmt: skip
    name = f"Across missions: {' + '.join(BUILTINS[m].name for m in train)} → {BUILTINS[test].name}"
    results = request.app.state.results
    run_id = create_run(results, workspace_of(request), train[0], name, spec)
    job = request_job(
        results, run_id, TRANSFER, RunSpec.from_dict(spec), options={"train": train, "test": test}
    )
    request.app.state.dispatcher.start(job)
    url = request.url_for("transfer_report", run_id=run_id).path
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _curve(points: dict, size: int = SIZE) -> str:
    return " ".join(
        f"{x * size:.1f},{(1 - y) * size:.1f}" for x, y in zip(points["x"], points["y"], strict=True)
    )


def report(request: Request) -> Response:
    """The run's job status while it runs (one fragment that replaces itself), then its report."""
    run_id, meta = owned_run(request)
    job = job_context(request, run_id, TRANSFER)
    result = job.get("report")
    context = {
        "run_id": run_id,
        "title": meta.dataset_name,
        "job": {**job, "polling": False},  # the whole panel polls, not the status inside it
        "polling": job["polling"],
        "report": result,
        "missions": BUILTINS,
        "quantities": QUANTITIES,
        "ticks": TICKS,
        "size": SIZE,
        "setup": SETUP,
    }
    if result:
        context["train_name"] = " + ".join(BUILTINS[m].name for m in result["train"])
        context["test_name"] = BUILTINS[result["test"]].name
        context["plots"] = {
            which: {
                "roc": _curve(result["curves"][which]["roc"]),
                "reliability": _curve(result["curves"][which]["reliability"]),
            }
            for which in ("transfer", "own_test")
        }
    return render(request, "transfer.html", "_transfer.html", context)


routes = [
    Route("/", setup, name="missions"),
    Route("/", start, methods=["POST"], name="start_transfer"),
]
run_routes = [
    Route("/transfer", report, name="transfer_report"),
    Route("/transfer/candidates.csv", download(CANDIDATES, "text/csv", *LATER), name="transfer_candidates"),
    Route("/transfer/bundle.zip", download(BUNDLE, "application/zip", *LATER), name="transfer_bundle"),
]
