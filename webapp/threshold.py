"""The binary decision threshold, moved interactively over the out-of-fold probabilities."""

import io
from typing import Any

import numpy as np
import pandas as pd
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.cache import MEMO
from shared.errors import ObjectNotFound
from shared.params import PLAIN_NUMBER
from shared.runs import (
    EVALUATE,
    METRICS,
    OOF,
    SUCCEEDED,
    job_key,
    load_spec,
    read_output,
    read_status,
    update_spec,
)
from shared.thresholds import at_threshold, best_f1, for_precision, for_recall
from webapp.endpoints import form_endpoint
from webapp.htmx import is_htmx, render
from webapp.pages import run_page
from webapp.wizard import go_to_step
from webapp.workspace import owned_run


def _oof(request: Request, run_id: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The finished evaluation's out-of-fold truth and scores for the positive class, and its
    metrics: read once per evaluation attempt (they never change under it)."""
    results = request.app.state.results
    status, _ = read_status(results, run_id, EVALUATE)
    if status is None or status.state != SUCCEEDED:
        raise HTTPException(
            409, "Evaluate the run first: thresholds are tuned on its out-of-fold predictions."
        )

    def load() -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        metrics = read_output(results, run_id, EVALUATE, METRICS) or {}
        positive = metrics.get("positive_class")
        if positive is None:
            raise HTTPException(400, "Thresholds apply to two-class problems only.")
        oof = pd.read_parquet(io.BytesIO(results.read_bytes(job_key(run_id, EVALUATE, OOF))))
        return (oof["true"] == positive).to_numpy(), oof[f"proba_{positive}"].to_numpy(), metrics

    try:
        return MEMO.get(("oof", results.url, run_id, status.attempt), load)
    except ObjectNotFound:
        raise HTTPException(409, "This run's evaluation has no out-of-fold predictions.") from None


def view(request: Request, run_id: str, threshold: float | None = None, note: str = "") -> dict[str, Any]:
    truth, scores, metrics = _oof(request, run_id)
    saved = load_spec(request.app.state.results, run_id).get("threshold")
    chosen = threshold if threshold is not None else (saved if saved is not None else 0.5)
    classes = metrics["classes"]
    positive = metrics["positive_class"]
    return {
        "run_id": run_id,
        "at": at_threshold(truth, scores, chosen),
        "saved": saved,
        "note": note,
        "positive": positive,
        "negative": next(c for c in classes if c != positive),
        "saved_at": None if saved is None else at_threshold(truth, scores, saved).to_dict(),
        "sync_slider": False,
    }


def _fraction(text: object, default: float) -> float:
    try:
        # float() would also take "nan" and non-ASCII digits
        if str(text) and not PLAIN_NUMBER.fullmatch(str(text).strip()):
            raise ValueError(text)
        value = float(str(text)) if str(text) else default
    except ValueError:
        raise HTTPException(400, f"{text!r} is not a number between 0 and 1.") from None
    if not 0 <= value <= 1:
        raise HTTPException(400, f"{value} is not between 0 and 1.")
    return value if str(text) else default


@run_page(EVALUATE)
def move(request: Request) -> Response:
    """GET: the confusion matrix and scores at a threshold, or at a preset's threshold."""
    run_id, _ = owned_run(request)
    if not is_htmx(request):  # a shared link or a reload: the evaluate step shows the threshold
        return go_to_step(request, run_id, "evaluate")
    params = request.query_params
    truth, scores, _ = _oof(request, run_id)
    preset, note = params.get("preset"), ""
    if preset == "f1":
        threshold, note = best_f1(truth, scores), "the threshold with the best F1"
    elif preset in ("recall", "precision"):
        goal = _fraction(params.get("goal", "0.9"), 0.9)
        finder = for_recall if preset == "recall" else for_precision
        threshold = finder(truth, scores, goal)
        other = "precision" if preset == "recall" else "recall"
        note = f"{preset} ≥ {goal:g} at the best {other}"
        if threshold is None:
            threshold, note = (
                _fraction(params.get("threshold", "0.5"), 0.5),
                f"no threshold reaches {preset} ≥ {goal:g}",
            )
    else:
        threshold = _fraction(params.get("threshold", "0.5"), 0.5)
    context = view(request, run_id, threshold, note)
    context["sync_slider"] = preset is not None  # the slider shows where a preset moved it
    return render(request, "job.html", "_threshold.html", context)


@form_endpoint
def save(request: Request, form: FormData) -> Response:
    """POST: keep this threshold for the run; final training and predictions use it."""
    run_id, _ = owned_run(request)
    threshold = _fraction(form.get("threshold", ""), 0.5)
    if not 0 < threshold < 1:
        raise HTTPException(400, "A threshold must lie strictly between 0 and 1.")
    _oof(request, run_id)  # only a binary, evaluated run can keep one
    update_spec(request.app.state.results, run_id, lambda spec: {**spec, "threshold": threshold})
    if not is_htmx(request):  # the form without JavaScript: back to the step, which shows it saved
        return go_to_step(request, run_id, "evaluate")
    return render(
        request,
        "job.html",
        "_threshold.html",
        view(request, run_id, threshold, "saved: final training and predictions will use it"),
    )


routes = [
    Route("/threshold", move, name="threshold"),
    Route("/threshold", save, methods=["POST"], name="save_threshold"),
]
