"""dashboard.auth: dashboard credentials: argon2id hashes, the generated first operator, and private secret files."""

from __future__ import annotations

import stat
from pathlib import Path

from config.settings import Settings
from dashboard.auth import (
    ADMIN_PASSWORD_FILE,
    SECRET_FILE,
    Authenticator,
    Role,
    hash_password,
    session_secret,
)


def test_configured_users_log_in_with_their_password_only(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        dashboard={
            "users": [  # type: ignore[arg-type]
                {"name": "vera", "password_hash": hash_password("pass-v"), "role": "viewer"},
                {"name": "otto", "password_hash": hash_password("pass-o"), "role": "operator"},
            ]
        },
    )
    auth = Authenticator.from_settings(settings)
    vera, otto = auth.verify("vera", "pass-v"), auth.verify("otto", "pass-o")
    assert vera is not None and vera.role is Role.VIEWER and not vera.is_operator
    assert otto is not None and otto.is_operator
    assert auth.verify("vera", "pass-o") is None and auth.verify("nobody", "pass-v") is None
    assert auth.verify("vera", "") is None
    assert not (tmp_path / ADMIN_PASSWORD_FILE).exists(), "no generated admin when users are configured"


def test_hashes_are_argon2id_and_never_the_password() -> None:
    hashed = hash_password("s3cret")
    assert hashed.startswith("$argon2id$") and "s3cret" not in hashed
    assert hashed != hash_password("s3cret"), "salted"


def test_without_users_a_first_operator_gets_a_private_random_password(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = Authenticator.from_settings(settings)
    path = tmp_path / ADMIN_PASSWORD_FILE
    password = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(password) >= 20
    admin = first.verify("admin", password)
    assert admin is not None and admin.is_operator
    again = Authenticator.from_settings(settings)
    assert again.verify("admin", password) is not None, "the same password after a restart"


def test_the_session_secret_is_kept_private_and_stable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    secret = session_secret(settings)
    assert secret == session_secret(settings) and len(secret) >= 48
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600
    configured = Settings(data_dir=tmp_path, dashboard={"secret_key": "from-settings"})  # type: ignore[arg-type]
    assert session_secret(configured) == "from-settings"
