"""Step 6: predict one row from a generated form, or a whole CSV; download a template."""

import secrets

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.columns import key_columns
from shared.csv_safety import header_line
from shared.errors import (
    DataError,
    FunctionRefused,
    FunctionUnavailable,
    MissionError,
    ObjectNotFound,
    StorageUnavailable,
)
from shared.examples import example_row
from shared.predict import check_csv_start
from shared.runs import BATCH, FINAL, SUCCEEDED, SUMMARY, batch_input_key, read_output, read_request
from shared.sources import load_table
from shared.spec import RunSpec
from webapp.endpoints import form_endpoint, in_pool
from webapp.failures import RETRY_AFTER_S
from webapp.htmx import is_htmx, render
from webapp.pages import STEP_JOBS, run_page
from webapp.runs import batch_output, job_context, start
from webapp.steps.features import column_advice
from webapp.uploads import UploadTooLarge, limited_request
from webapp.wizard import RunState, load_run, step_page

TOKEN_LENGTH = 24
MOSTLY_EMPTY = 0.5  # a form with more than this share of values missing asks before predicting


def _trained_spec(request: Request, state: RunState) -> dict | None:
    """The spec the model was trained with (the draft may have moved on since)."""
    if state.final is None or state.final.state != SUCCEEDED:
        return None
    return read_request(request.app.state.results, state.run_id, FINAL).spec


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


def _keys(request: Request, state: RunState, trained: dict | None) -> list[str]:
    """The run's key columns: those its model was shipped with, else those advised now."""
    if trained is not None:
        summary = read_output(request.app.state.results, state.run_id, FINAL, SUMMARY) or {}
        if "key_columns" in summary:
            return list(summary["key_columns"])
    spec = trained or state.spec
    if state.info is None or not spec.get("target"):
        return []
    keys = key_columns(
        column_advice(request, state, spec), state.builtin.key_columns if state.builtin else ()
    )
    return [k for k in keys if k not in (spec.get("features") or [])]


def _form_context(request: Request, state: RunState, spec: dict, **extra: object) -> dict:
    """What the single-row form shows: its fields, their values and the example chooser."""
    return {
        "fields": _fields(state, spec),
        "values": {},
        "keys": _keys(request, state, spec),
        "example": None,
        "example_problem": "",
        **extra,
    }


@run_page(*STEP_JOBS, BATCH)
def predict_step(request: Request) -> Response:
    state = load_run(request)
    spec = _trained_spec(request, state)
    context = {
        "trained": spec is not None,
        **(_form_context(request, state, spec) if spec else {}),
        "max_upload_mb": request.app.state.settings.max_upload_mb,
        "batch_job": job_context(request, state.run_id, BATCH),
    }
    return step_page(request, state, "predict", context)


def example(request: Request) -> Response:  # not kept: a random row differs every time
    """The form filled from a row of the training table: the one with this key, or a random one."""
    state = load_run(request)
    spec = _trained_spec(request, state)
    if spec is None:
        raise HTTPException(409, "Train this run on all data first.")
    keys = _keys(request, state, spec)
    wanted = request.query_params.get("key", "")[:200]
    try:
        frame = load_table(request.app.state.storage, spec["dataset"])
        found = example_row(frame, spec["features"], spec["target"], keys, wanted)
    except DataError as error:
        context = _form_context(request, state, spec, example_problem=str(error), wanted=wanted)
        return _form(request, state, context, 400)
    context = _form_context(request, state, spec, values=found.values, example=found, wanted=wanted)
    return _form(request, state, context)


def _form(request: Request, state: RunState, context: dict, status_code: int = 200) -> Response:
    if not is_htmx(request):  # a plain GET: the whole step, with the form filled in
        context = {
            **context,
            "trained": True,
            "max_upload_mb": request.app.state.settings.max_upload_mb,
            "batch_job": job_context(request, state.run_id, BATCH),
        }
        return step_page(request, state, "predict", context, status_code=status_code)
    return render(
        request, "step_predict.html", "_predict_form.html", {"run": state, **context}, status_code=status_code
    )


