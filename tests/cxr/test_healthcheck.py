"""cxr.health: ``cxr healthcheck``, what the container HEALTHCHECKs and monitoring run, against a real node."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.node import cxr_serve
from tests.helpers.peers import wait_for_port

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
