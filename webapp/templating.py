"""Jinja2 templates shared by every page."""

from pathlib import Path

from starlette.templating import Jinja2Templates

ROOT = Path(__file__).resolve().parents[1]
templates = Jinja2Templates(directory=ROOT / "templates")
