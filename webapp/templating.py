"""Jinja2 templates shared by every page."""

from pathlib import Path

from markupsafe import Markup, escape
from starlette.templating import Jinja2Templates

ROOT = Path(__file__).resolve().parents[1]
templates = Jinja2Templates(directory=ROOT / "templates")


def code_spans(text: str) -> Markup:
    """`name` in plain text becomes <code>name</code>; everything else is escaped."""
    parts = str(escape(text)).split("`")
    return Markup("".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts)))


templates.env.filters["code_spans"] = code_spans
