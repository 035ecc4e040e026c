"""Server-side rendering: one Jinja environment (autoescaped), the filters the templates use, and ``render``."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from dashboard.auth import csrf_token

TEMPLATES = Path(__file__).parent / "templates"


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def when(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def span(value: timedelta) -> str:
    minutes = value.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.0f} h"


_environment = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True
)
_environment.filters.update(seconds=seconds, when=when, span=span)


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    user = request.session.get("user")
    page = _environment.get_template(template).render(
        request=request,
        user=user,
        operator=request.session.get("role") == "operator",
        csrf=csrf_token(request),
        **context,
    )
    return HTMLResponse(page, status_code)
