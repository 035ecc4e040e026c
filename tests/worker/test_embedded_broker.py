"""worker.embedded_broker: the embedded broker: kombu's SQLite transport polled every 100 ms; a message goes in and
comes out, its tables are made once before workers connect, and it waits out a long write lock."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from kombu.transport.sqlalchemy.models import metadata as kombu_metadata
from sqlalchemy import MetaData, Table, create_engine, event
from sqlalchemy.exc import OperationalError

from config.settings import Settings
from cxr.preflight import embedded_broker_problem
from worker.celery_app import create_celery_app
from worker.embedded_broker import POLLING_INTERVAL_S, EmbeddedTransport, create_tables

SQLITE_DEFAULT_BUSY_S = 5.0


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


def test_the_broker_tables_are_made_once_before_workers_connect(tmp_path: Path) -> None:
    """``cxr serve``'s preflight makes kombu's tables, so two workers' first connections do not race to create them
    (the loser's consumer reconnected in a CI run)."""
    url = f"sqla+sqlite:///{tmp_path / 'var' / 'broker.sqlite'}"
    assert embedded_broker_problem(url) is None
    with sqlite3.connect(tmp_path / "var" / "broker.sqlite") as database:
        tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"kombu_queue", "kombu_message"} <= tables
    (tmp_path / "file").write_text("")
    problem = embedded_broker_problem(f"sqla+sqlite:///{tmp_path / 'file' / 'broker.sqlite'}")
    assert problem is not None and problem.startswith("embedded broker") and "cannot be opened" in problem


def test_a_poll_waits_out_a_write_lock_longer_than_sqlites_default(tmp_path: Path) -> None:
    """SQLite's busy timeout is 5 s; a loaded machine can hold the write lock longer, and a worker's poll that gives up
    reads as a lost broker connection: its consumer reconnects."""
    settings = Settings(data_dir=tmp_path)
    create_tables(settings.broker_url)
    with create_celery_app(settings).connection_for_write() as producer:
        producer.SimpleQueue("probe").put({"job_id": 2})
    holder = sqlite3.connect(tmp_path / "broker.sqlite", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(SQLITE_DEFAULT_BUSY_S + 1.0, holder.rollback)
    started = time.monotonic()
    release.start()
    try:
        with create_celery_app(settings).connection_for_read() as consumer:
            message = consumer.SimpleQueue("probe").get(timeout=15)
            assert message.payload == {"job_id": 2}
            message.ack()
    finally:
        release.join()
        holder.close()
    assert time.monotonic() - started > SQLITE_DEFAULT_BUSY_S


def test_parts_started_together_make_the_tables_once_between_them(tmp_path: Path) -> None:
    """``cxr scp`` and ``cxr worker`` started on their own each make the tables at start. Racing, one finds a table
    made by the other between its look and its CREATE; it looks again instead of failing. The race is made to happen:
    another connection makes the tables at that moment (four processes started together met it too rarely to test)."""
    path = tmp_path / "broker.sqlite"
    url = f"sqla+sqlite:///{path}"

    def other_part_wins(target: MetaData, connection: object, tables: list[Table], **_: object) -> None:
        if not won:
            won.append(True)
            other = create_engine(f"sqlite:///{path}")
            for table in tables:
                table.create(other)
            other.dispose()

    won: list[bool] = []
    event.listen(kombu_metadata, "before_create", other_part_wins)
    try:
        with pytest.raises(OperationalError, match="already exists"):
            create_tables(url, attempts=1)  # the race is real: without a second look, the part fails to start
        won.clear()
        path.unlink()
        create_tables(url)
    finally:
        event.remove(kombu_metadata, "before_create", other_part_wins)
    assert won, "the other part made the tables between this one's look and its CREATE"
    with sqlite3.connect(path) as database:
        tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"kombu_queue", "kombu_message"} <= tables


def test_workers_starting_together_make_a_queue_once_between_them(tmp_path: Path) -> None:
    """Two analysis workers started together both consume the urgent lane: each looks for its queue's row, finds none
    and inserts one, and the loser's insert fails on the unique name (a worker died of it at its start in a CI run).
    The race is made to happen: another connection inserts the row between this channel's look and its insert."""
    settings = Settings(data_dir=tmp_path)
    create_tables(settings.broker_url)
    path = tmp_path / "broker.sqlite"
    won: list[bool] = []
    with create_celery_app(settings).connection_for_write() as connection:
        channel = connection.default_channel

        def other_worker_wins(session: object, context: object, instances: object) -> None:
            if not won and any(isinstance(new, channel.queue_cls) for new in channel.session.new):
                won.append(True)
                with sqlite3.connect(path) as other:
                    other.execute("INSERT INTO kombu_queue (name) VALUES ('stat')")

        event.listen(channel.session, "before_flush", other_worker_wins)
        assert channel._get_or_create("stat").name == "stat"
        connection.SimpleQueue("stat").put({"job_id": 3})
    assert won, "the other worker inserted the row between this one's look and its insert"
    with sqlite3.connect(path) as database:
        assert database.execute("SELECT count(*) FROM kombu_queue WHERE name = 'stat'").fetchone() == (1,)
        assert database.execute("SELECT count(*) FROM kombu_message").fetchone() == (1,)
