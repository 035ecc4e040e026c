"""A logged-in HTTP client for the dashboard, and the users the dashboard tests configure."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from worker.dashboard.auth import hash_password

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
