"""Step 3: the model family and its hyperparameters, rendered from the schema and checked
inline as the researcher types; optional L1/L2 feature selection."""

import re
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.errors import SpecError
from shared.job_options import SEARCH_CANDIDATES, SEARCH_MINUTES, SEARCH_OPTIONS
from shared.params import (
    BOOL,
    DEFAULT_FAMILY,
    FAMILIES,
    SELECTION_METHODS,
    SELECTION_STRENGTH,
    family,
    parse_value,
    quoted,
    to_json_value,
    validate_params,
)
from shared.runs import FAMILY_MODES, LEADERBOARD, SEARCH, read_output, update_spec
from shared.spec import CALIBRATION_METHODS
from webapp.endpoints import form_endpoint
from webapp.htmx import render
from webapp.pages import STEP_JOBS, run_page
from webapp.runs import job_context, start
from webapp.steps.compare import board
from webapp.wizard import RunState, go_to_step, load_run, step_page


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _form_context(
    state: RunState,
    family_key: str,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    model = state.spec.get("model") or {}
    saved = model.get("params", {}) if model.get("family") == family_key else {}
    fam = family(family_key)
    raw = {p.name: _shown(saved.get(p.name, p.default)) for p in fam.params} | (values or {})
    selection = state.spec.get("feature_selection") or {
        "method": "none",
        "strength": SELECTION_STRENGTH.default,
    }
    return {
        "run": state,
        "families": FAMILIES.values(),
        "family": fam,
        "values": raw,
        "errors": errors or {},
        "selection": selection,
        "selection_methods": SELECTION_METHODS,
        "strength": SELECTION_STRENGTH,
        "selection_values": (values or {}).get("_selection"),
        "calibration_methods": CALIBRATION_METHODS,
        "calibration": (values or {}).get("_calibration") or state.spec.get("calibration", "none"),
    }


@run_page(*STEP_JOBS, SEARCH, *FAMILY_MODES)
def model_step(request: Request) -> Response:
    state = load_run(request)
    request.app.state.dispatcher.warm_families()
    key = (state.spec.get("model") or {}).get("family", DEFAULT_FAMILY)
    context = {
        **_form_context(state, key),
        "search_job": job_context(request, state.run_id, SEARCH),
        "board": board(request, state.run_id),
    }
    return step_page(request, state, "model", {**context, **_search_limits(request)})


@run_page(*STEP_JOBS)
def params_form(request: Request) -> Response:
    """The parameter form for another family (the family radio swaps it in)."""
    state = load_run(request)
    key = request.query_params.get("family", DEFAULT_FAMILY)
    try:
        context = _form_context(state, key)
    except SpecError as error:
        raise HTTPException(400, str(error)) from None  # rendered escaped (webapp.failures)
    return render(request, "step_model.html", "_model_params.html", context)


@form_endpoint
def check_field(request: Request, form: FormData) -> Response:
    """Inline validation of one field as it is typed: an empty answer means it is fine."""
    name = str(form.get("field", ""))
    status_code = 200
    try:
        if name == "strength":
            param = SELECTION_STRENGTH
        else:
            fam = family(str(form.get("family", "")))
            try:
                param = fam.param(name)
            except KeyError:
                raise SpecError(f"{name}: not a parameter of {fam.name}") from None
    except SpecError as error:  # the form never sends these: a 400, still shown by the field
        message, status_code = str(error), 400
    else:
        try:
            parse_value(param, form.get(name, ""))
            message = ""
        except SpecError as error:  # a value being typed: the answer is the message
            message = str(error)
    context = {"name": name, "message": message}
    return render(request, "step_model.html", "_field_error.html", context, status_code=status_code)


@form_endpoint
def save_model(request: Request, form: FormData) -> Response:
    state = load_run(request)
    key = str(form.get("family", DEFAULT_FAMILY))
    errors: dict[str, str] = {}
    try:
        fam = family(key)
    except SpecError as error:
        raise HTTPException(400, str(error)) from None
    raw = {p.name: str(form.get(p.name, "false" if p.kind == BOOL else "")) for p in fam.params}
    try:
        params = validate_params(key, raw)
    except SpecError as error:
        params = {}
        for problem in error.problems:
            errors[problem.split(":", 1)[0]] = problem
    method = str(form.get("selection", "none"))
    strength: Any = form.get("strength", SELECTION_STRENGTH.default)
    if method not in SELECTION_METHODS:
        errors["selection"] = f"selection: {method!r} is not one of {', '.join(SELECTION_METHODS)}"
    try:
        strength = parse_value(SELECTION_STRENGTH, strength)
    except SpecError as error:
        errors["strength"] = str(error)
    calibration = str(form.get("calibration", "none"))
    if calibration not in CALIBRATION_METHODS:
        errors["calibration"] = f"calibration: {calibration!r} is not one of {', '.join(CALIBRATION_METHODS)}"
    if errors:
        context = _form_context(
            state,
            key,
            {
                **raw,
                "_selection": {"method": method, "strength": form.get("strength")},
                "_calibration": calibration,
            },
            errors,
        )
        context["search_job"] = job_context(request, state.run_id, SEARCH)
        context["board"] = board(request, state.run_id)
        context.update(_search_limits(request))
        return step_page(request, state, "model", context, status_code=400)

    def change(spec: dict) -> dict:
        return {
            **spec,
            "model": {"family": key, "params": {k: to_json_value(v) for k, v in params.items()}},
            "feature_selection": {"method": method, "strength": strength},
            "calibration": calibration,
        }

    update_spec(request.app.state.results, state.run_id, change)
    return go_to_step(request, state.run_id, "evaluate")


WHOLE_NUMBER = re.compile(r"[+-]?\d+", re.ASCII)


def _whole_number(text: object, low: int, high: int, name: str) -> int:
    try:
        if not WHOLE_NUMBER.fullmatch(str(text).strip()):  # int() would also take non-ASCII digits
            raise ValueError(text)
        value = int(str(text))
    except ValueError:
        raise HTTPException(
            400, f"{name}: {quoted(text)} is not a whole number from {low} to {high}."
        ) from None
    if not low <= value <= high:
        raise HTTPException(400, f"{name}: {quoted(value)} is not from {low} to {high}.")
    return value


def _search_limits(request: Request) -> dict:
    """The longest search this deployment can finish, and why it is not an hour."""
    settings = request.app.state.settings
    most = settings.search_minutes_max
    return {
        "search_options": SEARCH_OPTIONS,
        "search_minutes": {
            "max": most,
            "default": min(int(SEARCH_MINUTES.default), most),
            "reason": settings.search_minutes_reason,
        },
    }


@form_endpoint
def start_search(request: Request, form: FormData) -> Response:
    """Search the chosen family's ranges with successive halving, as a job of the run."""
    state = load_run(request)
    limits = _search_limits(request)["search_minutes"]
    minutes = _whole_number(
        form.get("minutes", str(limits["default"])),
        int(SEARCH_MINUTES.low),
        int(SEARCH_MINUTES.high),
        "minutes",
    )
    if minutes > limits["max"]:
        raise HTTPException(
            400,
            f"minutes: {minutes} is more than this deployment can finish: at most {limits['max']} "
            f"({limits['reason']}).",
        )
    options = {
        "candidates": _whole_number(
            form.get("candidates", str(int(SEARCH_CANDIDATES.default))),
            int(SEARCH_CANDIDATES.low),
            int(SEARCH_CANDIDATES.high),
            "candidates",
        ),
        "minutes": minutes,
    }
    return start(request, state.run_id, SEARCH, restart=True, options=options)


def use_best(request: Request) -> Response:
    """Carry the search's winner into the run's model settings."""
    state = load_run(request)
    board = read_output(request.app.state.results, state.run_id, SEARCH, LEADERBOARD)
    if board is None:
        raise HTTPException(409, "Run a search first.")
    best = board["best"]
    update_spec(
        request.app.state.results,
        state.run_id,
        lambda spec: {**spec, "model": {"family": board["family"], "params": best["params"]}},
    )
    return go_to_step(request, state.run_id, "model")


routes = [
    Route("/model/search", start_search, methods=["POST"], name="start_search"),
    Route("/model/search/use", use_best, methods=["POST"], name="use_best"),
    Route("/model", model_step, name="step_model"),
    Route("/model", save_model, methods=["POST"], name="save_model"),
    Route("/model/params", params_form, name="model_params"),
    Route("/model/check", check_field, methods=["POST"], name="check_field"),
]
