"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, polled every 100 ms.

kombu's virtual transports poll an idle queue once a second, and its SQLAlchemy transport hands every transport
option to ``create_engine``, so ``polling_interval`` cannot be set through Celery's options. Each hop of a study
(analysis, then delivery) waited up to that second: 2.1 s end to end at the median on two cores, against 0.7 s on
Redis (bench/RESULTS.md). A subclass with a shorter interval, named as Celery's ``broker_transport``, keeps the
URL a user writes (``sqla+sqlite:///…``) and everything else kombu does.

Each worker process would otherwise create kombu's tables on its first connection; two doing so at once race (one
finds the table made under it) and the loser's consumer reconnects. ``create_tables`` runs once, before ``cxr serve``
starts its workers. SQLite's own busy timeout is 5 s; a loaded machine's fsyncs can hold the write lock longer, so
the transport waits up to ``BUSY_TIMEOUT_S`` before a poll counts as a lost connection.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

from kombu import Connection
from kombu.transport import sqlalchemy
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import IntegrityError, OperationalError

EMBEDDED_PREFIX = "sqla+sqlite"
POLLING_INTERVAL_S = 0.1
BUSY_TIMEOUT_S = 30.0


class EmbeddedChannel(sqlalchemy.Channel):
    def _engine_from_config(self) -> Engine:
        client = self.connection.client
        if client is None or not client.hostname:
            raise ValueError("the embedded broker needs a sqla+sqlite:/// URL")
        return create_engine(client.hostname, connect_args={"timeout": BUSY_TIMEOUT_S})

    def _get_or_create(self, queue: str) -> Any:
        """kombu's, for processes that name a new queue at once: kombu's lock is per process, so two analysis workers
        starting together (both consume the urgent lane) each find no row for it and insert one, and the loser's
        insert fails on the unique name. It takes the winner's row instead of failing its worker's start."""
        kombus: Any = super()._get_or_create  # type: ignore[misc]  # kombu's stubs leave out its private methods
        try:
            return kombus(queue)
        except IntegrityError:
            self.session.rollback()
            return kombus(queue)


class EmbeddedTransport(sqlalchemy.Transport):
    Channel = EmbeddedChannel
    polling_interval = POLLING_INTERVAL_S


def broker_connection(broker_url: str) -> tuple[str, str | None]:
    """(the URL to give Celery, the transport class to name, or None for kombu's choice from the URL)."""
    if broker_url.startswith(EMBEDDED_PREFIX):
        return broker_url.removeprefix("sqla+"), f"{__name__}:EmbeddedTransport"
    return broker_url, None


def ensure_directory(broker_url: str) -> None:
    """The embedded broker is a SQLite file; SQLite creates the file but not its directory."""
    prefix = "sqla+sqlite:///"
    if broker_url.startswith(prefix) and broker_url != prefix + ":memory:":
        Path(broker_url.removeprefix(prefix)).parent.mkdir(parents=True, exist_ok=True)


def create_tables(broker_url: str, attempts: int = 3) -> None:
    """kombu's queue and message tables, made by ``cxr serve`` before any worker connects (see the module's note).
    Parts started on their own (``cxr scp``, ``cxr worker``) call it too and may race each other: the loser finds the
    tables made under it and looks again."""
    ensure_directory(broker_url)
    url, transport = broker_connection(broker_url)
    for attempt in range(attempts):
        try:
            with Connection(url, transport=transport) as connection:
                cast(EmbeddedChannel, connection.default_channel).session.close()
            return
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
