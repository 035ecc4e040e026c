"""Real databases for tests: a temporary SQLite file, or a fresh database on the local PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.helpers.peers import unavailable

POSTGRES_ADMIN_URL = os.environ.get("CXRTEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CXRTEST_REDIS_URL", "redis://127.0.0.1:6379/11")


@contextmanager
def postgres_database() -> Iterator[str]:
    """Create an empty database for one test and drop it afterwards; yields its URL."""
    name = f"cxr_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'cxr.sqlite'}"


REDIS_DATABASES = {
    "clinical": 9,
    "end_to_end": 11,
    "stat_lane": 12,
    "poison": 13,
    "worker_killed": 14,
    "scale_out": 15,
    "bench": 10,
}
"""One Redis database per test file that uses Redis: a node another test left running cannot take this test's messages,
and the tests of two files running at once in two pytest workers (``make test``; a file's tests stay in one) never
share one."""


def redis_broker(user: str = "end_to_end") -> str:
    """The Redis database ``user`` owns (``REDIS_DATABASES``), emptied; skips outside CI when no Redis server runs."""
    import redis

    url = f"{REDIS_URL.rsplit('/', 1)[0]}/{REDIS_DATABASES[user]}"
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        unavailable(f"Redis is not reachable at {url}: {exc}")
    return url


def redis_contents(url: str) -> bytes:
    """Every key and value in the broker's Redis database, as one byte string to search."""
    import redis

    client = redis.Redis.from_url(url)
    parts: list[bytes] = []
    for key in client.scan_iter():
        parts.append(key)
        kind = client.type(key)
        if kind == b"string":
            parts.append(client.get(key) or b"")
        elif kind == b"list":
            parts.extend(client.lrange(key, 0, -1))
        elif kind == b"hash":
            parts.extend(b"".join(pair) for pair in client.hgetall(key).items())
        elif kind == b"set":
            parts.extend(client.smembers(key))
        elif kind == b"zset":
            parts.extend(client.zrange(key, 0, -1))
    return b"\n".join(parts)
