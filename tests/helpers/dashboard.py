"""A logged-in HTTP client for the dashboard, and the users the dashboard tests configure."""

from __future__ import annotations

import re
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pydicom

from dashboard.auth import hash_password
from db.engine import SessionFactory
from db.models import JobState
from tests.helpers.node import RunningNode
from tests.helpers.peers import storescp

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Login:
    name: str
    password: str
    role: str


VIEWER = Login("vera", "viewer-password-1", "viewer")
OPERATOR = Login("otto", "operator-password-1", "operator")


def users_toml(*users: Login) -> str:
    """``[[dashboard.users]]`` entries; ``cxr_serve`` puts them after its ``[dashboard]`` table."""
    return "\n".join(
        f'[[dashboard.users]]\nname = "{u.name}"\npassword_hash = "{hash_password(u.password)}"\nrole = "{u.role}"'
        for u in users
    )


def page_csrf(client: httpx.Client, path: str = "/") -> str:
    """The CSRF token a page's forms carry."""
    match = CSRF_INPUT.search(client.get(path, headers={"Accept": "text/html"}).text)
    assert match is not None, f"no CSRF token on {path}"
    return match.group(1)


def logged_in(base_url: str, user: Login) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    token = page_csrf(client, "/login")
    response = client.post("/login", data={"username": user.name, "password": user.password, "csrf_token": token})
    assert response.status_code == 303, response.text
    return client


PHI_MARKERS = ("ZZMARKER^Patient", "ZZMARKER-ID-4711", "ZZMARKACC99")


UPLOAD_LIMIT = 16 * 1024 * 1024


@dataclass
class Site:
    node: RunningNode
    pacs_port: int
    pacs_dir: Path
    sessions: SessionFactory
    studies: list[pydicom.Dataset]
    stack: ExitStack = field(default_factory=ExitStack)
    pacs_started: bool = False

    def start_pacs(self) -> None:
        """The destination comes up (and stays up until the package's tests end)."""
        if not self.pacs_started:
            self.stack.enter_context(storescp(self.pacs_dir, "PACS", self.pacs_port))
            self.pacs_started = True

    def wait_for_states(self, wanted: set[JobState], count: int, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = [j.state for j in self.node.jobs()]
            if sum(s in wanted for s in states) >= count:
                return
            time.sleep(0.3)
        raise TimeoutError(f"wanted {count} jobs in {wanted}, have {[j.state for j in self.node.jobs()]}")
