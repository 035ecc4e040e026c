"""tests.helpers.peers: a missing peer skips a test on a developer's machine and fails it under CI, where .ci/run
provides every peer; each pytest worker's free ports come from a range of its own."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.helpers.peers import FIRST_PORT, PORTS_PER_WORKER, WORKER_RANGES, free_port, require_tool

ABSENT = "cxr-no-such-peer"


def test_a_missing_peer_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=ABSENT):
        require_tool(ABSENT)


def test_a_missing_peer_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"{ABSENT} is not installed .*under CI"):
        require_tool(ABSENT)
    assert require_tool("sh").endswith("/sh"), "a present peer is found under CI too"


def test_two_workers_free_ports_never_meet_and_stay_below_the_ephemeral_range(monkeypatch: pytest.MonkeyPatch) -> None:
    ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    seen: dict[str, set[int]] = {}
    for worker in ("gw0", "gw1", "gw11"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        seen[worker] = {free_port() for _ in range(50)}
        assert len(seen[worker]) == 50, "one worker never hands out a port twice in a row"
        assert all(FIRST_PORT <= port < ephemeral for port in seen[worker])
    assert not seen["gw0"] & seen["gw1"] and not seen["gw1"] & seen["gw11"]
    assert max(seen["gw11"]) < FIRST_PORT + WORKER_RANGES * PORTS_PER_WORKER


def test_a_port_someone_listens_on_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    first = FIRST_PORT + 3 * PORTS_PER_WORKER

    def after(port: int) -> int:
        return first + (port + 1 - first) % PORTS_PER_WORKER

    upcoming = after(free_port())
    with socket.create_server(("127.0.0.1", upcoming)):
        assert free_port() == after(upcoming)