@form_endpoint
def predict_row(request: Request, form: FormData) -> Response:
    state = load_run(request)
    spec = _trained_spec(request, state)
    if spec is None:
        raise HTTPException(409, "Train this run on all data first.")
    row = {name: str(form.get(name, "")).strip() or None for name in spec["features"]}

    def answer(context: dict, status_code: int = 200) -> Response:
        if is_htmx(request):
            return render(request, "step_predict.html", "_prediction.html", context, status_code=status_code)
        # the form without JavaScript: the whole step, with the values as they were sent
        typed = {k: v for k, v in row.items() if v is not None}
        page = {
            "trained": True,
            **_form_context(request, state, spec, values=typed),
            "max_upload_mb": request.app.state.settings.max_upload_mb,
            "batch_job": job_context(request, state.run_id, BATCH),
            **context,
        }
        return step_page(request, state, "predict", page, status_code=status_code)

    missing = [name for name, value in row.items() if value is None]
    if len(missing) > len(row) * MOSTLY_EMPTY and form.get("confirm_missing") != "1":
        return answer({"missing": missing, "total": len(row)})
    try:
        result = request.app.state.dispatcher.predict_rows(state.run_id, [row], explain=True)[0]
    except StorageUnavailable:
        raise  # answered 503 by webapp.failures, not as a problem with the input
    except FunctionUnavailable as error:
        response = answer({"error": str(error)}, 503)
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
    except MissionError as error:  # the predict function's own 4xx keeps its status
        return answer({"error": str(error)}, error.status if isinstance(error, FunctionRefused) else 400)
    probabilities = sorted(
        ((k.removeprefix("probability_"), v) for k, v in result.items() if k.startswith("probability_")),
        key=lambda kv: -kv[1],
    )
    return answer(
        {
            "prediction": result["prediction"],
            "probabilities": probabilities,
            "explanation": _shown_explanation(result.get("explanation")),
        }
    )


def _shown_explanation(explanation: dict | None) -> dict | None:
    """Bars scaled to the largest contribution, signed towards or away from the predicted class."""
    if not explanation or "contributions" not in explanation:
        return explanation
    rows = explanation["contributions"]
    largest = max((abs(r["contribution"]) for r in rows), default=0.0) or 1.0
    shown = [{**r, "width": round(100 * abs(r["contribution"]) / largest, 1)} for r in rows]
    return {**explanation, "contributions": shown}


async def predict_batch(request: Request) -> Response:
    """Store the uploaded CSV (streamed in, size-limited) and request a batch prediction job for
    it; answer at once with the job's self-replacing status. No request waits for the job."""
    settings = request.app.state.settings
    try:
        limited = limited_request(request, settings.max_upload_bytes, settings.max_upload_mb)
        async with limited.form(max_files=1) as form:
            return await in_pool(request, _store_and_request, request, form)
    except UploadTooLarge as error:
        return await in_pool(request, _batch_problem, request, str(error), 413)


def _store_and_request(request: Request, form: FormData) -> Response:
    state = load_run(request)
    trained = _trained_spec(request, state)
    if trained is None:
        raise HTTPException(409, "Train this run on all data first.")
    file = form.get("file")
    if file is None or not hasattr(file, "read") or not file.filename:
        return _batch_problem(request, "Choose a CSV file to predict.", 400)
    try:  # what the first lines can tell is said at once; a bad row later fails the job
        check_csv_start(file.file, trained["features"])
    except DataError as error:
        return _batch_problem(request, str(error), 400)
    token = secrets.token_hex(TOKEN_LENGTH // 2)
    request.app.state.storage.upload_file(
        batch_input_key(state.run_id, token), file.file, content_type="text/csv"
    )
    response = start(
        request, state.run_id, BATCH, restart=True, options={"token": token}, spec=RunSpec.from_dict(trained)
    )
    if response.status_code >= 400:  # no job will read it: not kept
        request.app.state.storage.delete(batch_input_key(state.run_id, token))
    return response


def _batch_problem(request: Request, message: str, status_code: int) -> Response:
    state = load_run(request)
    context = {"job": job_context(request, state.run_id, BATCH, message)}
    return render(request, "job.html", "_job_status.html", context, status_code=status_code)


def predictions(request: Request) -> Response:
    """The predictions CSV of the run's last batch job (its token keeps an old link from
    silently serving a newer file)."""
    state = load_run(request)
    token = request.path_params["token"]
    output = batch_output(request, state.run_id)
    if output is None or output["token"] != token:
        raise HTTPException(404, "No such predictions file.")
    try:
        data = request.app.state.storage.read_bytes(output["output"])
    except ObjectNotFound:
        raise HTTPException(404, "No such predictions file.") from None
    headers = {"Content-Disposition": f'attachment; filename="predictions-{token[:8]}.csv"'}
    return Response(data, media_type="text/csv", headers=headers)


def template(request: Request) -> Response:
    """A CSV header: the key columns (carried into the predictions, to join them back), then the
    features."""
    state = load_run(request)
    trained = _trained_spec(request, state)
    spec = trained or state.spec
    names = [*_keys(request, state, trained), *(spec.get("features") or [])]
    header = header_line(names)
    headers = {"Content-Disposition": 'attachment; filename="template.csv"'}
    return Response(header, media_type="text/csv", headers=headers)


routes = [
    Route("/predict", predict_step, name="step_predict"),
    Route("/predict/row", predict_row, methods=["POST"], name="predict_row"),
    Route("/predict/batch", predict_batch, methods=["POST"], name="predict_batch"),
    Route("/predict/template.csv", template, name="template"),
    Route("/predict/example", example, name="predict_example"),
    Route("/predict/predictions/{token}.csv", predictions, name="predictions"),
]
