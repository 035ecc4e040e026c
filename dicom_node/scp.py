"""The DICOM listener: presentation contexts, event handlers bound to their dependencies, and completion."""

from __future__ import annotations

import enum
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

from pydicom import uid
from pynetdicom import AE, _config, evt
from pynetdicom.transport import ThreadedAssociationServer

from atna.events import application_activity
from atna.syslog import SyslogSender, make_sender
from config.settings import Settings, site_digest_key
from db.engine import SessionFactory
from dicom_node.admission import AssociationSlots
from dicom_node.completion import CompletionMonitor
from dicom_node.contexts import TRANSFER_SYNTAXES, VERIFICATION, accepted_storage_classes
from dicom_node.handlers import (
    handle_aborted,
    handle_accepted,
    handle_commitment_report,
    handle_connection_closed,
    handle_connection_opened,
    handle_echo,
    handle_rejected,
    handle_released,
    handle_requested,
    handle_store,
    record_refused_connection,
)
from dicom_node.ingest import NodeContext
from dicom_node.reactor import EventDrivenRequestHandler
from dicom_node.scu import STORAGE_COMMITMENT
from dicom_node.spool import Spool
from dicom_node.stored_notices import StoredNotices
from dicom_node.tls import server_context

logger = logging.getLogger(__name__)


PYNETDICOM_CONNECTION_CEILING = 10_000


def build_ae(settings: Settings) -> AE:
    # pynetdicom logs patient name and ID of every request and response by default.
    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False
    # Stream each received data set to a file as it arrives, so a large image never sits in memory whole.
    _config.STORE_RECV_CHUNKED_DATASET = True
    ae = AE(ae_title=settings.scp.ae_title)
    ae.maximum_pdu_size = settings.scp.max_pdu_size
    # Admission is ours (dicom_node.admission): pynetdicom would count every open connection, even one that never asks
    # for an association, against its limit, so a few idle sockets could keep every peer out.
    ae.maximum_associations = PYNETDICOM_CONNECTION_CEILING
    ae.acse_timeout = settings.scp.acse_timeout_s
    ae.dimse_timeout = settings.scp.dimse_timeout_s
    ae.network_timeout = settings.scp.network_timeout_s
    ae.require_called_aet = True
    if settings.scp.allowed_calling_aets:
        ae.require_calling_aet = list(settings.scp.allowed_calling_aets)
    else:
        logger.warning("scp.allowed_calling_aets is empty: any calling AE may store to this node")
    for sop_class in accepted_storage_classes(settings.scp):
        ae.add_supported_context(sop_class, list(TRANSFER_SYNTAXES))
    ae.add_supported_context(VERIFICATION)
    # Storage commitment reports come back on an association the destination opens, acting as the SCP.
    ae.add_supported_context(
        STORAGE_COMMITMENT, [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian], scu_role=False, scp_role=True
    )
    return ae


def _restrict_source_addresses(
    server: ThreadedAssociationServer, context: NodeContext, networks: Sequence[IPv4Network | IPv6Network]
) -> None:
    """Close connections from addresses outside ``networks`` before any association starts (socketserver's hook)."""

    def verify_request(request: object, client_address: tuple[str, int]) -> bool:
        allowed = any(ip_address(client_address[0]) in network for network in networks)
        if not allowed:
            record_refused_connection(context, client_address[0])
        return allowed

    server.verify_request = verify_request  # type: ignore[method-assign]


class Listener(enum.Enum):
    """Which of the SCP's processes this one is (``cxr.scp_process``)."""

    ALONE = "alone"
    FIRST = "first of several"
    """Shares the port, and speaks for the application: its start and stop go to the audit trail once."""
    SIBLING = "one of several"

    @property
    def shares_port(self) -> bool:
        return self is not Listener.ALONE

    @property
    def announces(self) -> bool:
        return self is not Listener.SIBLING


