"""dicom_node.senders and the release handler: a sender that sends each study over one association has its studies
complete at the release; one seen to split a study across associations has its studies wait the debounce."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pydicom
from sqlalchemy import select

from config.settings import ScpSettings, Settings
from db.engine import SessionFactory
from db.models import SplittingSender
from db.senders import forget_sender, record_splitting
from dicom_node.scp import start_node
from dicom_node.senders import SenderHabits
from tests.helpers.encode_cases import derived_uid
from tests.helpers.flow import write_copies
from tests.helpers.peers import storescu
from tests.helpers.scp import wait_for

DEBOUNCE_S = 3.0


def test_a_sender_waits_the_debounce_once_it_split_a_study(session_factory: SessionFactory) -> None:
    """What one SCP process learns, another (or the same one restarted) knows from the database."""
    habits, other = SenderHabits(DEBOUNCE_S, learn=True), SenderHabits(DEBOUNCE_S, learn=True)
    with session_factory.begin() as session:
        assert habits.debounce_s(session, "PACS") == 0.0 and other.debounce_s(session, "MODALITY") == 0.0
        habits.note_split(session, "MODALITY")
        assert habits.debounce_s(session, "MODALITY") == DEBOUNCE_S and habits.debounce_s(session, "PACS") == 0.0
    with session_factory.begin() as session:
        assert other.debounce_s(session, "MODALITY") == DEBOUNCE_S and other.debounce_s(session, "PACS") == 0.0
        assert SenderHabits(DEBOUNCE_S, learn=False).debounce_s(session, "PACS") == DEBOUNCE_S
    with session_factory.begin() as session:
        assert forget_sender(session, "MODALITY") and not forget_sender(session, "PACS")
    with session_factory.begin() as session:
        assert habits.debounce_s(session, "MODALITY") == 0.0, "forgotten at once, in a process that learned it too"


def test_a_sender_recorded_by_two_processes_is_one_row_and_neither_fails(session_factory: SessionFactory) -> None:
    """Each records in the transaction that schedules its studies' completion: the second insert of the same sender
    is skipped, never an error that would roll the completion back."""
    first, second = session_factory(), session_factory()
    try:
        SenderHabits(DEBOUNCE_S, learn=True).note_split(first, "MODALITY")
        first.commit()
        SenderHabits(DEBOUNCE_S, learn=True).note_split(second, "MODALITY")  # its process had not seen the first's
        second.commit()
    finally:
        first.close()
        second.close()
    with session_factory.begin() as session:
        assert session.scalars(select(SplittingSender.calling_ae_title)).all() == ["MODALITY"]
        assert not record_splitting(session, "MODALITY") and record_splitting(session, "CT1"), "new, or not"


def _study(rg1: Path, directory: Path, tag: str, images: int) -> list[Path]:
    return write_copies(pydicom.dcmread(rg1), directory, images, tag, study_uid=derived_uid(tag, "study"))


def test_the_scp_learns_which_senders_split_studies(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    scp = ScpSettings(host="127.0.0.1", port=0, completion_debounce_s=DEBOUNCE_S, completion_poll_s=0.05)
    enqueued: list[int] = []
    running = start_node(Settings(data_dir=tmp_path / "var", scp=scp), session_factory, enqueued.append)
    try:
        # A PACS forwarding a two-image study over one association: complete at the release.
        started = time.monotonic()
        forward = ["storescu", "-aec", "CXR_AI", "-aet", "PACS", "127.0.0.1", str(running.port)]
        assert subprocess.run([*forward, *map(str, _study(rg1, tmp_path, "forward", 2))], check=False).returncode == 0
        wait_for(lambda: len(enqueued) == 1, timeout_s=DEBOUNCE_S)
        assert time.monotonic() - started < DEBOUNCE_S
        # A modality sending each image over its own association: its first study completes at the first release
        # (one job), and the second image makes a follow-up job; from then on it waits the debounce.
        first, second = _study(rg1, tmp_path, "per-image-1", 2)
        assert storescu(first, running.port, "CXR_AI", "-aet", "MODALITY").returncode == 0
        wait_for(lambda: len(enqueued) == 2, timeout_s=DEBOUNCE_S)
        assert storescu(second, running.port, "CXR_AI", "-aet", "MODALITY").returncode == 0
        wait_for(lambda: len(enqueued) == 3, timeout_s=3 * DEBOUNCE_S)
        _one_job_for_a_split_study(_study(rg1, tmp_path, "per-image-2", 2), running.port, enqueued)
    finally:
        running.stop()
    # Restarted, the SCP still knows the modality splits studies (the database keeps it).
    running = start_node(Settings(data_dir=tmp_path / "var", scp=scp), session_factory, enqueued.append)
    try:
        _one_job_for_a_split_study(_study(rg1, tmp_path, "per-image-3", 2), running.port, enqueued)
    finally:
        running.stop()


def _one_job_for_a_split_study(images: list[Path], port: int, enqueued: list[int]) -> None:
    """A learned sender's study, one image per association: nothing at the first release, then one job."""
    before = len(enqueued)
    for image in images:
        assert storescu(image, port, "CXR_AI", "-aet", "MODALITY").returncode == 0
    assert len(enqueued) == before, "the first image's release did not complete the study at once"
    wait_for(lambda: len(enqueued) == before + 1, timeout_s=3 * DEBOUNCE_S)
    time.sleep(DEBOUNCE_S / 2)
    assert len(enqueued) == before + 1, "the learned sender's study made one job"
