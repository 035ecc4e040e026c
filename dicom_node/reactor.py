"""Event-driven reactors for the associations the SCP accepts and those the node requests (``dicom_node.scu``).

pynetdicom runs two threads per association, and both poll: the DUL thread sleeps 1 ms and looks at its socket and
queues, the association thread sleeps 1 ms and looks for a decoded DIMSE message. Each idle association so costs about
a twentieth of a core, and every PDU and every C-STORE waits for the next look. Here the DUL thread blocks in
``poll`` on its socket and a wake-up socket that every put on its queues writes to, and the association thread on an
event that every put on its queues sets. What the loops do once awake is pynetdicom's, but for the race between the
association's reactor and its ``send_*`` methods (``EventDrivenAssociation``).

Anything no queue signals (the peer's network timeout, a DUL thread that died) is still seen within
``LONGEST_WAIT_S``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.transport import AddressInformation, AssociationSocket, RequestHandler

from dicom_node.pdu_reading import read_pdu
from dicom_node.sockets import polled, readable

logger = logging.getLogger(__name__)

LONGEST_WAIT_S = 0.05
"""How long a reactor sleeps when nothing signals it: the bound on noticing a timer or a dead thread."""

Item = TypeVar("Item")


class WakeUp:
    """A socket pair that makes a ``poll`` on :meth:`fileno` return from any thread; it stays readable until
    :meth:`clear`, so a wake-up given before the wait is not lost.

    Only the first :meth:`set` after a :meth:`clear` writes: a reactor that puts its own events on its queues, one per
    PDU, would otherwise write and then drain a byte for each. ``clear`` drains before it forgets the pending byte, so a
    ``set`` racing it either writes (after the drain) or finds its put already seen by the caller, which looks at its
    queues after ``clear`` and before it next waits."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._pending = False

    def fileno(self) -> int:
        return self._reader.fileno()

    def set(self) -> None:
        if self._pending:
            return
        self._pending = True
        # Full: a wake-up is pending anyway. Closed: nobody waits any more.
        with contextlib.suppress(OSError):
            self._writer.send(b"\0")

    def clear(self) -> None:
        with contextlib.suppress(OSError):
            while self._reader.recv(4096):
                pass
        self._pending = False

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


