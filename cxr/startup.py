"""What every ``cxr`` command does at start: its shared options, the settings, logging, the schema check and the
detector, each failing with one clear line and exit code 2. ``cli`` and ``training`` both import it; it imports
neither."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from config.settings import Settings

if TYPE_CHECKING:
    from models.protocol import Detector

console = Console()
logger = logging.getLogger("cxr")

STARTUP_ERROR = 2
"""The exit code of every start-up problem (configuration, schema, detector)."""

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML file (else $CXR_CONFIG, else ./cxr.toml).")
]


def fail(what: str, problem: object) -> typer.Exit:
    """Print ``what: problem`` as one line and return the exit to raise."""
    console.print(f"[red]{what}:[/red] {problem}", soft_wrap=True, highlight=False)
    return typer.Exit(STARTUP_ERROR)


def load_settings(config: Path | None, process: str) -> Settings:
    """The settings for this command, and logging configured for its process name."""
    from cxr.logs import configure_logging

    try:
        settings = Settings.load(config)
    except (FileNotFoundError, ValueError) as exc:
        raise fail("configuration error", exc) from exc
    configure_logging(settings.log_level, process)
    return settings


def require_current_schema(settings: Settings) -> None:
    """A long-running command refuses to start on a database that is not migrated to this version."""
    from db.migrate import SchemaNotCurrentError, check_schema

    try:
        check_schema(settings.database_url)
    except SchemaNotCurrentError as exc:
        raise fail("database not ready", exc) from exc


def load_detector_or_exit(load: Callable[[], Detector]) -> Detector:
    """A detector that cannot load (unknown name, weights not placed) stops the command with its reason, at start."""
    from models.checkpoint import WeightsMissingError
    from models.registry import UnknownDetectorError

    try:
        return load()
    except (UnknownDetectorError, WeightsMissingError, ValueError) as exc:
        logger.error("detector not loaded: %s", exc)
        raise fail("detector not loaded", exc) from exc
