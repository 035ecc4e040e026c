"""Server-side rendering: one Jinja environment (autoescaped), the filters the templates use, and ``render``."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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


_zone: tzinfo | None = None
"""The zone pages show times in (``dashboard.time_zone``); None: the host's local zone."""


def set_time_zone(name: str) -> None:
    global _zone
    _zone = ZoneInfo(name) if name else None


def when(value: datetime | None) -> str:
    """A stored (UTC) time in the dashboard's zone, with the zone's abbreviation: 2026-12-03 21:40:05 CET."""
    return "–" if value is None else value.astimezone(_zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def size(value: int | None) -> str:
    if value is None:
        return "–"
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value} B"


def span(value: timedelta) -> str:
    minutes = value.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.0f} h"


_environment = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True
)
_environment.filters.update(seconds=seconds, when=when, span=span, size=size)


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
