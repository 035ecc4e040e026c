"""Alembic migrations, run by ``cxr db upgrade`` and at the start of ``cxr serve``; and the schema check that every
other long-running command makes at start."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from db.errors import describe_database_error

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would read '%' in a password as a placeholder.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    logger.info("migrating database to %s", revision)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


class SchemaNotCurrentError(RuntimeError):
    """The database is not at the schema this version of the software needs; the message says what to run."""


def database_name(database_url: str) -> str:
    """The URL as it may be printed: without its password."""
    return make_url(database_url).render_as_string(hide_password=True)


def check_schema(database_url: str) -> None:
    """Raise ``SchemaNotCurrentError`` unless the database is at this version's newest migration.

    A missing SQLite file is reported without creating it. The message is one line that names the database (never its
    password) and the command that mends it."""
    name = database_name(database_url)
    url = make_url(database_url)
    file_based = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if file_based and not Path(str(url.database)).is_file():
        raise SchemaNotCurrentError(f"database {name} does not exist yet; run: cxr db upgrade")
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    engine = create_engine(url)
    migration_log = logging.getLogger("alembic.runtime.migration")
    level = migration_log.level
    migration_log.setLevel(logging.WARNING)  # its "Context impl" lines, at every part's start, say nothing here
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise SchemaNotCurrentError(f"database {name} cannot be read ({describe_database_error(exc)})") from exc
    finally:
        migration_log.setLevel(level)
        engine.dispose()
    if current is None:
        raise SchemaNotCurrentError(f"database {name} has no schema; run: cxr db upgrade")
    if current != head:
        raise SchemaNotCurrentError(
            f"database {name} is at schema {current}, this version needs {head}; run: cxr db upgrade"
        )
