"""Fixtures every test may use: the pydicom-data radiographs, and a real database on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pydicom
import pytest
from hypothesis import HealthCheck, settings
from pydicom.data import get_testdata_file

if TYPE_CHECKING:
    from db.engine import SessionFactory

# Property-based tests: the same examples on every CI run; HYPOTHESIS_PROFILE=deep searches many more, at random.
slow = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True, suppress_health_check=slow)
settings.register_profile("deep", max_examples=600, deadline=None, suppress_health_check=slow)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` run only where torch sees CUDA; elsewhere they are skipped, saying why."""
    marked = [item for item in items if item.get_closest_marker("gpu")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: torch sees no GPU on this machine")
    for item in marked:
        item.add_marker(skip)


def testdata(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, f"{name} missing: install pydicom-data"
    return Path(str(path))


@pytest.fixture(scope="session")
def rg1() -> Path:
    return testdata("RG1_UNCR.dcm")


@pytest.fixture(scope="session")
def rg1_j2kr() -> Path:
    return testdata("RG1_J2KR.dcm")


@pytest.fixture(scope="session")
def rg1_j2ki() -> Path:
    return testdata("RG1_J2KI.dcm")


@pytest.fixture(scope="session")
def rg3() -> Path:
    return testdata("RG3_UNCR.dcm")


@pytest.fixture(scope="session")
def rg1_dataset(rg1: Path) -> pydicom.Dataset:
    return pydicom.dcmread(rg1)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every database test runs against both the embedded default and PostgreSQL."""
    # Imported here, not at the top, so that the model tests also run where only the ML stack is installed (the
    # lent GPU machine).
    from tests.helpers.databases import postgres_database, sqlite_url

    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture
def session_factory(database_url: str) -> Iterator[SessionFactory]:
    from db.engine import make_engine, make_session_factory
    from db.migrate import upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()
