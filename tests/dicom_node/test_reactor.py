"""dicom_node.reactor: the SCP's associations wait for work instead of polling, and still end every way they can."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import ComputedRadiographyImageStorage
from pynetdicom.transport import ThreadedAssociationServer

from config.settings import ScpSettings, Settings
from db.engine import SessionFactory
from dicom_node.reactor import LONGEST_WAIT_S, EventDrivenAssociation, EventDrivenDUL
from dicom_node.scp import start_node
from tests.helpers.scp import VERIFICATION, Node, wait_for


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
