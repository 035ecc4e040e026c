"""An in-process SCP for the dicom_node tests, and polling for what it records."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.events import Event

from config.settings import Settings
from db.engine import SessionFactory
from dicom_node.scp import StorageNode, start_node
from tests.helpers.peers import free_port


@dataclass
class Node:
    running: StorageNode
    settings: Settings
    enqueued: list[int] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.running.port

    def spooled_files(self) -> list[Path]:
        return sorted(p for p in self.settings.spool_dir.rglob("*") if p.is_file())


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


VERIFICATION = "1.2.840.10008.1.1"


def echo_seconds(port: int) -> float | None:
    """Seconds a C-ECHO to the node took, or None when it did not succeed."""
    started = time.monotonic()
    ae = AE(ae_title="PACS")
    ae.add_requested_context(VERIFICATION)
    ae.acse_timeout = ae.network_timeout = 10
    association = ae.associate("127.0.0.1", port, ae_title="CXR_AI")
    if not association.is_established:
        return None
    try:
        status = association.send_c_echo()
    finally:
        association.release()
    return time.monotonic() - started if status.get("Status") == 0 else None


def store(port: int, source: pydicom.Dataset | Path) -> tuple[int, str]:
    """(status, error comment) of one C-STORE to the node of a data set, or of a file as it is on disk (in its own
    transfer syntax)."""
    header = source if isinstance(source, pydicom.Dataset) else pydicom.dcmread(source, stop_before_pixels=True)
    ae = AE(ae_title="PACS")
    ae.add_requested_context(header.SOPClassUID, header.file_meta.TransferSyntaxUID)
    association = ae.associate("127.0.0.1", port, ae_title="CXR_AI")
    assert association.is_established
    try:
        response = association.send_c_store(source)
    finally:
        association.release()
    return int(response.Status), str(response.get("ErrorComment", ""))


@contextmanager
def scp_node(settings: Settings, session_factory: SessionFactory) -> Iterator[tuple[StorageNode, list[int]]]:
    """The in-process SCP on ``settings``; the job ids it enqueues are collected instead of sent to a broker."""
    enqueued: list[int] = []
    running = start_node(settings, session_factory, enqueued.append)
    try:
        yield running, enqueued
    finally:
        running.stop()


@contextmanager
def serving(ae: AE, on_store: Callable[[Event], int]) -> Iterator[int]:
    """``ae`` listening on a free port, ``on_store`` answering each C-STORE; yields the port, always shut down."""
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        yield port
    finally:
        server.shutdown()


@dataclass
class Stored:
    association: int
    """Which association carried it: the order in which the associations arrived, from 1."""
    sop_class_uid: str
    sop_instance_uid: str


@contextmanager
def recording_scp(answer: Callable[[str], int] = lambda sop_class: 0x0000) -> Iterator[tuple[int, list[Stored]]]:
    """A pynetdicom storage SCP taking every storage SOP class in any syntax, answering each C-STORE with
    ``answer(its SOP class)``; yields its port and what it stored (a refused object is not listed), by association."""
    ae = AE(ae_title="PACS")
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    stored: list[Stored] = []
    associations: dict[int, int] = {}

    def keep(event: Event) -> int:
        number = associations.setdefault(id(event.assoc), len(associations) + 1)
        request = event.request
        status = answer(str(request.AffectedSOPClassUID))
        if status == 0x0000:
            stored.append(Stored(number, str(request.AffectedSOPClassUID), str(request.AffectedSOPInstanceUID)))
        return status

    with serving(ae, keep) as port:
        yield port, stored
