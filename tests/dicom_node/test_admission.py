"""dicom_node.admission through the SCP: connections that never ask for an association (idle, or garbage and close)
hold no association slot, so C-ECHO still succeeds at once; and one source address cannot take every slot."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from pynetdicom import AE
from pynetdicom.association import Association

from tests.helpers.scp import VERIFICATION, Node, echo_seconds


@contextmanager
def idle_connections(port: int, count: int) -> Iterator[None]:
    """``count`` TCP connections that never send a byte, held open."""
    with ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(socket.create_connection(("127.0.0.1", port)))
        yield


def garbage_and_close(port: int, count: int) -> None:
    for index in range(count):
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(bytes([index % 256]) * 64 + b"\x01\x00\xff\xff\xff\xff")


def test_idle_and_garbage_connections_do_not_lock_out_a_c_echo(node: Node) -> None:
    with idle_connections(node.port, 20):
        garbage_and_close(node.port, 20)
        took = echo_seconds(node.port)
    assert took is not None, "C-ECHO refused while idle connections were open"
    assert took < 2.0, f"C-ECHO took {took:.1f} s"


def established(port: int) -> Association:
    ae = AE(ae_title="PACS")
    ae.add_requested_context(VERIFICATION)
    return ae.associate("127.0.0.1", port, ae_title="CXR_AI")


def test_one_source_cannot_take_every_slot(node: Node) -> None:
    limit = node.settings.scp.maximum_associations_per_source
    assert limit < node.settings.scp.maximum_associations
    held = [established(node.port) for _ in range(limit)]
    try:
        assert all(a.is_established for a in held)
        refused = established(node.port)
        assert refused.is_rejected and not refused.is_established
        assert refused.acceptor.primitive.result_source == 3 and refused.acceptor.primitive.diagnostic == 2
        held.pop().release()
        time.sleep(0.2)
        again = established(node.port)
        assert again.is_established, "a slot comes back when an association ends"
        held.append(again)
    finally:
        for association in held:
            association.release()
