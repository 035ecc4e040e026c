"""What every ``cxr`` command does at start: its shared options, the settings, logging, the schema check and the
detector, each failing with one clear line and exit code 2. ``cli`` and ``training`` both import it; it imports
neither."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from config.problems import ConfigurationError
from config.settings import Settings
from models.urgency import check_labels

if TYPE_CHECKING:
    from db.engine import SessionFactory
    from models.protocol import Detector

console = Console()
logger = logging.getLogger("cxr")

STARTUP_ERROR = 2
"""The exit code of every start-up problem (configuration, schema, detector)."""

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML file (else $CXR_CONFIG, else ./cxr.toml).")
]


def fail(what: str, problem: object) -> typer.Exit:
    """Print ``what: problem`` as one line and return the exit to raise. The problem is text, not markup: a key path
    such as ``[scp] port`` or a pip extra such as ``[deep]`` is printed as written."""
    console.print(f"[red]{what}:[/red] {escape(str(problem))}", soft_wrap=True, highlight=False)
    return typer.Exit(STARTUP_ERROR)


def load_settings(config: Path | None, process: str) -> Settings:
    """The settings for this command, and logging configured for its process name."""
    from cxr.logs import configure_logging

    try:
        settings = Settings.load(config)
    except ConfigurationError as exc:
        for problem in exc.problems[:-1]:
            console.print(f"[red]configuration error:[/red] {escape(problem)}", soft_wrap=True, highlight=False)
        raise fail("configuration error", exc.problems[-1]) from exc
    except (FileNotFoundError, ValueError) as exc:
        raise fail("configuration error", exc) from exc
    try:
        check_labels(settings.urgency.critical_thresholds)
    except ValueError as exc:
        raise fail("configuration error", exc) from exc
    configure_logging(settings.log_level, process)
    return settings


def require_ready(
    settings: Settings,
    *,
    data_dir: bool = False,
    ports: Sequence[tuple[str, str, int]] = (),
    database: bool = False,
    broker: bool = False,
) -> None:
    """Every check asked for, before anything starts or is migrated; all problems are printed, one line each.

    A broker that does not answer is a warning, not a stop: the node is built to receive and record studies while the
    broker is away, and the sweeper sends their work once it is back."""
    from cxr import preflight

    unwritable = preflight.data_dir_problem(settings) if data_dir else None
    if broker and (away := preflight.broker_problem(settings.broker_url)) is not None:
        console.print(
            f"[yellow]warning:[/yellow] {away}: studies are received and recorded, and analysed once it answers",
            soft_wrap=True,
            highlight=False,
        )
    problems = [
        unwritable,
        *(preflight.port_problem(host, port, what) for what, host, port in ports),
        *([preflight.database_problem(settings.database_url)] if database else []),
    ]
    found = [problem for problem in problems if problem is not None]
    for problem in found[:-1]:
        console.print(f"[red]cannot start:[/red] {escape(problem)}", soft_wrap=True, highlight=False)
    if found:
        raise fail("cannot start", found[-1])
    if broker and (unusable := preflight.embedded_broker_problem(settings.broker_url)) is not None:
        raise fail("cannot start", unusable)


def scp_port(settings: Settings) -> tuple[str, str, int]:
    return ("SCP", settings.scp.host, settings.scp.port)


def dashboard_port(settings: Settings) -> tuple[str, str, int]:
    return ("dashboard", settings.dashboard.host, settings.dashboard.port)


def require_current_schema(settings: Settings) -> None:
    """A long-running command refuses to start on a database that is not migrated to this version."""
    from db.migrate import SchemaNotCurrentError, check_schema

    try:
        check_schema(settings.database_url)
    except SchemaNotCurrentError as exc:
        raise fail("database not ready", exc) from exc


def open_database(config: Path | None, process: str) -> tuple[Settings, SessionFactory]:
    """The settings and a session factory for a short command that reads or changes the records, after the schema
    check."""
    from db.engine import make_engine, make_session_factory

    settings = load_settings(config, process)
    require_current_schema(settings)
    return settings, make_session_factory(make_engine(settings.database_url))


def load_detector_or_exit(load: Callable[[], Detector]) -> Detector:
    """A detector that cannot load (unknown name, weights not placed) stops the command with its reason, at start."""
    from models.extras import DeepExtraMissingError, WeightsMissingError
    from models.registry import UnknownDetectorError

    try:
        return load()
    except (UnknownDetectorError, WeightsMissingError, DeepExtraMissingError, ValueError) as exc:
        logger.error("detector not loaded: %s", exc)
        raise fail("detector not loaded", exc) from exc


def require_deep_extra(what: str) -> None:
    """Training, evaluation and model registration need torch: on the light install, say how to add it."""
    from models.extras import INSTALL_HINT, deep_installed

    if not deep_installed():
        raise fail("not installed", f"{what} needs the deep extra: {INSTALL_HINT}")
