"""The built-in datasets: cards with their source and date, loading with progress, details."""

import asyncio

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.catalog import BUILTINS, Builtin
from shared.errors import DataError
from shared.sources import cached_advice, claim_fetch, load_info, read_fetch_status, run_fetch
from webapp.htmx import render


def _builtin(request: Request) -> Builtin:
    dataset = BUILTINS.get(request.path_params["dataset_id"])
    if dataset is None:
        raise HTTPException(404, "No such built-in dataset.")
    return dataset


def card_context(request: Request, dataset: Builtin) -> dict:
    storage = request.app.state.storage
    status, _ = read_fetch_status(storage, dataset.id)
    return {
        "dataset": dataset,
        "info": load_info(storage, dataset.id),
        "status": status,
        "from_environment": dataset.id in request.app.state.settings.dataset_uris,
    }


async def index(request: Request) -> Response:
    cards = [card_context(request, d) for d in BUILTINS.values()]
    return render(request, "datasets.html", "_dataset_cards.html", {"cards": cards})


async def card(request: Request) -> Response:
    return render(
        request, "dataset_card.html", "_dataset_card.html", card_context(request, _builtin(request))
    )


async def fetch(request: Request) -> Response:
    """Start loading (or refreshing) a dataset in the background; answer with its card."""
    dataset = _builtin(request)
    state = request.app.state
    if claim_fetch(state.storage, dataset.id) is not None:
        loop = asyncio.get_running_loop()
        loop.run_in_executor(state.background, run_fetch, dataset, state.settings, state.storage)
    return render(request, "dataset_card.html", "_dataset_card.html", card_context(request, dataset))


async def detail(request: Request) -> Response:
    dataset = _builtin(request)
    storage = request.app.state.storage
    info = load_info(storage, dataset.id)
    if info is None:
        return render(request, "dataset_card.html", "_dataset_card.html", card_context(request, dataset))
    try:
        setup = dataset.setup(request.query_params.get("setup", dataset.default_setup.key))
    except DataError as error:
        raise HTTPException(400, str(error)) from None
    advice = cached_advice(
        storage, info, dataset.target, setup.mapping, dataset.group_column, dataset.known_columns
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
