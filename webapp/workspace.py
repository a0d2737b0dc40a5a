"""The browser's workspace: a signed id in the session cookie, and nothing else.

Runs are stored under unguessable ids and belong to the workspace that made them; asking for
someone else's run, or for an id that is not one, is answered like a missing run (404).
"""

from starlette.exceptions import HTTPException
from starlette.requests import Request

from shared.cache import MEMO
from shared.errors import InvalidKey, ObjectNotFound
from shared.runs import WORKSPACE_ID, RunMeta, check_run_id, load_meta, new_workspace_id
from shared.storage import Storage

SESSION_KEY = "ws"


def workspace_of(request: Request) -> str:
    """The workspace id from the cookie, or a new one (set on the response by the middleware)."""
    workspace = request.session.get(SESSION_KEY)
    if not isinstance(workspace, str) or not WORKSPACE_ID.fullmatch(workspace):
        workspace = new_workspace_id()
        request.session.clear()
        request.session[SESSION_KEY] = workspace
    return workspace


def run_meta(results: Storage, run_id: str) -> RunMeta:
    """A run's meta: written once when the run is made, so read once per process."""
    return MEMO.get(("meta", results.url, run_id), lambda: load_meta(results, run_id))


def owned_run(request: Request) -> tuple[str, RunMeta]:
    """The run named in the URL, if it exists and belongs to this browser."""
    try:
        run_id = check_run_id(request.path_params["run_id"])
        meta = run_meta(request.app.state.results, run_id)
    except (InvalidKey, ObjectNotFound):
        raise HTTPException(404, "No such run.") from None
    if meta.workspace != workspace_of(request):
        raise HTTPException(404, "No such run.")
    return run_id, meta
