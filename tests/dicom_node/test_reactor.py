"""dicom_node.reactor: the SCP's associations wait for work instead of polling, and still end every way they can; the
associations the node requests (dicom_node.scu) never lose a response to their own reactor."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import ComputedRadiographyImageStorage
from pynetdicom.transport import ThreadedAssociationServer

from config.outputs import Destination
from config.settings import ScpSettings, Settings
from db.engine import SessionFactory
from dicom_node import reactor
from dicom_node.reactor import LONGEST_WAIT_S, EventDrivenAssociation, EventDrivenDUL
from dicom_node.scp import start_node
from dicom_node.scu import send_files
from dicom_node.sockets import readable
from tests.helpers.peers import storescp
from tests.helpers.scp import VERIFICATION, Node, wait_for
from tests.helpers.synthetic import write_dicom


def _accepted(server: ThreadedAssociationServer, count: int = 1) -> list[EventDrivenAssociation]:
    wait_for(lambda: len(server.active_associations) == count)
    accepted = server.active_associations
    assert all(isinstance(a, EventDrivenAssociation) and isinstance(a.dul, EventDrivenDUL) for a in accepted)
    return [a for a in accepted if isinstance(a, EventDrivenAssociation)]


def _counting(target: Any, name: str) -> list[int]:
    """Count the calls of a live object's method (each reactor calls its one once per pass), leaving what it does."""
    calls = [0]
    method: Callable[..., Any] = getattr(target, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return method(*args, **kwargs)

    setattr(target, name, counted)
    return calls


def _ended(association: Association) -> Callable[[], bool]:
    return lambda: not association.is_alive() and not association.dul.is_alive()


def _requestor(port: int, title: str = "PACS") -> Association:
    ae = AE(ae_title=title)
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(ComputedRadiographyImageStorage, ExplicitVRLittleEndian)
    association = ae.associate("127.0.0.1", port, ae_title="CXR_AI")
    assert association.is_established
    return association


def test_an_idle_association_waits_instead_of_polling(node: Node, rg1: Path) -> None:
    requestor = _requestor(node.port)
    try:
        (accepted,) = _accepted(node.running.server)
        dul_passes = _counting(accepted.dul, "_process_recv_primitive")
        association_passes = _counting(accepted.dimse, "get_msg")
        time.sleep(1.0)
        # pynetdicom's reactors each look about 900 times a second; ours wake when signalled, or after LONGEST_WAIT_S.
        most = 2 / LONGEST_WAIT_S
        assert dul_passes[0] <= most, f"the DUL thread looked {dul_passes[0]} times in an idle second"
        assert association_passes[0] <= most, f"the association looked {association_passes[0]} times"
        # Waking is prompt: a C-STORE and a C-ECHO are served by the same reactors that were waiting.
        assert int(requestor.send_c_store(pydicom.dcmread(rg1)).Status) == 0
        assert int(requestor.send_c_echo().Status) == 0
        assert association_passes[0] > 0 and dul_passes[0] > 0
    finally:
        requestor.release()
    wait_for(_ended(accepted))
    assert accepted.is_released


def test_a_silent_association_is_still_ended_by_the_network_timeout(
    tmp_path: Path, session_factory: SessionFactory
) -> None:
    settings = Settings(data_dir=tmp_path / "var", scp=ScpSettings(host="127.0.0.1", port=0, network_timeout_s=1.0))
    running = start_node(settings, session_factory, lambda job_id: None)
    aborted = threading.Event()
    try:
        ae = AE(ae_title="PACS")
        ae.add_requested_context(VERIFICATION)
        requestor = ae.associate(
            "127.0.0.1", running.port, ae_title="CXR_AI", evt_handlers=[(evt.EVT_ABORTED, lambda e: aborted.set())]
        )
        assert requestor.is_established
        (accepted,) = _accepted(running.server)
        assert aborted.wait(timeout=10), "the SCP aborted the association that sent nothing for network_timeout_s"
        wait_for(_ended(accepted))
        assert accepted.is_aborted
    finally:
        running.stop()


def test_a_peer_abort_ends_only_its_own_association(node: Node) -> None:
    aborting, staying = _requestor(node.port, "ABORTS"), _requestor(node.port, "STAYS")
    accepted = _accepted(node.running.server, 2)
    aborting.abort()
    wait_for(lambda: len(node.running.server.active_associations) == 1)
    (ended,) = [a for a in accepted if a not in node.running.server.active_associations]
    wait_for(_ended(ended))
    assert ended.is_aborted
    assert int(staying.send_c_echo().Status) == 0, "the other association is served as before"
    staying.release()
    wait_for(lambda: not node.running.server.active_associations)


def test_stopping_the_node_aborts_the_associations_its_peers_keep_open(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    running = start_node(
        Settings(data_dir=tmp_path / "var", scp=ScpSettings(host="127.0.0.1", port=0)),
        session_factory,
        lambda job_id: None,
    )
    stored = _requestor(running.port, "KEEPS")
    idle = _requestor(running.port, "IDLES")
    accepted = _accepted(running.server, 2)
    assert int(stored.send_c_store(pydicom.dcmread(rg1)).Status) == 0
    running.stop()
    wait_for(lambda: stored.is_aborted and idle.is_aborted, timeout_s=5)
    for association in accepted:
        wait_for(_ended(association), timeout_s=5)


class DeschedulingCheckpoint(threading.Event):
    """A reactor checkpoint whose waiter loses the CPU for 50 ms just after passing it, as on a loaded machine: the
    moment at which pynetdicom's reactor still shows itself paused to a ``send_*`` method."""

    def wait(self, timeout: float | None = None) -> bool:
        passed = super().wait(timeout)
        time.sleep(0.05)
        return passed


def _descheduled(association: Association) -> Association:
    """Both threads of a requested association slowed where a loaded machine may stop them: the reactor just past its
    checkpoint, the sender between its request and its wait for the response (which arrives meanwhile)."""
    association._reactor_checkpoint = DeschedulingCheckpoint()
    association._reactor_checkpoint.set()
    send = association.dimse.send_msg

    def send_then_stall(*args: Any) -> None:
        send(*args)
        time.sleep(0.1)

    association.dimse.send_msg = send_then_stall  # type: ignore[method-assign]
    return association


def test_pynetdicoms_reactor_takes_a_response_its_sender_waits_for(node: Node) -> None:
    """The race itself, on pynetdicom's own association: so the next test would fail without EventDrivenAssociation."""
    ae = AE(ae_title="PACS")
    ae.dimse_timeout = 1.0
    ae.add_requested_context(VERIFICATION)
    association = _descheduled(ae.associate("127.0.0.1", node.port, ae_title="CXR_AI"))
    try:
        answered = [bool(association.send_c_echo()) for _ in range(5) if association.is_established]
    finally:
        association.abort()
    assert False in answered, "a C-ECHO response was taken by the reactor, and its sender heard none"


def test_the_nodes_requests_get_every_response_however_their_reactor_is_scheduled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = reactor.make_event_driven
    requested: list[Association] = []

    def descheduled(association: Association) -> EventDrivenAssociation:
        requested.append(_descheduled(made(association)))
        return cast(EventDrivenAssociation, requested[-1])

    monkeypatch.setattr(reactor, "make_event_driven", descheduled)
    small = tmp_path / "small.dcm"
    write_dicom(small, np.zeros((64, 64), dtype=np.float32))
    with storescp(tmp_path / "pacs") as port:
        outcomes = send_files(
            Destination(name="pacs", ae_title="PACS", host="127.0.0.1", port=port), [small] * 8, timeout_s=2
        )
    assert [o.status for o in outcomes] == [0] * 8, [o.error for o in outcomes]
    (association,) = requested
    assert isinstance(association, EventDrivenAssociation) and isinstance(association.dul, EventDrivenDUL)


def test_a_wake_up_writes_once_until_cleared() -> None:
    wake = reactor.WakeUp()
    try:
        for _ in range(3):
            wake.set()
        assert readable([wake.fileno()], 0)
        assert wake._reader.recv(16) == b"\0", "one byte for three wake-ups"
        wake.clear()
        assert not readable([wake.fileno()], 0)
        wake.set()
        assert readable([wake.fileno()], 0), "the first wake-up after a clear writes again"
    finally:
        wake.close()


class _RacingReader:
    """The wake-up's reading socket, with another thread's ``set`` landing inside the first read of a ``clear``."""

    def __init__(self, reader: Any, racer: Callable[[], None]) -> None:
        self.reader, self.racer, self.raced = reader, racer, False

    def recv(self, size: int) -> bytes:
        if not self.raced:
            self.raced = True
            self.racer()
        return cast(bytes, self.reader.recv(size))


def test_no_wake_up_is_lost_to_a_clear_racing_it() -> None:
    """A put's wake-up that lands while the reactor drains is either written after the drain or seen by the reactor,
    which looks at its queues after clearing; the next one must then write. Were the pending byte forgotten before the
    drain, the racing wake-up's byte would be drained with the flag left set, and every later one skipped."""
    wake = reactor.WakeUp()
    reader = wake._reader
    try:
        wake.set()
        wake._reader = _RacingReader(reader, wake.set)  # type: ignore[assignment]
        wake.clear()
        wake._reader = reader
        wake.set()
        assert readable([wake.fileno()], 0), "a wake-up after the race was not written: the reactor would sleep"
    finally:
        wake._reader = reader
        wake.close()
