"""Step 2: the target and its label setup, then the features (live search, select visible)."""

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.cache import MEMO
from shared.catalog import LabelSetup
from shared.columns import ColumnAdvice, default_features
from shared.errors import DataError
from shared.label_roles import CUSTOM_KEY, OWN, ROLES, CustomSetup, roles_from_spec, setup_from_roles
from shared.labels import labels_as_text
from shared.profile import ColumnProfile
from shared.runs import update_spec
from shared.sources import cached_advice, cached_group_suggestion, load_table
from webapp.endpoints import form_endpoint
from webapp.htmx import is_htmx, render
from webapp.pages import STEP_JOBS, run_page
from webapp.wizard import RunState, go_to_step, load_run, step_page

MAX_TARGET_CLASSES = 50
RAW = LabelSetup("raw", "All classes", "Learn the target's classes as they are.", None)
CUSTOM = LabelSetup(
    CUSTOM_KEY,
    "Choose per class",
    "Merge classes into a positive and a negative group, keep or leave out classes, or set some "
    "aside to be ranked after training (as the built-in tables' candidate scoring does).",
    None,
)


def target_choices(state: RunState) -> list[ColumnProfile]:
    """Columns that can be a classification target: 2 to 50 distinct values."""
    return [p for p in state.info.profiles() if 2 <= p.distinct <= MAX_TARGET_CLASSES]


def setups(state: RunState, target: str | None) -> tuple[LabelSetup, ...]:
    if state.builtin is not None and target == state.builtin.target:
        return (*state.builtin.setups, CUSTOM)
    return (RAW, CUSTOM)


def target_classes(request: Request, state: RunState, target: str) -> list[tuple[str, int]]:
    """Every class of the target with its rows, commonest first (read once per table version)."""
    storage = request.app.state.storage

    def count() -> list[tuple[str, int]]:
        labels = labels_as_text(load_table(storage, state.info.id)[target])
        return [(str(c), int(n)) for c, n in labels.value_counts().items()]

    return MEMO.get(("classes", state.info.table_sha256, target), count)


def _class_roles(request: Request, state: RunState, posted: dict[str, str] | None = None) -> list[dict]:
    """The custom setup's table: each class, its rows and its role (as posted, else as saved)."""
    spec = state.spec
    if spec.get("label_setup") != CUSTOM_KEY and posted is None:
        return []
    classes = target_classes(request, state, spec["target"])
    roles = posted or roles_from_spec(
        [c for c, _ in classes],
        spec.get("label_mapping"),
        spec.get("positive_class"),
        spec.get("score_classes", []),
        spec.get("class_roles"),
    )
    return [
        {"index": i, "name": c, "count": n, "role": roles.get(c, OWN)} for i, (c, n) in enumerate(classes)
    ]


def _custom_setup(
    request: Request, state: RunState, target: str, form: FormData
) -> tuple[CustomSetup, dict[str, str]]:
    """The roles the form posts (by class position, so no class name comes back from the client);
    switching to the custom setup starts from the current one's roles."""
    classes = [c for c, _ in target_classes(request, state, target)]
    if form.get("roles_for") == target:  # roles posted for this target's classes
        roles = {c: str(form.get(f"role-{i}", OWN)) for i, c in enumerate(classes)}
    elif state.spec.get("target") == target:
        spec = state.spec
        roles = roles_from_spec(
            classes,
            spec.get("label_mapping"),
            spec.get("positive_class"),
            spec.get("score_classes", []),
            spec.get("class_roles"),
        )
    else:
        roles = dict.fromkeys(classes, OWN)
    return setup_from_roles(roles), roles


def _default_group(request: Request, state: RunState, target: str) -> str | None:
    """A built-in's host column; for any other table, the host-star-like column found in it."""
    if state.builtin is not None and target == state.builtin.target:
        return state.builtin.group_column
    suggestion = cached_group_suggestion(request.app.state.storage, state.info, target)
    return suggestion.column if suggestion else None


