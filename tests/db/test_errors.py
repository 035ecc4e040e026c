"""db.errors.describe_database_error on SQLite and PostgreSQL: a log line says what failed, and never carries the
statement's parameters (the values being written)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import SQLAlchemyError

from db import studies
from db.engine import make_engine, make_session_factory
from db.errors import describe_database_error
from db.models import utcnow
from tests.helpers.pipeline import facts

MARKER = "1.2.826.0.1.3680043.8.498.4711"


def test_an_unmigrated_database_is_described_by_its_missing_table(database_url: str) -> None:
    sessions = make_session_factory(make_engine(database_url))
    with pytest.raises(SQLAlchemyError) as failure, sessions.begin() as s:
        studies.record_instance(s, facts(f"{MARKER}.1", MARKER), utcnow() + timedelta(seconds=60))
    assert MARKER in str(failure.value), "SQLAlchemy's own text quotes the parameters"
    line = describe_database_error(failure.value)
    assert MARKER not in line and "\n" not in line
    assert "study" in line and ("no such table" in line or "does not exist" in line), line
    assert line.split(":")[0] in {"OperationalError", "UndefinedTable"}


def test_an_error_that_is_not_the_database_s_is_named_by_its_type() -> None:
    assert describe_database_error(ValueError("Patient^Name")) == "ValueError"
