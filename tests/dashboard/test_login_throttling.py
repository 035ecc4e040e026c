"""dashboard.app's login: failed logins per name and per source address are throttled (429, the password not even
checked) until the window passes; throttled attempts, successful logins and logouts are audited. The real app over
ASGI on a real database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from config.settings import Settings
from dashboard.app import create_app
from dashboard.auth import hash_password
from dashboard.services import DashboardServices
from db import audit
from db.engine import SessionFactory
from db.models import AuditKind
from tests.helpers.dashboard import CSRF_INPUT
from worker.celery_app import create_celery_app
from worker.queue import TaskQueue

LOCKOUT_S = 2.0


@pytest.fixture
def client(tmp_path: Path, session_factory: SessionFactory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path / "var",
        dashboard={  # type: ignore[arg-type]
            "users": [{"name": "otto", "password_hash": hash_password("right-password"), "role": "operator"}],
            "login_max_failures": 3,
            "login_lockout_s": LOCKOUT_S,
        },
    )
    services = DashboardServices.build(settings, session_factory, TaskQueue(create_celery_app(settings)))
    with TestClient(create_app(services)) as test_client:
        yield test_client


def attempt(client: TestClient, name: str, password: str) -> int:
    token = CSRF_INPUT.search(client.get("/login").text)
    assert token is not None
    answer = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    return answer.status_code


def kinds(session_factory: SessionFactory) -> list[tuple[AuditKind, str | None]]:
    with session_factory() as s:
        return [(AuditKind(a.kind), a.actor) for a in reversed(audit.audit_trail(s, 100))]


def test_failed_logins_are_throttled_per_name_and_address_then_the_window_passes(
    client: TestClient, session_factory: SessionFactory
) -> None:
    assert [attempt(client, "otto", "wrong") for _ in range(3)] == [401, 401, 401]
    assert attempt(client, "otto", "right-password") == 429, "the right password is not even checked"
    assert attempt(client, "someone-else", "anything") == 429, "the address is throttled too"
    time.sleep(LOCKOUT_S + 0.2)
    assert attempt(client, "otto", "right-password") == 303
    token = CSRF_INPUT.search(client.get("/", headers={"Accept": "text/html"}).text)
    assert token is not None
    assert client.post("/logout", data={"csrf_token": token.group(1)}, follow_redirects=False).status_code == 303
    assert kinds(session_factory) == [
        *[(AuditKind.LOGIN_FAILED, "otto")] * 3,
        (AuditKind.LOGIN_THROTTLED, "otto"),
        (AuditKind.LOGIN_THROTTLED, "someone-else"),
        (AuditKind.LOGIN_SUCCEEDED, "otto"),
        (AuditKind.LOGOUT, "otto"),
    ]


def test_a_successful_login_starts_the_name_count_afresh(client: TestClient) -> None:
    assert [attempt(client, "otto", "wrong") for _ in range(2)] == [401, 401]
    assert attempt(client, "otto", "right-password") == 303
    assert attempt(client, "otto", "wrong") == 401, "two failures before the success no longer count for the name"