def column_advice(request: Request, state: RunState, spec: dict | None = None) -> list[ColumnAdvice]:
    """The column advice for the run's spec (or for ``spec``: the one a model was trained with)."""
    spec = spec or state.spec
    known = state.builtin.known_columns if state.builtin else None
    return cached_advice(
        request.app.state.storage,
        state.info,
        spec["target"],
        spec.get("label_mapping"),
        spec.get("group_column"),
        known,
    )


def fill_default_features(request: Request, state: RunState) -> RunState:
    """A new target leaves features unset (None): the form that set it fills in the advised
    defaults (a page that shows them never writes)."""
    if state.spec.get("target") and state.spec.get("features") is None:
        features = default_features(column_advice(request, state))
        state.spec = update_spec(
            request.app.state.results, state.run_id, lambda s: {**s, "features": features}
        )
    return state


def _matches(advice: ColumnAdvice, query: str) -> bool:
    return not query or query.lower() in advice.name.lower()


def _list_context(request: Request, state: RunState, query: str) -> dict:
    advice = column_advice(request, state) if state.spec.get("target") else []
    profiles = {p.name: p for p in state.info.profiles()}
    features = state.spec.get("features")
    selected = set(default_features(advice) if features is None else features)
    rows = [
        {"advice": a, "profile": profiles[a.name], "selected": a.name in selected}
        for a in advice
        if _matches(a, query)
    ]
    return {
        "run": state,
        "rows": rows,
        "query": query,
        "selected_count": len(selected),
        "column_count": len(advice),
    }


def _features_page(request: Request, status_code: int = 200, **extra: object) -> Response:
    state = load_run(request)
    if state.info is None:
        raise HTTPException(409, "This run's dataset is not available.")
    target = state.spec.get("target")
    profile = next((p for p in state.info.profiles() if p.name == target), None)
    context = {
        "targets": target_choices(state),
        "setups": setups(state, target),
        "target_profile": profile,
        "class_roles": _class_roles(request, state) if target else [],
        "role_names": ROLES,
        **_list_context(request, state, request.query_params.get("q", "")),
        **extra,
    }
    return step_page(request, state, "features", context, status_code=status_code)


def _not_a_target(state: RunState, target: str) -> str | None:
    """Why a column cannot be the target, in words; None if it can."""
    profile = next((p for p in state.info.profiles() if p.name == target), None)
    if profile is None:
        return f"{target!r} is not a column of this dataset."
    if profile.distinct == 0:
        return f"{target!r} cannot be the target: it is entirely empty."
    if profile.distinct == 1:
        value = f" ({profile.examples[0]!r})" if profile.examples else ""
        return (
            f"{target!r} cannot be the target: it holds only one class{value}; "
            "a classifier needs 2 to 50 classes."
        )
    if profile.distinct > MAX_TARGET_CLASSES:
        return (
            f"{target!r} cannot be the target: it has {profile.distinct:,} classes, more than "
            f"{MAX_TARGET_CLASSES}; is it an identifier or a continuous measurement?"
        )
    return None