class SharedPortServer(ThreadedAssociationServer):
    """A pynetdicom server whose port other processes may listen on too (SO_REUSEPORT): the kernel spreads incoming
    connections across them."""

    def server_bind(self) -> None:
        assert self.socket is not None  # socketserver made it in __init__, before binding
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def _serve(
    ae: AE, address: tuple[str, int], handlers: list[Any], tls: ssl.SSLContext | None, shared_port: bool
) -> ThreadedAssociationServer:
    """``AE.start_server(block=False)``, with the server class chosen here."""
    server_class = SharedPortServer if shared_port else ThreadedAssociationServer
    server = ae.make_server(
        address,
        evt_handlers=handlers,
        ssl_context=tls,
        server_class=server_class,
        request_handler=EventDrivenRequestHandler,
    )
    ae._servers.append(server)  # as start_server does: the server's shutdown takes itself off this list
    threading.Thread(target=server.serve_forever, name="AcceptorServer", daemon=True).start()
    return server


@dataclass
class StorageNode:
    """A running SCP with its completion monitor and audit sender; ``stop`` shuts them down."""

    server: ThreadedAssociationServer
    monitor: CompletionMonitor
    notices: StoredNotices | None = None
    atna: SyslogSender | None = None
    ae_title: str = ""
    announces: bool = True

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        # An association a peer keeps open would hold the process until its network timeout (pynetdicom's DUL threads
        # are not daemons). Nothing it sent is lost: an instance is acknowledged only once it is durable, and the
        # peer sends again what an abort left unacknowledged.
        for association in self.server.active_associations:
            association.abort()
        self.monitor.stop()
        if self.notices is not None:
            self.notices.stop()
        if self.atna is not None and self.announces:
            self.atna.emit(application_activity(self.ae_title, started=False))
        if self.atna is not None:
            self.atna.close()


def start_node(
    settings: Settings,
    session_factory: SessionFactory,
    enqueue: Callable[[int], None],
    notify_stored: Callable[[int], None] | None = None,
    listener: Listener = Listener.ALONE,
) -> StorageNode:
    """The SCP, listening; ``enqueue`` takes each complete study's job id, and ``notify_stored`` (when given) each
    study an instance was stored into, for early analysis."""
    spool = Spool(settings.spool_dir)
    purged = spool.purge_incoming()
    if purged:
        logger.warning("removed %d partial receptions left by an earlier crash", purged)
    atna = make_sender(settings.atna, settings.scp.ae_title, "cxr-scp")
    monitor = CompletionMonitor(
        session_factory,
        enqueue,
        settings.detector,
        settings.scp.completion_poll_s,
        settings.rules,
        settings.worker.queue_lease_s,
    )
    context = NodeContext(
        settings=settings.scp,
        spool=spool,
        session_factory=session_factory,
        slots=AssociationSlots(settings.scp),
        atna=atna,
        digest_key=site_digest_key(settings),
        completion_due=monitor.wake_at,
    )
    notices = StoredNotices(notify_stored) if notify_stored is not None else None
    if notices is not None:
        notices.start()
        context.stored = notices.notify
    handlers: list[Any] = [
        (evt.EVT_C_ECHO, handle_echo),
        (evt.EVT_CONN_OPEN, handle_connection_opened, [context]),
        (evt.EVT_REQUESTED, handle_requested, [context]),
        (evt.EVT_CONN_CLOSE, handle_connection_closed, [context]),
        (evt.EVT_C_STORE, handle_store, [context]),
        (evt.EVT_RELEASED, handle_released, [context]),
        (evt.EVT_ABORTED, handle_aborted, [context]),
        (evt.EVT_REJECTED, handle_rejected, [context]),
        (evt.EVT_ACCEPTED, handle_accepted, [context]),
        (evt.EVT_N_EVENT_REPORT, handle_commitment_report, [context]),
    ]
    tls = server_context(settings.scp.tls) if settings.scp.tls.enabled else None
    server = _serve(build_ae(settings), (settings.scp.host, settings.scp.port), handlers, tls, listener.shares_port)
    if settings.scp.allowed_networks:
        _restrict_source_addresses(server, context, settings.scp.allowed_networks)
    monitor.start()
    node = StorageNode(
        server=server,
        monitor=monitor,
        notices=notices,
        atna=atna,
        ae_title=settings.scp.ae_title,
        announces=listener.announces,
    )
    if atna is not None and listener.announces:
        atna.emit(application_activity(settings.scp.ae_title, started=True))
    logger.info(
        "SCP %s listening on %s:%d%s", settings.scp.ae_title, settings.scp.host, node.port, " (TLS)" if tls else ""
    )
    return node
