"""cxr.cli: the operator commands as a user runs them: ``cxr echo`` against a real peer, ``cxr requeue`` and ``cxr
status``."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from db.audit import audit_trail
from db.engine import make_engine, make_session_factory
from db.jobs import create_job, job_events, job_state, transition_job
from db.migrate import upgrade
from db.models import AuditKind, JobState, utcnow
from db.studies import record_instance
from tests.helpers.peers import free_port, storescp
from tests.helpers.pipeline import facts


def cxr(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cxr", *args, "--config", str(config)], capture_output=True, text=True, timeout=120
    )


def test_echo_reports_a_reachable_and_an_unreachable_peer(tmp_path: Path) -> None:
    config = tmp_path / "cxr.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\n')
    with storescp(tmp_path / "pacs") as port:
        ok = cxr("echo", f"PACS@127.0.0.1:{port}", config=config)
    assert ok.returncode == 0 and "C-ECHO OK" in ok.stdout
    down = cxr("echo", f"PACS@127.0.0.1:{free_port()}", config=config)
    assert down.returncode == 1 and "failed" in down.stdout
    bad = cxr("echo", "not-a-target", config=config)
    assert bad.returncode == 2


def test_requeue_and_status(tmp_path: Path) -> None:
    config = tmp_path / "cxr.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\n')
    database_url = f"sqlite:///{tmp_path / 'var' / 'cxr.sqlite'}"
    upgrade(database_url)
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with sessions.begin() as s:
        study_id = record_instance(s, facts("1.2.3.4"), utcnow() + timedelta(hours=1)).study_id
        job_id = create_job(s, study_id, "baseline", JobState.QUEUED)
        transition_job(s, job_id, JobState.DEAD_LETTER, reason="delivery failed: pacs down")
    status = cxr("status", config=config)
    assert status.returncode == 0 and "DEAD_LETTER" in status.stdout
    assert "dead letters: 1" in status.stdout and "oldest waiting job: none" in status.stdout
    requeued = cxr("requeue", str(job_id), config=config)
    assert requeued.returncode == 0, requeued.stdout + requeued.stderr
    after = cxr("status", config=config)
    assert "analysis queue (gpu): 1 messages" in after.stdout, after.stdout
    assert f"oldest waiting job: {job_id}" in after.stdout and "dead letters: 0" in after.stdout
    with sessions() as s:
        assert job_state(s, job_id) is JobState.QUEUED
        state, detail = job_events(s, job_id)[-1]
        assert state is JobState.QUEUED and detail is not None and detail.startswith("requeued by cli:")
        (audit,) = audit_trail(s, kinds=[AuditKind.OPERATOR_ACTION])
        assert (
            audit.actor is not None
            and audit.actor.startswith("cli:")
            and audit.detail == f"requeue job {job_id} (was DEAD_LETTER)"
        )
    missing = cxr("requeue", "999", config=config)
    assert missing.returncode == 1 and "does not exist" in missing.stdout
    engine.dispose()
