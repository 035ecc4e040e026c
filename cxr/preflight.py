"""Checks a command makes before it starts anything or migrates anything: a writable data directory, free ports, and
a database and broker that answer. Each problem is one line that names what failed (a URL without its password) and
what is likely behind it; the command then exits with code 2 and leaves nothing behind."""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from config.settings import Settings

CONNECT_TIMEOUT_S = 5.0


def data_dir_problem(settings: Settings) -> str | None:
    """The data directory must exist (or be creatable) and take a file."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=settings.data_dir):
            pass
    except OSError as exc:
        return f"data directory {settings.data_dir} cannot be written ({exc.strerror or type(exc).__name__})"
    return None


def port_problem(host: str, port: int, what: str) -> str | None:
    """``port`` on ``host`` must be free to listen on; if it is not, say who holds it (when this user may see)."""
    if port == 0:
        return None
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return f"{what} port {port} on {host} cannot be used ({exc.strerror or type(exc).__name__})"
            holder = listener(port)
            return f"{what} port {port} on {host} is already in use" + (
                f" by {holder}: is another node running?" if holder else ": is another node running?"
            )
    return None


def listener(port: int) -> str | None:
    """``pid N (command line)`` of the process listening on TCP ``port``, read from /proc; None if unknown."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for process in Path("/proc").iterdir() if inodes else ():
        if not process.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (process / "fd").iterdir()):
                command = (process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                return f"pid {process.name} ({' '.join(command.split())[:100]})"
        except OSError:
            continue
    return None


def database_problem(database_url: str) -> str | None:
    """The database must answer. A SQLite file is not created here: only its directory is checked."""
    from db.errors import describe_database_error
    from db.migrate import database_name

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        folder = Path(url.database or ".").parent
        if not folder.is_dir() and not os.access(_existing_parent(folder), os.W_OK):
            return f"database {database_name(database_url)}: its directory cannot be created"
        return None
    engine = create_engine(url, connect_args={"connect_timeout": int(CONNECT_TIMEOUT_S)})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return f"database {database_name(database_url)} cannot be reached ({describe_database_error(exc)})"
    finally:
        engine.dispose()
    return None


def _existing_parent(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def broker_problem(broker_url: str) -> str | None:
    """The broker must answer. The embedded SQLite broker lives in the data directory, which is checked already."""
    from kombu import Connection
    from kombu.utils.url import maybe_sanitize_url

    from worker.embedded_broker import EMBEDDED_PREFIX

    if broker_url.startswith(EMBEDDED_PREFIX):
        return None
    try:
        with Connection(broker_url, connect_timeout=CONNECT_TIMEOUT_S) as connection:
            connection.ensure_connection(max_retries=1, timeout=int(CONNECT_TIMEOUT_S))
    except Exception as exc:  # kombu and its transports raise their own types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        detail = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        return f"broker {maybe_sanitize_url(broker_url)} cannot be reached ({detail})"
    return None


def embedded_broker_problem(broker_url: str) -> str | None:
    """The embedded SQLite broker gets its tables here, once, after every other check passed and before any worker
    starts (``worker.embedded_broker`` says why). Other brokers need nothing."""
    from worker.embedded_broker import EMBEDDED_PREFIX, create_tables

    if not broker_url.startswith(EMBEDDED_PREFIX):
        return None
    try:
        create_tables(broker_url)
    except Exception as exc:  # SQLAlchemy's errors and the OSError of a directory that cannot be made
        return f"embedded broker {broker_url} cannot be opened ({type(exc).__name__})"
    return None
