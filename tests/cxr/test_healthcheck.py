"""cxr.health: ``cxr healthcheck``, what the container HEALTHCHECKs and monitoring run, against a real node."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.node import cxr_serve, wait_for_files
from tests.helpers.peers import storescp, storescu, wait_for_port

pytestmark = pytest.mark.integration


def healthcheck(role: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cxr", "healthcheck", role, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_healthy_while_serving_and_unhealthy_after(tmp_path: Path) -> None:
    # An allow-list that does not name the node itself: the check must still get its C-ECHO accepted.
    with cxr_serve(tmp_path / "node", None, scp_toml='allowed_calling_aets = ["PACS"]') as node:
        wait_for_port(node.dashboard_port)
        for role in ("scp", "dashboard"):
            result = healthcheck(role, node.config)
            assert result.returncode == 0 and f"{role} healthy" in result.stdout, result.stdout + result.stderr
    for role in ("scp", "dashboard"):
        result = healthcheck(role, node.config)
        assert result.returncode == 1 and f"{role} unhealthy" in result.stdout


def test_the_ready_line_comes_once_every_part_is_up_and_the_node_check_agrees(tmp_path: Path, rg1: Path) -> None:
    with storescp(tmp_path / "pacs") as pacs_port, cxr_serve(tmp_path / "node", pacs_port) as node:
        expected = (
            f"ready: SCP on 127.0.0.1:{node.port} as CXR_AI, workers gpu, io, "
            f"dashboard http://127.0.0.1:{node.dashboard_port}/"
        )
        deadline = time.monotonic() + 90
        while expected not in node.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        log = node.log.read_text()
        assert log.count(expected) == 1, log[-3000:]
        result = healthcheck("node", node.config)
        assert result.returncode == 0 and "node healthy" in result.stdout, result.stdout + result.stderr
        assert storescu(rg1, node.port).returncode == 0
        assert len(wait_for_files(tmp_path / "pacs", 3, timeout_s=60)) == 3
    for noise in ("-------------- gpu@", "[tasks]", "CPendingDeprecationWarning", "Association request failed"):
        assert noise not in log, f"start-up noise: {noise}"
    after = healthcheck("node", node.config)
    assert after.returncode == 1 and "node unhealthy: nothing listens on port" in after.stdout
