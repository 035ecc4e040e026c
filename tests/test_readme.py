"""README.md: the walkthrough between its markers, run as a new user would paste it (its sh blocks in order, in one
shell, in an empty folder), with free ports and this clone's paths substituted, so it cannot rot."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers.peers import free_port, require_tool

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
START = "<!-- walkthrough:"
END = "<!-- walkthrough end -->"
BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def walkthrough_blocks(readme: str) -> list[str]:
    section = readme[readme.index(START) : readme.index(END)]
    return BLOCK.findall(section)


def as_script(blocks: list[str], pacs_port: int, node_port: int) -> str:
    """The blocks as one script; what a user types at the clone's root points at this clone from another folder."""
    script = "\n".join(blocks)
    script = script.replace("4242", str(pacs_port)).replace("11112", str(node_port))
    script = script.replace("make run", f"make -f {REPO}/Makefile run").replace(".venv/", f"{REPO}/.venv/")
    return "set -euo pipefail\n" + script


def test_the_readme_walkthrough_works_when_pasted_in_order(tmp_path: Path) -> None:
    for tool in ("storescp", "storescu", "make"):
        require_tool(tool)
    blocks = walkthrough_blocks((REPO / "README.md").read_text())
    assert len(blocks) == 3 and "make run" in blocks[0] and "storescu" in blocks[1] and "kill" in blocks[2]
    node_port, dashboard_port = free_port(), free_port()
    script = tmp_path / "walkthrough.sh"
    script.write_text(as_script(blocks, free_port(), node_port))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXR_")}
    env |= {"CXR_SCP__PORT": str(node_port), "CXR_DASHBOARD__PORT": str(dashboard_port)}
    process = subprocess.Popen(
        ["bash", str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    node_log = (tmp_path / "node.log").read_text() if (tmp_path / "node.log").exists() else ""
    assert process.returncode == 0, output[-3000:] + node_log[-3000:]
    assert f"ready: SCP on 0.0.0.0:{node_port} as CXR_AI" in output
    received = sorted(path.name for path in (tmp_path / "received").iterdir())
    assert [name[:2] for name in received] == ["PS", "SC", "SR"], received
    assert re.search(r"DELIVERED\W+1\b", output), output
    assert "Traceback" not in node_log
