"""cxr.startup as the long-running commands use it: on a database that was never migrated, ``cxr scp``, ``cxr worker``,
``cxr sweeper`` and ``cxr dashboard`` stop at once with one line that names the database and ``cxr db upgrade``;
after the upgrade, ``cxr scp`` stores RG1 with 0x0000."""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE

from cxr.serve import stop_processes
from tests.helpers.cli import run_cli
from tests.helpers.node import start_cxr
from tests.helpers.peers import free_port, wait_for_port


def node_config(tmp_path: Path, scp_port: int) -> Path:
    config = tmp_path / "cxr.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "var"}"\n\n[scp]\nhost = "127.0.0.1"\nport = {scp_port}\n\n'
        f"[dashboard]\nport = {free_port()}\n"
    )
    return config


@pytest.mark.parametrize("command", ["scp", "worker", "sweeper", "dashboard"])
def test_a_command_refuses_an_unmigrated_database_in_one_line(tmp_path: Path, command: str) -> None:
    config = node_config(tmp_path, free_port())
    started = time.monotonic()
    result = run_cli(command, "--config", str(config), cwd=tmp_path)
    elapsed = time.monotonic() - started
    database = tmp_path / "var" / "cxr.sqlite"
    assert result.returncode == 2, result.stdout + result.stderr
    # "At once": no wait for a database that will never be migrated. The bound only tells that from a retry loop; the
    # start-up itself (imports) takes 3 to 6 s on a loaded CI machine, and speed lives in bench/, not in tests.
    assert elapsed < 20.0, f"took {elapsed:.1f} s"
    (line,) = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert str(database) in line and "cxr db upgrade" in line, line
    assert not database.exists(), "the check creates no database"


def test_scp_stores_rg1_once_the_database_is_upgraded(tmp_path: Path, rg1: Path) -> None:
    port = free_port()
    config = node_config(tmp_path, port)
    refused = run_cli("scp", "--config", str(config), cwd=tmp_path)
    assert refused.returncode == 2 and "cxr db upgrade" in refused.stdout
    upgraded = run_cli("db", "upgrade", "--config", str(config), cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    scp = start_cxr("scp", config, tmp_path / "scp.log")
    try:
        wait_for_port(port)
        ae = AE(ae_title="PACS")
        ae.add_requested_context(pydicom.dcmread(rg1, stop_before_pixels=True).SOPClassUID)
        association = ae.associate("127.0.0.1", port, ae_title="CXR_AI")
        assert association.is_established
        status = association.send_c_store(pydicom.dcmread(rg1))
        association.release()
    finally:
        stop_processes([scp])
    assert status.Status == 0x0000


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        (
            "[urgency]\ncritical_thresholds = { Pnuemothorax = 0.5 }\n",
            "unknown label(s) in urgency.critical_thresholds: Pnuemothorax",
        ),
        (
            '[[destinations]]\nname = "pacs"\nae_title = "PACS"\nhost = "h"\nport = 104\n'
            '[[hl7]]\nname = "pacs"\nhost = "h"\nport = 2575\n',
            "destination names must be unique across destinations, hl7, fhir and webhooks: ['pacs']",
        ),
    ],
)
def test_a_clinical_output_misconfiguration_is_one_line_and_exit_2(tmp_path: Path, toml: str, problem: str) -> None:
    config = tmp_path / "cxr.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\n{toml}')
    result = run_cli("status", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stdout.splitlines()
    assert line.startswith("configuration error:") and problem in line
