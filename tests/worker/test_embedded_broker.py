"""worker.embedded_broker: the embedded broker: kombu's SQLite transport polled every 100 ms; a message goes in and
comes out."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from config.settings import Settings
from worker.celery_app import create_celery_app
from worker.embedded_broker import POLLING_INTERVAL_S, EmbeddedTransport


def test_the_default_broker_is_sqlite_polled_often(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.broker_url.startswith("sqla+sqlite:///")
    with create_celery_app(settings).connection_for_write() as connection:
        assert isinstance(connection.transport, EmbeddedTransport)
        assert connection.transport.polling_interval == POLLING_INTERVAL_S
        assert str(connection.hostname).endswith("broker.sqlite")


def test_a_waiting_consumer_sees_a_message_within_a_poll(tmp_path: Path) -> None:
    """The consumer is already waiting on an empty queue when the message is put: kombu's default one-second poll
    would find it up to a second later."""
    app = create_celery_app(Settings(data_dir=tmp_path))
    put_at: list[float] = []

    def produce() -> None:
        time.sleep(0.3)
        with app.connection_for_write() as producer:
            put_at.append(time.monotonic())
            producer.SimpleQueue("probe").put({"job_id": 1})

    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue("probe")
        thread = threading.Thread(target=produce)
        thread.start()
        message = queue.get(timeout=5)
        got_at = time.monotonic()
        thread.join()
        assert message.payload == {"job_id": 1}
        message.ack()
        queue.close()
    assert got_at - put_at[0] < 0.5


def test_redis_keeps_kombus_own_transport(tmp_path: Path) -> None:
    app = create_celery_app(Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/11"))
    assert app.conf.broker_transport is None
    assert app.conf.broker_url == "redis://127.0.0.1:6379/11"
