"""Dashboard login: users from settings with argon2id hashes, roles, signed session cookies and CSRF tokens.

The session cookie (Starlette's SessionMiddleware, signed with itsdangerous) is HttpOnly and SameSite=Strict; it holds
the user name, role and the CSRF token, nothing else. Every state change is a POST that must carry that token.
"""

from __future__ import annotations

import enum
import hmac
import logging
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request, status

from config.dashboard import DashboardSettings
from config.privacy import private_file
from config.settings import Settings

logger = logging.getLogger(__name__)

_hasher = PasswordHasher()
INITIAL_ADMIN = "admin"
ADMIN_PASSWORD_FILE = "dashboard-admin-password"
SECRET_FILE = "dashboard-secret"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, the API answers 401."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def session_secret(settings: Settings) -> str:
    configured = settings.dashboard.secret_key
    if configured is not None:
        return configured.get_secret_value()
    return private_file(settings.data_dir / SECRET_FILE, secrets.token_urlsafe(48))


class Authenticator:
    def __init__(self, users: dict[str, tuple[str, Role]]) -> None:
        self._users = users
        self._dummy_hash = hash_password(secrets.token_urlsafe(16))

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        users = {u.name: (u.password_hash.get_secret_value(), Role(u.role)) for u in settings.dashboard.users}
        if not users:
            path = settings.data_dir / ADMIN_PASSWORD_FILE
            password = private_file(path, secrets.token_urlsafe(18))
            users[INITIAL_ADMIN] = (hash_password(password), Role.OPERATOR)
            logger.warning("no dashboard users configured: log in as %r with the password in %s", INITIAL_ADMIN, path)
        return cls(users)

    def verify(self, name: str, password: str) -> User | None:
        entry = self._users.get(name)
        try:
            # An unknown name still costs one verification, so response times do not reveal which names exist.
            _hasher.verify(entry[0] if entry else self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return User(name, entry[1]) if entry else None


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use (the login form gets one before anyone logs in)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def log_in(request: Request, user: User) -> None:
    """A fresh session (and CSRF token) on login, so a token seen before login is worthless after it."""
    request.session.clear()
    request.session.update({"user": user.name, "role": user.role.value, "csrf": secrets.token_urlsafe(32)})


def current_user(request: Request) -> User:
    name, role = request.session.get("user"), request.session.get("role")
    if not isinstance(name, str) or role not in (Role.VIEWER.value, Role.OPERATOR.value):
        raise LoginRequired()
    return User(name, Role(role))


async def check_csrf(request: Request) -> None:
    """A POST must echo the session's token, in the form field or the header; 403 otherwise."""
    expected = request.session.get("csrf")
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not isinstance(expected, str) or given is None or not hmac.compare_digest(expected, given):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")


def require_operator(user: User) -> None:
    if not user.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this action needs the operator role")


def bearer_matches(request: Request, dashboard: DashboardSettings) -> bool:
    """/metrics for Prometheus: ``Authorization: Bearer <metrics_token>`` when a token is configured."""
    token = dashboard.metrics_token
    header = request.headers.get("authorization", "")
    if token is None or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header.removeprefix("Bearer ").encode(), token.get_secret_value().encode())
