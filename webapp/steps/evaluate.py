"""Step 4: holdout or k folds, grouped by the dataset's group column by default; "Evaluate"
starts the run's evaluate job and shows its self-replacing status, then the metrics."""

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.errors import SpecError
from shared.grouping import GroupSuggestion
from shared.job_options import FOLDS, SEED, TEST_SIZE
from shared.params import PLAIN_NUMBER
from shared.profile import EMPTY
from shared.runs import EVALUATE, update_spec
from shared.sources import cached_group_suggestion
from shared.spec import EvaluationPlan, RunSpec
from webapp.endpoints import form_endpoint
from webapp.pages import STEP_JOBS, run_page
from webapp.runs import job_context, start
from webapp.wizard import RunState, load_run, step_page


def _context(request: Request, state: RunState, problem: str = "") -> dict:
    plan = {**EvaluationPlan().__dict__, **(state.spec.get("evaluation") or {})}
    columns = [p.name for p in state.info.profiles()] if state.info else []
    try:
        RunSpec.from_dict(state.spec)
        incomplete = ""
    except SpecError as error:
        incomplete = str(error)
    return {
        "plan": plan,
        "columns": columns,
        "group_suggestion": _group_suggestion(request, state),
        "group_column": state.spec.get("group_column"),
        "incomplete": incomplete,
        "problem": problem,
        "job": job_context(request, state.run_id, EVALUATE),
    }


def _group_suggestion(request: Request, state: RunState) -> GroupSuggestion | None:
    """Why the default grouping is what it is, for a table that is not a built-in's own."""
    target = state.spec.get("target")
    if not target or state.info is None or (state.builtin and target == state.builtin.target):
        return None
    return cached_group_suggestion(request.app.state.storage, state.info, target)


@run_page(*STEP_JOBS)
def evaluate_step(request: Request) -> Response:
    state = load_run(request)
    return step_page(request, state, "evaluate", _context(request, state))


def _number(value: object, cast: type) -> object:
    text = str(value).strip()
    if not PLAIN_NUMBER.fullmatch(text):  # int() would also take non-ASCII digits or "1_0"
        return value  # the spec parser names it
    try:
        return cast(text)
    except ValueError:
        return value


def _check_columns(state: RunState, spec: RunSpec) -> None:
    """The columns the plan names exist, and the features hold some values: caught here with a
    message, not later as a failed job."""
    if state.info is None:
        raise SpecError("dataset: this run's dataset is not available; upload or load it again")
    profiles = {p.name: p for p in state.info.profiles()}
    named = [("target", spec.target), *(("features", f) for f in spec.features)]
    if spec.group_column is not None:
        named.append(("group_column", spec.group_column))
    problems = [
        f"{where}: {name!r} is not a column of this dataset" for where, name in named if name not in profiles
    ]
    if not problems and all(profiles[f].kind == EMPTY for f in spec.features):
        problems.append(
            f"features: every chosen feature is entirely empty ({', '.join(map(repr, spec.features))}); "
            "choose at least one feature that holds values"
        )
    if problems:
        raise SpecError(problems)


@form_endpoint
def start_evaluation(request: Request, form: FormData) -> Response:
    """Save the evaluation plan, then (re)start the evaluate job."""
    state = load_run(request)
    method = str(form.get("method", "kfold"))
    plan = {
        "method": method,
        "folds": _number(form.get("folds", FOLDS.default), int),
        "test_size": _number(form.get("test_size", TEST_SIZE.default), float),
        "stratified": form.get("stratified") == "on",
        "importance": form.get("importance") == "on",
        "seed": _number(form.get("seed", SEED.default), int),
    }
    group = str(form.get("group_column", "")) or None

    def change(spec: dict) -> dict:
        return {**spec, "evaluation": plan, "group_column": group}

    try:
        spec = RunSpec.from_dict(change(state.spec))
        _check_columns(state, spec)
    except SpecError as error:
        return step_page(request, state, "evaluate", _context(request, state, str(error)), status_code=400)
    update_spec(request.app.state.results, state.run_id, change)
    return start(request, state.run_id, EVALUATE, restart=True)


routes = [
    Route("/evaluate", evaluate_step, name="step_evaluate"),
    Route("/evaluate", start_evaluation, methods=["POST"], name="start_evaluation"),
]
