from __future__ import annotations

from sqlalchemy import create_engine, inspect

from db.migrate import downgrade, upgrade
from db.models import Base


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
