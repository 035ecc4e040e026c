"""cxr.preflight through the commands: a port in use, a data directory that cannot be written, and a database that does
not answer each stop ``cxr serve`` (or the part) at once with one line per problem, exit code 2, nothing started and
nothing migrated; a broker that does not answer is a warning line. URLs are named without their passwords."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.peers import free_port


@contextmanager
def occupied_port() -> Iterator[int]:
    """A port this test process listens on."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def lines(result: object) -> list[str]:
    out = getattr(result, "stdout", "") + getattr(result, "stderr", "")
    return [line for line in out.splitlines() if line.strip()]


def config(tmp_path: Path, scp_port: int, dashboard_port: int, extra: str = "") -> Path:
    path = tmp_path / "cxr.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "var"}"\n{extra}\n[scp]\nhost = "127.0.0.1"\nport = {scp_port}\n'
        f'[dashboard]\nhost = "127.0.0.1"\nport = {dashboard_port}\n'
    )
    return path


@pytest.mark.parametrize(("command", "part"), [("serve", "SCP"), ("serve", "dashboard"), ("scp", "SCP")])
def test_a_port_in_use_is_named_with_the_process_that_holds_it(tmp_path: Path, command: str, part: str) -> None:
    with occupied_port() as port:
        ports = {"SCP": free_port(), "dashboard": free_port()} | {part: port}
        result = run_cli(command, "--config", str(config(tmp_path, ports["SCP"], ports["dashboard"])), cwd=tmp_path)
    assert result.returncode == 2
    (line,) = lines(result)
    assert f"{part} port {port} on 127.0.0.1 is already in use by pid {os.getpid()}" in line, line
    assert "is another node running?" in line
    assert not (tmp_path / "var" / "cxr.sqlite").exists(), "nothing migrated"
    assert not (tmp_path / "var" / "broker.sqlite").exists(), "no broker tables made"


def test_a_data_directory_that_cannot_be_written_stops_the_node(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data directory should be")
    path = config(tmp_path, free_port(), free_port())
    path.write_text(path.read_text().replace(f'data_dir = "{tmp_path / "var"}"', f'data_dir = "{blocker / "var"}"'))
    result = run_cli("serve", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    (line,) = lines(result)
    assert f"data directory {blocker / 'var'} cannot be written" in line, line


def test_an_unreachable_database_stops_the_node_and_an_unreachable_broker_is_named(tmp_path: Path) -> None:
    """Both named without their passwords. The database stops the node; the broker only warns, because the node is
    built to receive and record while the broker is away (tests/integration/test_recovery.py)."""
    database_port, broker_port = free_port(), free_port()
    urls = (
        f'database_url = "postgresql+psycopg://cxr:s3cret-db@127.0.0.1:{database_port}/cxr"\n'
        f'broker_url = "redis://:s3cret-broker@127.0.0.1:{broker_port}/0"'
    )
    result = run_cli("serve", "--config", str(config(tmp_path, free_port(), free_port(), urls)), cwd=tmp_path)
    assert result.returncode == 2
    broker, database = lines(result)
    assert database.startswith(f"cannot start: database postgresql+psycopg://cxr:***@127.0.0.1:{database_port}/cxr")
    assert "cannot be reached" in database
    assert broker.startswith(f"warning: broker redis://:**@127.0.0.1:{broker_port}/0 cannot be reached")
    assert broker.endswith("studies are received and recorded, and analysed once it answers")
    assert "s3cret" not in result.stdout + result.stderr
    assert not list((tmp_path / "var").glob("*.sqlite")), "nothing migrated, no broker database made"