@form_endpoint
def choose_target(request: Request, form: FormData) -> Response:
    state = load_run(request)
    if state.info is None:
        raise HTTPException(409, "This run's dataset is not available.")
    target = str(form.get("target", ""))
    problem = _not_a_target(state, target)
    if problem is not None:
        raise HTTPException(400, problem)
    options = {s.key: s for s in setups(state, target)}
    setup = options.get(str(form.get("setup", "")), next(iter(options.values())))
    mapping, positive, score_classes = setup.mapping, setup.positive_class, list(setup.score_classes)
    roles: dict[str, str] | None = None
    if setup.key == CUSTOM_KEY:
        try:
            custom, roles = _custom_setup(request, state, target, form)
        except DataError as error:
            classes = [c for c, _ in target_classes(request, state, target)]
            posted = {c: str(form.get(f"role-{i}", OWN)) for i, c in enumerate(classes)}
            if not is_htmx(request):
                raise HTTPException(400, str(error)) from None
            roles = _class_roles(request, state, posted) if form.get("roles_for") == target else []
            return _features_page(request, 400, setup_problem=str(error), class_roles=roles)
        mapping, positive, score_classes = custom.mapping, custom.positive_class, list(custom.score_classes)
    group = _default_group(request, state, target)

    def change(spec: dict) -> dict:
        same_target = spec.get("target") == target
        same = same_target and spec.get("label_setup") == setup.key
        return {
            **spec,
            "target": target,
            "label_setup": setup.key,
            "label_mapping": mapping,
            "positive_class": positive,
            "score_classes": score_classes,
            "class_roles": roles,
            "group_column": spec.get("group_column") if same_target else group,
            "features": spec.get("features") if same else None,
        }

    state.spec = update_spec(request.app.state.results, state.run_id, change)
    fill_default_features(request, state)
    if not is_htmx(request):
        return go_to_step(request, state.run_id, "features")
    return _features_page(request)


def _list(request: Request, context: dict, status_code: int = 200) -> Response:
    """The feature list fragment for htmx; a plain request gets the whole step instead."""
    if not is_htmx(request):
        return go_to_step(request, context["run"].run_id, "features")
    return render(request, "step_features.html", "_feature_list.html", context, status_code=status_code)


def feature_list(request: Request) -> Response:
    """The list as the search narrows it (htmx); a plain request gets the whole step."""
    return _feature_list(request) if is_htmx(request) else features_step(request)


@run_page()  # shows the spec's features and the dataset's columns, no job
def _feature_list(request: Request) -> Response:
    state = load_run(request)
    return _list(request, _list_context(request, state, request.query_params.get("q", "")))


def _require_target(state: RunState) -> None:
    if not state.spec.get("target"):
        raise HTTPException(409, "Choose the target first: the features are chosen for a target.")


@form_endpoint
def toggle(request: Request, form: FormData) -> Response:
    """Select or unselect one column; the target is refused here, whatever the browser sends."""
    state = load_run(request)
    column, on, query = str(form.get("column", "")), form.get("on") == "1", str(form.get("q", ""))
    _require_target(state)
    known = {a.name for a in column_advice(request, state)}
    problem = None
    if column == state.spec.get("target"):
        problem = f"{column!r} is the target; the target can never be a feature."
    elif column not in known:
        problem = f"{column!r} is not a column of this dataset."
    if problem is None:

        def change(spec: dict) -> dict:
            features = [f for f in (spec.get("features") or []) if f != column]
            return {**spec, "features": [*features, column] if on else features}

        state.spec = update_spec(request.app.state.results, state.run_id, change)
    return _list(
        request, {**_list_context(request, state, query), "problem": problem}, 400 if problem else 200
    )


@form_endpoint
def select_visible(request: Request, form: FormData) -> Response:
    """Select or unselect every column the search shows (never the target)."""
    state = load_run(request)
    query, on = str(form.get("q", "")), form.get("on") == "1"
    _require_target(state)
    visible = [a.name for a in column_advice(request, state) if _matches(a, query)]

    def change(spec: dict) -> dict:
        current = [f for f in (spec.get("features") or []) if f not in visible]
        return {
            **spec,
            "features": current + [v for v in visible if v != spec.get("target")] if on else current,
        }

    state.spec = update_spec(request.app.state.results, state.run_id, change)
    return _list(request, _list_context(request, state, query))


features_step = run_page(*STEP_JOBS)(_features_page)

routes = [
    Route("/features", features_step, name="step_features"),
    Route("/features/target", choose_target, methods=["POST"], name="choose_target"),
    Route("/features/list", feature_list, name="feature_list"),
    Route("/features/toggle", toggle, methods=["POST"], name="toggle_feature"),
    Route("/features/visible", select_visible, methods=["POST"], name="select_visible"),
]
