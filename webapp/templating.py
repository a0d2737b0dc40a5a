"""Jinja2 templates shared by every page."""

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from markupsafe import Markup, escape
from starlette.routing import Router
from starlette.templating import Jinja2Templates

from shared.figures import TITLES
from shared.job_options import EVALUATION_OPTIONS
from shared.metric_info import BASELINES, METRICS, poor_notes
from shared.runs import TITLES as JOB_TITLES

ROOT = Path(__file__).resolve().parents[1]
templates = Jinja2Templates(directory=ROOT / "templates")


def code_spans(text: str) -> Markup:
    """`name` in plain text becomes <code>name</code>; everything else is escaped."""
    parts = str(escape(text)).split("`")
    return Markup("".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts)))


_ROUTERS: dict[int, Router] = {}


def _path_for(router: Router, name: str, params: tuple[tuple[str, Any], ...]) -> str:
    _ROUTERS.setdefault(id(router), router)  # routers define __eq__ without __hash__: key by identity
    return _cached_path(id(router), name, params)


@lru_cache(maxsize=8192)
def _cached_path(router_id: int, name: str, params: tuple[tuple[str, Any], ...]) -> str:
    return str(_ROUTERS[router_id].url_path_for(name, **dict(params)))


@pass_context
def url_for(context: dict[str, Any], name: str, /, **params: Any) -> str:
    """The path of a named route. Routes never change while the app runs, and Starlette's own
    url_for walks every route on each call (the largest cost of a page here), so look-ups are
    cached. Paths are root-relative, which browsers and htmx resolve against the page."""
    return _path_for(context["request"].app.router, name, tuple(sorted(params.items())))


templates.env.filters["code_spans"] = code_spans
templates.env.globals["url_for"] = url_for
templates.env.globals["figure_titles"] = TITLES
templates.env.globals["job_titles"] = JOB_TITLES
templates.env.globals["evaluation_options"] = EVALUATION_OPTIONS
templates.env.globals["metric_info"] = METRICS
templates.env.globals["baseline_labels"] = BASELINES
templates.env.globals["poor_notes"] = poor_notes


@pass_context
def csrf_token(context: dict[str, Any]) -> str:
    """This workspace's CSRF token (creating the workspace if the browser is new)."""
    from webapp.security import csrf_token as token_for
    from webapp.workspace import workspace_of

    request = context["request"]
    return token_for(request.app.state.session_secret, workspace_of(request))


@pass_context
def csrf_field(context: dict[str, Any]) -> Markup:
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(csrf_token(context))


templates.env.globals["csrf_token"] = csrf_token
templates.env.globals["csrf_field"] = csrf_field


def path_for(request: Any, name: str, /, **params: Any) -> str:
    """The cached route path, for Python code (see url_for)."""
    return _path_for(request.app.router, name, tuple(sorted(params.items())))