class SignallingQueue(queue.Queue[Item]):
    """A queue that calls ``signal`` after each put, so its consumer can block instead of polling."""

    def __init__(self, signal: Callable[[], None]) -> None:
        super().__init__()
        self._signal = signal

    def put(self, item: Item, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._signal()


class EventDrivenDUL(DULServiceProvider):
    """pynetdicom's DUL, waiting in ``poll`` instead of sleeping 1 ms between looks, and reading P-DATA-TF PDUs
    without copying their values (``dicom_node.pdu_reading``)."""

    def __init__(self, assoc: Association, stir_association: Callable[[], None]) -> None:
        super().__init__(assoc)
        self._wake = WakeUp()
        self.to_provider_queue = SignallingQueue(self._wake.set)
        self.event_queue = SignallingQueue(self._wake.set)
        self.to_user_queue = SignallingQueue(stir_association)
        self._stir_association = stir_association

    def kill_dul(self) -> None:
        super().kill_dul()
        self._wake.set()

    def stop_dul(self) -> bool:
        if self.state_machine.current_state == "Sta1":
            self._kill_thread = True
            self._wake.set()
        return bool(super().stop_dul())

    def _wait(self) -> None:
        """Block until the socket has data, a queue was put to, or ``LONGEST_WAIT_S`` passed."""
        if self._kill_thread or not self.to_provider_queue.empty() or not self.event_queue.empty():
            return
        raw = self.socket.socket if self.socket is not None else None
        if isinstance(raw, ssl.SSLSocket) and raw.pending():
            return  # decrypted bytes wait in the SSL buffer, where poll cannot see them
        waiting_on = [self._wake.fileno()]
        if raw is not None and raw.fileno() >= 0:
            waiting_on.append(raw.fileno())
        # A socket closed under us raises here; the loop's own look at it reports that.
        with contextlib.suppress(OSError, ValueError):
            readable(waiting_on, LONGEST_WAIT_S)
        self._wake.clear()

    def _read_pdu_data(self) -> None:
        """pynetdicom's, with the reading in ``dicom_node.pdu_reading.read_pdu``."""
        outcome = read_pdu(cast(AssociationSocket, self.socket), self.assoc, self._decode_pdu)
        if isinstance(outcome, str):
            self.event_queue.put(outcome)
            return
        pdu, event = outcome
        self.event_queue.put(event)
        self._recv_pdu.put(pdu)

    def run_reactor(self) -> None:
        try:
            self._react()
        finally:
            self._wake.close()
            self._stir_association()

    def _react(self) -> None:
        """pynetdicom's ``DULServiceProvider.run_reactor`` with its sleep replaced by :meth:`_wait`."""
        self._idle_timer.start()
        idle = False
        while True:
            if not self.assoc._dul_ready.is_set():
                self.assoc._dul_ready.set()
            if idle:
                self._wait()
            if self._kill_thread:
                return
            if self.artim_timer.expired:
                self.event_queue.put("Evt18")
            try:
                if self._process_recv_primitive():
                    pass
                elif self._is_transport_event():
                    self._idle_timer.restart()
            except Exception as exc:  # the type only: what the peer sent may be in the message
                logger.error("DUL failed (%s); aborting the association", type(exc).__name__)
                self._abort_hard()
                return
            try:
                event = self.event_queue.get(block=False)
            except queue.Empty:
                idle = True
                continue
            self.state_machine.do_action(event)
            idle = False

    def _abort_hard(self) -> None:
        """As pynetdicom does: an A-ABORT past the state machine, which an exception may have left inconsistent."""
        abort = A_ABORT_RQ()
        abort.source = 0x02
        abort.reason_diagnostic = 0x00
        if self.socket is not None:
            self.socket.send(abort.encode())
        self.assoc.is_aborted = True
        self.assoc.is_established = False
        self.assoc._kill = True
        self._kill_thread = True


class EventDrivenAssociation(Association):
    """An association (accepted, or requested by ``dicom_node.scu``) whose reactor waits for its queues instead of
    looking every millisecond, and which never takes the response a ``send_*`` method waits for.

    pynetdicom's ``send_*`` methods pause the reactor by clearing ``_reactor_checkpoint`` and then waiting for
    ``_is_paused``; its reactor sets that flag before waiting at the checkpoint and clears it after, so a flag read
    just after the reactor passed an open checkpoint is stale: the request goes, and a response quick enough is taken
    by the reactor ("Received unexpected C-STORE service message") while the sender waits out the DIMSE timeout and
    reports no response for an object the peer stored. Here the reactor takes a message only while holding
    ``_serving`` and only if the checkpoint is still open; ``_is_paused`` is true once ``_serving`` is free (or held
    by the asking thread: a handler that sends on its own association)."""

    _stirred: threading.Event
    _serving: threading.RLock

    @property
    def _is_paused(self) -> bool:
        with self._serving:
            return True

    @_is_paused.setter
    def _is_paused(self, value: bool) -> None:
        """pynetdicom records its own view of the pause here; this class derives it from ``_serving`` instead."""

    def kill(self) -> None:
        self._kill = True  # before the stir, so that the reactor it wakes sees it (pynetdicom sets it too)
        self._stirred.set()
        super().kill()

    def _run_reactor(self) -> None:
        """pynetdicom's ``Association._run_reactor``, blocking on ``_stirred`` where it slept 1 ms; each pass does
        what pynetdicom's does, and a pass that served a message is followed by another without waiting."""
        served = False
        while not self._kill:
            if not served:
                self._stirred.wait(LONGEST_WAIT_S)
            self._stirred.clear()
            self._reactor_checkpoint.wait()
            with self._serving:
                if not self._reactor_checkpoint.is_set():
                    served = True  # a send_* paused it meanwhile: look again once it has its response
                    continue
                context_id, msg = self.dimse.get_msg(block=False)
                served = msg is not None
                if msg is not None and context_id is not None:
                    self._serve_request(msg, context_id)
                if self._ends_here():
                    return

    def _end(self, released: bool) -> None:
        if released:
            self.is_released = True
        else:
            self.is_aborted = True
        self.is_established = False
        evt.trigger(self, evt.EVT_RELEASED if released else evt.EVT_ABORTED, {})
        self.kill()

    def _ends_here(self) -> bool:
        """The checks after each message in pynetdicom's loop: release, abort, a dead DUL, the network timeout. Called
        holding ``_serving``."""
        if self.is_established and self.acse.is_release_requested():
            self.acse.send_release(is_response=True)
            self._end(released=True)
            return True
        if self.acse.is_aborted():
            self.dul.receive_pdu(wait=False)  # takes the A-ABORT, so that EVT_ACSE_RECV fires for it
            self._end(released=False)
            return True
        if not self.dul.is_alive():
            self.kill()
            return True
        if self.dul.idle_timer_expired():
            logger.warning("network timeout reached; aborting the association")
            if self.network_timeout_response == "A-RELEASE":
                # No send_* is under way while the reactor holds ``_serving`` (it would wait for it), so pynetdicom's
                # wait at the checkpoint here could only wait for one that waits for us.
                self.release()
            else:
                self.abort()
            self.kill()
            return True
        return False


def make_event_driven(assoc: Association) -> EventDrivenAssociation:
    """Turn an association that pynetdicom made, not yet started, into an event-driven one: a new DUL (the old one's
    thread never ran) on the same socket (for a requestor, the socket it is given next), and a DIMSE queue that stirs
    the association's reactor."""
    stirred = threading.Event()
    made = assoc.dul
    dul = EventDrivenDUL(assoc, stirred.set)
    dul.socket = polled(made.socket) if made.socket is not None else None
    # The socket's opening (Evt5) already waits on the old DUL's event queue.
    for name in ("event_queue", "to_provider_queue", "to_user_queue"):
        _move(getattr(made, name), getattr(dul, name))
    assoc.dul = dul
    assoc.dimse.msg_queue = SignallingQueue(stirred.set)
    # Association's timeout setters hand their values to the DUL's timers, which the new DUL made afresh.
    assoc.acse_timeout = assoc.acse_timeout
    assoc.network_timeout = assoc.network_timeout
    assoc.__class__ = EventDrivenAssociation  # only methods differ; its one attribute is set next
    event_driven: EventDrivenAssociation = assoc  # type: ignore[assignment]
    event_driven._stirred = stirred
    event_driven._serving = threading.RLock()
    return event_driven


def _move(source: queue.Queue[Any], target: queue.Queue[Any]) -> None:
    while True:
        try:
            target.put(source.get(block=False))
        except queue.Empty:
            return


class EventDrivenRequestHandler(RequestHandler):
    """pynetdicom's request handler, making each accepted association event-driven before it starts."""

    def _create_association(self) -> Association:
        return make_event_driven(super()._create_association())


class EventDrivenAE(AE):
    """pynetdicom's AE, making each association it requests event-driven before it is given its socket."""

    def _create_socket(
        self, assoc: Association, address: AddressInformation, tls_args: tuple[ssl.SSLContext, str] | None
    ) -> AssociationSocket:
        return polled(super()._create_socket(make_event_driven(assoc), address, tls_args))
