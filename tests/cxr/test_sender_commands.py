"""cxr.sender_commands: ``cxr senders list`` and ``cxr senders forget`` as an operator runs them, audited."""

from __future__ import annotations

import subprocess
from pathlib import Path

from db.audit import audit_trail
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.models import AuditKind
from db.senders import learned_senders, record_splitting
from tests.helpers.cli import run_cli


def senders(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return run_cli("senders", *arguments, "--config", str(tmp_path / "cxr.toml"), cwd=tmp_path)


def test_an_operator_lists_and_forgets_a_learned_sender(tmp_path: Path) -> None:
    config = tmp_path / "cxr.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\n')
    url = f"sqlite:///{tmp_path / 'var' / 'cxr.sqlite'}"
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    empty = senders(tmp_path, "list")
    assert empty.returncode == 0 and "every study completes at its association's release" in empty.stdout
    with sessions.begin() as session:
        assert record_splitting(session, "MODALITY") and not record_splitting(session, "MODALITY"), "new once"
    listed = senders(tmp_path, "list")
    assert listed.returncode == 0 and "MODALITY" in listed.stdout, listed.stdout
    forgotten = senders(tmp_path, "forget", "MODALITY")
    assert forgotten.returncode == 0 and "MODALITY forgotten" in forgotten.stdout, forgotten.stdout + forgotten.stderr
    again = senders(tmp_path, "forget", "MODALITY")
    assert again.returncode == 1 and "MODALITY is not a learned sender" in again.stdout
    odd = senders(tmp_path, "forget", "[bold]X")  # an AE title may hold brackets: printed, not read as markup
    assert odd.returncode == 1 and "[bold]X is not a learned sender" in odd.stdout, odd.stdout
    with sessions() as session:
        assert learned_senders(session) == []
        (event,) = audit_trail(session, kinds=[AuditKind.OPERATOR_ACTION])
    assert event.calling_ae_title == "MODALITY" and event.actor is not None and event.actor.startswith("cli:")
