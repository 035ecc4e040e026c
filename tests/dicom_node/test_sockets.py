"""dicom_node.sockets.receive_whole: a PDU body read into one buffer, with pynetdicom's answers for a peer that stops
short (what arrived, which its reader turns into Evt17) or goes silent (an OSError)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.transport import AssociationSocket

from dicom_node.sockets import receive_whole


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, AssociationSocket]]:
    writer, reader = socket.socketpair()
    yield writer, AssociationSocket(Association(AE(), "acceptor"), client_socket=reader)
    writer.close()
    reader.close()


def test_a_body_sent_in_pieces_is_read_whole_and_no_further(
    pair: tuple[socket.socket, AssociationSocket],
) -> None:
    writer, sock = pair
    body = bytes(range(256)) * 4096  # 1 MiB, each position distinguishable from its neighbours
    following = b"\x04\x00next"

    def send_in_pieces() -> None:
        for start in range(0, len(body), 100_003):
            writer.sendall(body[start : start + 100_003])
            time.sleep(0.001)
        writer.sendall(following)

    sending = threading.Thread(target=send_in_pieces)
    sending.start()
    assert receive_whole(sock, len(body)) == body
    sending.join()
    assert receive_whole(sock, len(following)) == following, "the next PDU's bytes were left on the socket"


def test_a_peer_that_closes_mid_body_gives_what_arrived(pair: tuple[socket.socket, AssociationSocket]) -> None:
    writer, sock = pair
    writer.sendall(b"partial")
    writer.close()
    received = receive_whole(sock, 1024)
    assert received == b"partial" and len(received) < 1024


def test_a_silent_peer_times_out_as_an_os_error(pair: tuple[socket.socket, AssociationSocket]) -> None:
    writer, sock = pair
    assert sock.socket is not None
    sock.socket.settimeout(0.2)
    writer.sendall(b"some")
    with pytest.raises(OSError):
        receive_whole(sock, 1024)
