"""The built-in datasets: cards with their source and date, refreshing with progress, details.

A built-in is ready from the snapshot the project carries (or its environment variable) the
first time it is used; "Refresh from the archive" downloads the current table in the background.
"""

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared import snapshot
from shared.catalog import BUILTINS, Builtin
from shared.errors import DataError
from shared.sources import (
    ENVIRONMENT,
    DatasetInfo,
    cached_advice,
    claim_fetch,
    current_info,
    ensure_builtin,
    fetch_key,
    info_key,
    read_fetch_status,
    refresh_source,
    run_fetch,
)
from webapp.htmx import is_htmx, render
from webapp.pages import generation_of, kept
from webapp.workspace import workspace_of


def _builtin(request: Request) -> Builtin:
    dataset = BUILTINS.get(request.path_params["dataset_id"])
    if dataset is None:
        raise HTTPException(404, "No such built-in dataset.")
    return dataset


def card_context(request: Request, dataset: Builtin, error: str = "") -> dict:
    state = request.app.state
    info = current_info(state.storage, dataset, state.settings)
    source = refresh_source(dataset, state.settings)
    status, _ = read_fetch_status(state.storage, dataset.id)
    return {
        "dataset": dataset,
        "info": info,
        "snapshot": snapshot.provenance(dataset.id),
        "status": status if status is not None and status.shown_beside(info, source) else None,
        "from_environment": source == ENVIRONMENT,
        "error": error,
    }


def cards(request: Request) -> list[dict]:
    return [card_context(request, d) for d in BUILTINS.values()]


def cards_version(request: Request) -> tuple[int, ...]:
    """What the dataset cards show, as generations: each built-in's info and refresh status."""
    storage = request.app.state.storage
    return tuple(
        generation_of(storage, key(d.id)) for d in BUILTINS.values() for key in (info_key, fetch_key)
    )


def _card(request: Request, dataset: Builtin, error: str = "", status_code: int = 200) -> Response:
    context = card_context(request, dataset, error)
    return render(request, "dataset_card.html", "_dataset_card.html", context, status_code=status_code)


def index(request: Request) -> Response:
    def page() -> Response:
        return render(request, "datasets.html", "_dataset_cards.html", {"cards": cards(request)})

    return kept(("datasets", workspace_of(request), is_htmx(request), cards_version(request)), page)


def card(request: Request) -> Response:
    return _card(request, _builtin(request))


def fetch(request: Request) -> Response:
    """Start refreshing a dataset (archive, or its environment variable) in the background."""
    dataset = _builtin(request)
    state = request.app.state
    if claim_fetch(state.storage, dataset.id, refresh_source(dataset, state.settings)) is not None:
        state.background.submit(run_fetch, dataset, state.settings, state.storage)
    return _card(request, dataset)


def ready(request: Request, dataset: Builtin) -> tuple[DatasetInfo | None, Response | None]:
    """The dataset's info, reading its snapshot or environment variable first if need be; None
    with the card's inline error answered if it cannot be read."""
    state = request.app.state
    try:
        return ensure_builtin(dataset, state.settings, state.storage), None
    except DataError as error:
        return None, _card(request, dataset, str(error), 400)


def detail(request: Request) -> Response:
    dataset = _builtin(request)
    info, problem = ready(request, dataset)
    if info is None:
        return problem
    try:
        setup = dataset.setup(request.query_params.get("setup", dataset.default_setup.key))
    except DataError as error:
        raise HTTPException(400, str(error)) from None
    advice = cached_advice(
        request.app.state.storage,
        info,
        dataset.target,
        setup.mapping,
        dataset.group_column,
        dataset.known_columns,
    )
    context = {
        "dataset": dataset,
        "info": info,
        "setup": setup,
        "advice": advice,
        "class_counts": setup.class_counts(info.class_counts),
        "scored": sum(info.class_counts.get(c, 0) for c in setup.score_classes),
    }
    return render(request, "dataset.html", "_dataset_setup.html", context)


routes = [
    Route("/", index, name="datasets"),
    Route("/{dataset_id}", detail, name="dataset"),
    Route("/{dataset_id}/card", card, name="dataset_card"),
    Route("/{dataset_id}/fetch", fetch, methods=["POST"], name="dataset_fetch"),
]
