"""Step 6: predict one row from a generated form, or a whole CSV; download a template."""

import json
import secrets

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.errors import DataError, MissionError, ObjectNotFound, StorageUnavailable
from shared.runs import FINAL, SUCCEEDED, job_key
from webapp.htmx import render
from webapp.templating import path_for
from webapp.uploads import UploadTooLarge, limited_request
from webapp.wizard import RunState, load_run, step_page

TOKEN_LENGTH = 24


def _trained_spec(request: Request, state: RunState) -> dict | None:
    """The spec the model was trained with (the draft may have moved on since)."""
    if state.final is None or state.final.state != SUCCEEDED:
        return None
    return json.loads(request.app.state.results.read_bytes(job_key(state.run_id, FINAL, "request.json")))[
        "spec"
    ]


def _fields(state: RunState, spec: dict) -> list[dict]:
    profiles = {p.name: p for p in state.info.profiles()}
    fields = []
    for name in spec["features"]:
        p = profiles[name]
        numeric = p.kind == "numeric" or (
            p.minimum is not None and p.kind in ("constant", "identifier", "empty")
        )
        fields.append(
            {
                "name": name,
                "numeric": numeric,
                "minimum": p.minimum,
                "maximum": p.maximum,
                "choices": [value for value, _ in p.top_values] if not numeric else [],
            }
        )
    return fields


async def predict_step(request: Request) -> Response:
    state = load_run(request)
    spec = _trained_spec(request, state)
    context = {
        "trained": spec is not None,
        "fields": _fields(state, spec) if spec else [],
        "max_upload_mb": request.app.state.settings.max_upload_mb,
    }
    return step_page(request, state, "predict", context)


async def predict_row(request: Request) -> Response:
    state = load_run(request)
    spec = _trained_spec(request, state)
    if spec is None:
        raise HTTPException(409, "Train this run on all data first.")
    form = await request.form()
    row = {name: str(form.get(name, "")).strip() or None for name in spec["features"]}
    try:
        result = request.app.state.dispatcher.predict_rows(state.run_id, [row], explain=True)[0]
    except StorageUnavailable:
        raise  # answered 503 by webapp.failures, not as a problem with the input
    except MissionError as error:
        return render(
            request, "step_predict.html", "_prediction.html", {"error": str(error)}, status_code=400
        )
    probabilities = sorted(
        ((k.removeprefix("probability_"), v) for k, v in result.items() if k.startswith("probability_")),
        key=lambda kv: -kv[1],
    )
    context = {
        "prediction": result["prediction"],
        "probabilities": probabilities,
        "explanation": _shown_explanation(result.get("explanation")),
    }
    return render(request, "step_predict.html", "_prediction.html", context)


def _shown_explanation(explanation: dict | None) -> dict | None:
    """Bars scaled to the largest contribution, signed towards or away from the predicted class."""
    if not explanation or "contributions" not in explanation:
        return explanation
    rows = explanation["contributions"]
    largest = max((abs(r["contribution"]) for r in rows), default=0.0) or 1.0
    shown = [{**r, "width": round(100 * abs(r["contribution"]) / largest, 1)} for r in rows]
    return {**explanation, "contributions": shown}


async def predict_batch(request: Request) -> Response:
    """Store the uploaded CSV, predict it where the model lives, offer the output."""
    state = load_run(request)
    if _trained_spec(request, state) is None:
        raise HTTPException(409, "Train this run on all data first.")
    settings = request.app.state.settings
    form = None
    try:
        form = await limited_request(request, settings.max_upload_bytes, settings.max_upload_mb).form(
            max_files=1
        )
        file = form.get("file")
        if file is None or not hasattr(file, "read") or not file.filename:
            raise DataError("Choose a CSV file to predict.")
        token = secrets.token_hex(TOKEN_LENGTH // 2)
        key = f"uploads/{state.run_id}/{token}.csv"
        request.app.state.storage.upload_file(key, file.file, content_type="text/csv")
        request.app.state.dispatcher.predict_stored(state.run_id, key)
    except UploadTooLarge as error:
        return render(
            request, "step_predict.html", "_batch_result.html", {"error": str(error)}, status_code=413
        )
    except StorageUnavailable:
        raise  # answered 503 by webapp.failures, not as a problem with the input
    except MissionError as error:
        return render(
            request, "step_predict.html", "_batch_result.html", {"error": str(error)}, status_code=400
        )
    finally:
        if form is not None:
            await form.close()
    url = path_for(request, "predictions", run_id=state.run_id, token=token)
    return render(request, "step_predict.html", "_batch_result.html", {"download": url})


async def predictions(request: Request) -> Response:
    state = load_run(request)
    token = request.path_params["token"]
    if len(token) != TOKEN_LENGTH or not all(c in "0123456789abcdef" for c in token):
        raise HTTPException(404, "No such predictions file.")
    try:
        data = request.app.state.storage.read_bytes(f"uploads/{state.run_id}/{token}.predictions.csv")
    except ObjectNotFound:
        raise HTTPException(404, "No such predictions file.") from None
    headers = {"Content-Disposition": f'attachment; filename="predictions-{token[:8]}.csv"'}
    return Response(data, media_type="text/csv", headers=headers)


async def template(request: Request) -> Response:
    state = load_run(request)
    spec = _trained_spec(request, state) or state.spec
    header = ",".join(f'"{f}"' if "," in f else f for f in spec.get("features") or [])
    headers = {"Content-Disposition": 'attachment; filename="template.csv"'}
    return Response(header + "\n", media_type="text/csv", headers=headers)


routes = [
    Route("/predict", predict_step, name="step_predict"),
    Route("/predict/row", predict_row, methods=["POST"], name="predict_row"),
    Route("/predict/batch", predict_batch, methods=["POST"], name="predict_batch"),
    Route("/predict/template.csv", template, name="template"),
    Route("/predict/predictions/{token}.csv", predictions, name="predictions"),
]
