"""The dashboard's templates: compiled once at start-up, with the filters that format numbers."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates

from app.dashboard import formatting
from app.dashboard.sections import hidden_fields

TEMPLATES = Path(__file__).parent / "templates"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES)
    templates.env.filters |= {
        "num": formatting.format_count,
        "percent": formatting.format_percent,
        "weight": formatting.format_weight,
        "share": formatting.format_share,
        "time": formatting.format_time,
        "exact": formatting.exact,
        "count": formatting.format_quantity,
        "noun": formatting.noun_for,
        "code_spans": formatting.code_spans,
    }
    templates.env.globals["hidden_fields"] = hidden_fields
    # Compiled now rather than by the first page asked for: a third of a second.
    for name in templates.env.list_templates(extensions=["html"]):
        templates.env.get_template(name)
    return templates


def templates_of(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates
