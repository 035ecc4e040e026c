"""dicom_node.sockets.receive_whole: a PDU body read into one buffer, with pynetdicom's answers for a peer that stops
short (what arrived, which its reader turns into Evt17) or goes silent (an OSError); and associations, accepted and
requested, served on descriptors numbered above select's limit."""

from __future__ import annotations

import os
import resource
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.transport import AssociationSocket

from config.outputs import Destination
from dicom_node.scu import echo, send_files
from dicom_node.sockets import receive_whole
from tests.helpers.scp import Node


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


@contextmanager
def descriptors_above_select_limit() -> Iterator[None]:
    """Every descriptor up to 1024 held open, so that each socket made next is numbered above FD_SETSIZE."""
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    if limits[0] < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, limits[1]), limits[1]))
    held: list[int] = []
    try:
        while not held or held[-1] <= 1024:
            held.append(os.open(os.devnull, os.O_RDONLY))
        yield
    finally:
        for descriptor in held:
            os.close(descriptor)
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def test_associations_are_served_on_descriptors_select_cannot_watch(node: Node, rg1: Path) -> None:
    to_node = Destination(name="node", ae_title="CXR_AI", host="127.0.0.1", port=node.port)
    with descriptors_above_select_limit():
        with socket.socket() as probe:
            assert probe.fileno() > 1024
            with pytest.raises(ValueError, match="filedescriptor out of range"):
                select.select([probe], [], [], 0)  # what pynetdicom asked, and took for a closed connection
        # Both ends are the node's: the requested association (dicom_node.scu) and the accepted one (dicom_node.scp).
        assert echo(to_node) == 0
        (outcome,) = send_files(to_node, [rg1])
    assert outcome.ok, outcome.error
