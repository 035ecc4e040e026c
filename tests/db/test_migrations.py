"""db.migrate: Alembic upgrade and downgrade on both databases, and the start-up schema check."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from db.migrate import SchemaNotCurrentError, check_schema, database_name, downgrade, upgrade
from db.models import Base
from tests.helpers.databases import postgres_database


def test_upgrade_from_empty_matches_the_models_and_round_trips(database_url: str) -> None:
    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        downgrade(database_url, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(database_url)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_leave_nothing_for_autogenerate(database_url: str) -> None:
    """The migrated schema is exactly the models' (columns, types, indexes): no hand-written migration drifted."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_the_schema_check_names_the_database_and_the_fix(database_url: str) -> None:
    """db.migrate.check_schema: missing or unmigrated, older, then current; the message never shows a password."""
    with pytest.raises(SchemaNotCurrentError) as missing:
        check_schema(database_url)
    assert "cxr db upgrade" in str(missing.value) and database_name(database_url) in str(missing.value)
    upgrade(database_url, "0007")
    with pytest.raises(SchemaNotCurrentError, match=r"is at schema 0007, this version needs 0013; run: cxr db upgrade"):
        check_schema(database_url)
    upgrade(database_url)
    check_schema(database_url)


def test_the_schema_check_hides_the_password() -> None:
    with postgres_database() as database_url:
        with_password = make_url(database_url).set(password="s3cret-ZZ").render_as_string(hide_password=False)
        with pytest.raises(SchemaNotCurrentError) as problem:
            check_schema(with_password)
    assert "s3cret-ZZ" not in str(problem.value) and "***" in str(problem.value)
    assert "\n" not in str(problem.value)


def test_a_missing_sqlite_file_is_reported_not_created(tmp_path: Path) -> None:
    path = tmp_path / "var" / "cxr.sqlite"
    with pytest.raises(SchemaNotCurrentError, match="does not exist yet; run: cxr db upgrade"):
        check_schema(f"sqlite:///{path}")
    assert not path.exists() and not path.parent.exists()
