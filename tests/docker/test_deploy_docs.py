"""docs/deploy.md and its systemd units: the commands they give are real ``cxr`` commands, and the units verify."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxr.cli import app

DOCS = Path(__file__).resolve().parents[2] / "docs"
UNITS = sorted((DOCS / "systemd").glob("*.service"))
INSTALLED_CXR = "/opt/cxr/.venv/bin/cxr"


def parses(arguments: list[str]) -> bool:
    """Whether ``cxr <arguments>`` names a real command with valid options (parsed up to --help, not run)."""
    result = CliRunner().invoke(app, [*arguments, "--help"])
    return result.exit_code == 0 and "Usage:" in result.output


def cxr_invocations(text: str) -> list[list[str]]:
    """The ``cxr`` commands a text gives: run from the documented install prefix, or quoted as `cxr ...`."""
    installed = re.findall(r"/opt/cxr/\.venv/bin/cxr ([^\n`#|;]+)", text)
    quoted = re.findall(r"`cxr ([^`]+)`", text)
    return [shlex.split(command) for command in installed + quoted]


def test_every_command_in_the_guide_and_the_units_is_real() -> None:
    texts = [(DOCS / "deploy.md").read_text(), *(u.read_text() for u in UNITS)]
    invocations = [i for t in texts for i in cxr_invocations(t)]
    assert len(invocations) >= 10
    for arguments in invocations:
        assert parses(arguments), arguments
    assert not parses(["worker", "--no-such-option"]) and not parses(["no-such-command"])


def test_the_guide_enables_only_units_that_exist() -> None:
    guide = (DOCS / "deploy.md").read_text()
    names = {u.name.removesuffix(".service") for u in UNITS}
    enabled = re.findall(r"systemctl (?:enable --now|start|stop) ([^\n]+)", guide)
    for line in enabled:
        for unit in line.split():
            assert re.sub(r"@\d+$", "@", unit) in names, unit


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_units_verify(unit: Path, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # The units name the documented install prefix; here the venv's own cxr stands in for it.
    installed = Path(sys.executable).parent / "cxr"
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED_CXR, str(installed)))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.strip() == "" and "ignoring" not in result.stderr, result.stderr
    assert "User=cxr" in unit.read_text() and "ProtectSystem=strict" in unit.read_text()
