"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, polled every 100 ms.

kombu's virtual transports poll an idle queue once a second, and its SQLAlchemy transport hands every transport
option to ``create_engine``, so ``polling_interval`` cannot be set through Celery's options. Each hop of a study
(analysis, then delivery) waited up to that second: 2.1 s end to end at the median on two cores, against 0.7 s on
Redis (bench/RESULTS.md). A subclass with a shorter interval, named as Celery's ``broker_transport``, keeps the
URL a user writes (``sqla+sqlite:///…``) and everything else kombu does.
"""

from __future__ import annotations

from kombu.transport import sqlalchemy

EMBEDDED_PREFIX = "sqla+sqlite"
POLLING_INTERVAL_S = 0.1


class EmbeddedTransport(sqlalchemy.Transport):
    polling_interval = POLLING_INTERVAL_S


def broker_connection(broker_url: str) -> tuple[str, str | None]:
    """(the URL to give Celery, the transport class to name, or None for kombu's choice from the URL)."""
    if broker_url.startswith(EMBEDDED_PREFIX):
        return broker_url.removeprefix("sqla+"), f"{__name__}:EmbeddedTransport"
    return broker_url, None
