"""The SCU: C-ECHO and C-STORE to a destination. Returns outcomes; the caller decides about retries."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom import uid
from pynetdicom import AE, evt
from pynetdicom import _config as pynetdicom_config
from pynetdicom.association import Association

from config.outputs import Destination
from dicom_node.reactor import EventDrivenAE
from dicom_node.sockets import send_at_once
from dicom_node.tls import client_context

logger = logging.getLogger(__name__)

DEFAULT_CALLING_AE = "CXR_AI"
TRANSIENT_STATUS_PREFIX = 0xA700  # out of resources: worth retrying
UNCOMPRESSED = (uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian)
STORAGE_COMMITMENT = uid.UID("1.2.840.10008.1.20.1")
STORAGE_COMMITMENT_INSTANCE = uid.UID("1.2.840.10008.1.20.1.1")  # the well-known SOP Instance

# A file given to pynetdicom by path is sent as written: its data set bytes streamed from disk in the agreed syntax,
# never decoded and encoded again (a 10 MB overlay SC cost a read, a parse and an encode per send). pynetdicom does
# that for every path it is given once this switch is on; a data set object is still encoded as before.
pynetdicom_config.STORE_SEND_CHUNKED_DATASET = True


@dataclass(frozen=True)
class StoreOutcome:
    path: Path
    status: int | None
    """The DIMSE status, or None when no response came (connection refused, association rejected, timeout)."""
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and (self.status == 0x0000 or self.status in (0xB000, 0xB007, 0xB006))

    @property
    def permanent_failure(self) -> bool:
        """The peer understood and refused: sending the same object again cannot succeed."""
        return self.status is not None and not self.ok and (self.status & 0xFF00) != TRANSIENT_STATUS_PREFIX


def open_association(ae: AE, destination: Destination) -> Association:
    """An association to ``destination`` (TLS when it asks for it), its socket sending at once (TCP_NODELAY)."""
    tls_args = (client_context(destination), destination.host) if destination.tls else None
    return ae.associate(
        destination.host,
        destination.port,
        ae_title=destination.ae_title,
        tls_args=tls_args,
        evt_handlers=[(evt.EVT_CONN_OPEN, send_at_once)],
    )


def _ae(calling_ae: str, timeout_s: float) -> AE:
    """An AE whose associations wait for their queues and never lose a response to their own reactor
    (``dicom_node.reactor.EventDrivenAssociation``)."""
    ae = EventDrivenAE(ae_title=calling_ae)
    ae.acse_timeout = timeout_s
    ae.dimse_timeout = timeout_s
    ae.network_timeout = timeout_s
    return ae


def echo(destination: Destination, calling_ae: str = DEFAULT_CALLING_AE, timeout_s: float = 10.0) -> int | None:
    """The C-ECHO status, or None when the destination could not be reached."""
    ae = _ae(calling_ae, timeout_s)
    ae.add_requested_context(uid.UID("1.2.840.10008.1.1"))
    assoc = open_association(ae, destination)
    if not assoc.is_established:
        return None
    try:
        status = assoc.send_c_echo()
        return int(status.Status) if "Status" in status else None
    finally:
        assoc.release()


def send_files(
    destination: Destination,
    paths: Sequence[Path],
    calling_ae: str = DEFAULT_CALLING_AE,
    timeout_s: float = 30.0,
    commitment_transaction_uid: str | None = None,
    on_response: Callable[[int, StoreOutcome], None] | None = None,
    more: Callable[[frozenset[str]], Sequence[Path]] | None = None,
    also_propose: Sequence[str] = (),
) -> list[StoreOutcome]:
    """C-STORE each file over one association, proposing each file's own SOP class and transfer syntax.

    ``on_response`` hears (index, outcome) as each file's response arrives, so that the caller can record it before
    the next file goes: a crash then leaves at most the one file in flight unrecorded. It is not called for files that
    never went (no association), nor with a commitment request, whose failure changes the outcomes afterwards.

    ``more``, once the files given are sent, is asked for the next ones with the SOP classes the association carries
    (it may wait for them); they go over the same association, until it answers none. ``also_propose`` names SOP
    classes of such files to come, proposed in the uncompressed syntaxes. Their outcomes follow the first files'.

    With ``commitment_transaction_uid``, a Storage Commitment request (N-ACTION) for the stored files follows on the
    same association; if it is not accepted, the outcomes report that (no status), so the caller retries."""
    datasets = [(path, pydicom.dcmread(path, stop_before_pixels=True)) for path in paths]
    ae = _ae(calling_ae, timeout_s)
    contexts = {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for _, ds in datasets}
    for sop_class, syntax in sorted(contexts):
        # A context of the file's own syntax alone, so that it can be sent as written, and another with the other
        # uncompressed syntaxes for a peer that takes only those: the file is then decoded (decompressed, for a
        # compressed one) and encoded in the syntax accepted.
        ae.add_requested_context(sop_class, [syntax])
        ae.add_requested_context(sop_class, sorted(set(UNCOMPRESSED) - {syntax}))
    for sop_class in sorted(set(also_propose) - {c for c, _ in contexts}):
        ae.add_requested_context(sop_class, list(UNCOMPRESSED))
    if commitment_transaction_uid is not None:
        ae.add_requested_context(STORAGE_COMMITMENT, list(UNCOMPRESSED))
    assoc = open_association(ae, destination)
    if not assoc.is_established:
        reason = "association rejected" if assoc.is_rejected else "destination unreachable or association aborted"
        return [StoreOutcome(path, None, reason) for path, _ in datasets]
    outcomes: list[StoreOutcome] = []
    headers: list[pydicom.Dataset] = []
    try:
        while datasets:
            for path, ds in datasets:
                headers.append(ds)
                outcomes.append(_store_one(assoc, path, ds))
                if on_response is not None and commitment_transaction_uid is None:
                    on_response(len(outcomes) - 1, outcomes[-1])
            carried = frozenset(str(c.abstract_syntax) for c in assoc.accepted_contexts)
            following = more(carried) if more is not None and assoc.is_established else ()
            datasets = [(path, pydicom.dcmread(path, stop_before_pixels=True)) for path in following]
        if commitment_transaction_uid is not None and all(o.ok for o in outcomes):
            error = _request_commitment(assoc, commitment_transaction_uid, headers)
            if error is not None:
                outcomes = [StoreOutcome(o.path, None, error) for o in outcomes]
    finally:
        if assoc.is_established:
            assoc.release()
    return outcomes


def _request_commitment(assoc: Association, transaction_uid: str, datasets: Sequence[pydicom.Dataset]) -> str | None:
    """N-ACTION Request Storage Commitment; None when accepted, else why not."""
    request = pydicom.Dataset()
    request.TransactionUID = transaction_uid
    references = []
    for ds in datasets:
        item = pydicom.Dataset()
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        references.append(item)
    request.ReferencedSOPSequence = references
    try:
        status, _ = assoc.send_n_action(request, 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
    except Exception as exc:  # pynetdicom raises when the peer did not accept the commitment context
        return f"storage commitment not accepted: {type(exc).__name__}"
    if "Status" not in status or int(status.Status) != 0:
        return "storage commitment request failed"
    return None


def _as_written(assoc: Association, header: pydicom.Dataset) -> bool:
    """Whether the peer accepted the file's own SOP class and transfer syntax, so its bytes go as they are."""
    sop_class, syntax = str(header.SOPClassUID), str(header.file_meta.TransferSyntaxUID)
    return any(c.abstract_syntax == sop_class and c.transfer_syntax[0] == syntax for c in assoc.accepted_contexts)


def _decoded(path: Path) -> pydicom.Dataset:
    """The file as a data set pynetdicom can encode in any uncompressed syntax: a compressed one decompressed (its
    lossy history, if any, stays in its header)."""
    ds = pydicom.dcmread(path)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()
    return ds


def _store_one(assoc: Association, path: Path, header: pydicom.Dataset) -> StoreOutcome:
    try:
        response = assoc.send_c_store(path if _as_written(assoc, header) else _decoded(path))
    except Exception as exc:  # pynetdicom raises for contexts the peer did not accept
        return StoreOutcome(path, None, f"{type(exc).__name__}: {exc}")
    if "Status" not in response:
        return StoreOutcome(path, None, "no response (timeout or aborted association)")
    status = int(response.Status)
    error = None if status == 0 else f"status 0x{status:04X}"
    return StoreOutcome(path, status, error)
