"""Running the dashboard: the services it needs, built from Settings, served by uvicorn."""

from __future__ import annotations

import logging
import socket

import uvicorn
from fastapi import FastAPI

from config.settings import Settings
from dashboard.app import create_app
from dashboard.services import DashboardServices
from db.engine import make_engine, make_session_factory
from worker.queue import task_queue

logger = logging.getLogger(__name__)


def build_app(settings: Settings) -> FastAPI:
    (settings.spool_dir / ".incoming").mkdir(parents=True, exist_ok=True)
    sessions = make_session_factory(make_engine(settings.database_url))
    services = DashboardServices.build(settings, sessions, task_queue(settings, sessions))
    return create_app(services)


def build_server(settings: Settings) -> uvicorn.Server:
    config = uvicorn.Config(
        build_app(settings),
        host=settings.dashboard.host,
        port=settings.dashboard.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
    return uvicorn.Server(config)


def serve(settings: Settings, sock: socket.socket | None = None) -> None:
    """Blocks until SIGINT/SIGTERM (uvicorn installs the handlers)."""
    server = build_server(settings)
    logger.info("dashboard on http://%s:%d/", settings.dashboard.host, settings.dashboard.port)
    server.run(sockets=[sock] if sock is not None else None)
