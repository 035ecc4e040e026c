"""Makefile: ``make run`` from a site folder (``make -f <clone>/Makefile run``) starts the node on that folder's
cxr.toml, and a supervisor that sends SIGTERM to make's process alone, not its group, stops every part."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.peers import free_port, require_tool

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]


def processes_in(folder: Path) -> list[int]:
    """PIDs whose working directory is ``folder``: every part the node started there."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cwd").resolve() == folder.resolve():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_sigterm_to_make_alone_stops_every_part_of_the_node(tmp_path: Path) -> None:
    require_tool("make")
    (tmp_path / "cxr.toml").write_text(f"[scp]\nport = {free_port()}\n[dashboard]\nport = {free_port()}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXR_")}
    log = tmp_path / "node.log"
    with log.open("wb") as sink:
        make = subprocess.Popen(
            ["make", "-f", str(REPO / "Makefile"), "run"],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "ready: SCP" not in log.read_text() and time.monotonic() < deadline and make.poll() is None:
            time.sleep(0.5)
        assert "ready: SCP" in log.read_text(), log.read_text()[-3000:]
        parts = set(processes_in(tmp_path)) - {make.pid}
        assert len(parts) >= 6, parts  # cxr serve, the SCP, two workers, the sweeper and the dashboard
        make.send_signal(signal.SIGTERM)
        stopped_by = time.monotonic() + 15
        while parts & set(processes_in(tmp_path)) and time.monotonic() < stopped_by:
            time.sleep(0.2)
        assert not parts & set(processes_in(tmp_path)), "parts left running 15 s after make's SIGTERM"
        make.wait(timeout=15)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
