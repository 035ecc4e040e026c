"""dicom_node.validation.check_size and dicom_node.admission.bound_pdu_length through the SCP: a data set larger than
``scp.max_dataset_bytes``, or a deflated one that inflates beyond it (a deflate bomb), is refused with 0xA700 and its
reason; nothing is kept, the bomb is never inflated whole. A PDU longer than ``scp.max_pdu_size`` is refused from its
header with an A-ABORT (invalid PDU parameter value). After each, the node goes on serving."""

from __future__ import annotations

import copy
import socket
import struct
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian

from config.settings import ScpSettings, Settings
from db.audit import audit_trail
from db.engine import SessionFactory
from db.models import AuditKind
from dicom_node.scp import start_node
from dicom_node.validation import Status, check_size
from tests.helpers.scp import Node, echo_seconds, store, wait_for

LIMIT = 8 * 1024 * 1024
BOMB_PIXELS = 8192  # 8192 x 8192 zeros at 16 bits: 128 MiB inflated, about 130 KiB deflated


@pytest.fixture
def small_node(tmp_path: Path, session_factory: SessionFactory) -> Iterator[Node]:
    scp = ScpSettings(
        host="127.0.0.1", port=0, completion_debounce_s=0, completion_poll_s=0.05, max_dataset_bytes=LIMIT
    )
    settings = Settings(data_dir=tmp_path / "var", scp=scp)
    running = start_node(settings, session_factory, lambda job_id: None)
    yield Node(running, settings)
    running.stop()


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory, rg1_dataset: pydicom.Dataset) -> Path:
    ds = copy.deepcopy(rg1_dataset)
    ds.Rows = ds.Columns = BOMB_PIXELS
    ds.PixelData = np.zeros((BOMB_PIXELS, BOMB_PIXELS), dtype=np.uint16).tobytes()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = tmp_path_factory.mktemp("bomb") / "bomb.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert path.stat().st_size < LIMIT // 16, "small on the wire"
    return path


def test_a_deflate_bomb_is_refused_without_being_inflated_whole(bomb: Path) -> None:
    tracemalloc.start()
    try:
        refusal = check_size(bomb, LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refusal is not None and refusal.status == Status.OUT_OF_RESOURCES
    assert peak < 4 * 1024 * 1024, f"{peak / 1e6:.1f} MB held while counting"


def test_too_large_data_sets_are_refused_and_the_node_serves_on(small_node: Node, bomb: Path, rg1: Path) -> None:
    assert store(small_node.port, bomb) == (0xA700, "data set larger than 8 MiB")
    assert store(small_node.port, rg1) == (0x0000, ""), "RG1 (7 MiB) is under the limit"
    assert len(small_node.spooled_files()) == 1


def test_an_uncompressed_data_set_over_the_limit_is_refused(
    small_node: Node, tmp_path: Path, rg1_dataset: pydicom.Dataset
) -> None:
    big = copy.deepcopy(rg1_dataset)
    big.Rows = big.Columns = 2100  # 8.4 MiB of 16-bit pixels
    big.PixelData = np.zeros((2100, 2100), dtype=np.uint16).tobytes()
    big.SOPInstanceUID = big.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    path = tmp_path / "big.dcm"
    big.save_as(path, enforce_file_format=True)
    assert store(small_node.port, path) == (0xA700, "data set larger than 8 MiB")
    assert small_node.spooled_files() == []


A_ABORT_INVALID_PDU_PARAMETER = bytes.fromhex("07 00 00000004 00 00 02 06")
PDU_64_MIB = 64 * 1024 * 1024


def _claim(port: int, pdu_type: int, length: int) -> bytes:
    """Send only a PDU header claiming ``length`` bytes; what the node answers before it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(struct.pack(">BBL", pdu_type, 0, length))
        answer = b""
        while chunk := connection.recv(64):
            answer += chunk
    return answer


@pytest.mark.parametrize(("pdu_type", "what"), [(0x01, "A-ASSOCIATE-RQ"), (0x04, "P-DATA-TF")])
def test_a_64_mib_pdu_is_refused_from_its_header_and_the_node_serves_on(
    small_node: Node, session_factory: SessionFactory, pdu_type: int, what: str
) -> None:
    assert small_node.settings.scp.max_pdu_size == 1024 * 1024, "the default bound"
    assert _claim(small_node.port, pdu_type, PDU_64_MIB) == A_ABORT_INVALID_PDU_PARAMETER, what
    took = echo_seconds(small_node.port)
    assert took is not None and took < 2.0

    def audited() -> bool:
        with session_factory() as session:
            refused = audit_trail(session, kinds=[AuditKind.CONNECTION_REFUSED])
        return any(f"PDU of {PDU_64_MIB} bytes" in (event.detail or "") for event in refused)

    wait_for(audited)


def test_a_pdu_within_the_bound_is_read(small_node: Node, rg1: Path) -> None:
    """RG1 (7 MiB) arrives in PDUs of at most the advertised 1 MiB; and a 1 MiB header claim is not refused early
    (the node waits for its body instead, until the connection closes)."""
    assert store(small_node.port, rg1) == (0x0000, "")
    with socket.create_connection(("127.0.0.1", small_node.port), timeout=10) as connection:
        connection.sendall(struct.pack(">BBL", 0x04, 0, 1024 * 1024))
        connection.settimeout(0.5)
        with pytest.raises(TimeoutError):
            connection.recv(64)
