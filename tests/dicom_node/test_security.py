"""dicom_node.scp and dicom_node.tls: who may talk to the node: calling-AE allowlist with an audit trail, and DICOM TLS
on the SCP and the SCU."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from config.outputs import Destination
from config.settings import ScpSettings, Settings, TlsSettings
from db import audit
from db.engine import SessionFactory
from db.models import AuditKind
from dicom_node.scp import StorageNode, start_node
from dicom_node.scu import echo, send_files
from tests.helpers.certificates import Pki, make_pki
from tests.helpers.peers import require_tool, storescp, storescu
from tests.helpers.scp import wait_for


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def start(tmp_path: Path, session_factory: SessionFactory, scp: ScpSettings) -> StorageNode:
    return start_node(Settings(data_dir=tmp_path / "var", scp=scp), session_factory, lambda job_id: None)


@pytest.fixture
def allowlisted(tmp_path: Path, session_factory: SessionFactory) -> Iterator[StorageNode]:
    node = start(tmp_path, session_factory, ScpSettings(host="127.0.0.1", port=0, allowed_calling_aets=["PACS"]))
    yield node
    node.stop()


def echoscu(port: int, *options: str) -> subprocess.CompletedProcess[bytes]:
    require_tool("echoscu")
    return subprocess.run(
        ["echoscu", *options, "-aec", "CXR_AI", "127.0.0.1", str(port)], capture_output=True, timeout=60
    )


def test_unknown_calling_ae_is_rejected_and_audited(allowlisted: StorageNode, session_factory: SessionFactory) -> None:
    assert echoscu(allowlisted.port, "-aet", "PACS").returncode == 0
    assert echoscu(allowlisted.port, "-aet", "INTRUDER").returncode != 0

    def audited() -> list[tuple[str | None, str | None]]:
        with session_factory() as s:
            return [
                (a.calling_ae_title, a.peer_address)
                for a in audit.audit_trail(s, kinds=[AuditKind.ASSOCIATION_REJECTED])
            ]

    wait_for(lambda: bool(audited()))
    assert audited() == [("INTRUDER", "127.0.0.1")]


def test_wrong_called_ae_is_rejected(allowlisted: StorageNode) -> None:
    result = subprocess.run(
        ["echoscu", "-aet", "PACS", "-aec", "NOT_US", "127.0.0.1", str(allowlisted.port)],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode != 0


@pytest.fixture
def tls_node(tmp_path: Path, session_factory: SessionFactory, pki: Pki) -> Iterator[StorageNode]:
    tls = TlsSettings(
        certificate=pki.server_certificate,
        private_key=pki.server_key,
        ca_certificates=pki.ca,
        require_client_certificate=True,
    )
    node = start(tmp_path, session_factory, ScpSettings(host="127.0.0.1", port=0, tls=tls))
    yield node
    node.stop()


def test_tls_scp_accepts_a_trusted_client_and_nothing_else(tls_node: StorageNode, pki: Pki, rg1: Path) -> None:
    trusted = ["+tls", str(pki.client_key), str(pki.client_certificate), "+cf", str(pki.ca)]
    assert storescu(rg1, tls_node.port, "CXR_AI", *trusted).returncode == 0
    assert echoscu(tls_node.port).returncode != 0, "plaintext to the TLS port fails"
    assert echoscu(tls_node.port, "+tla", "+cf", str(pki.ca)).returncode != 0, "no client certificate, no entry"
    assert echoscu(tls_node.port, *trusted).returncode == 0, "the node still serves trusted peers"


@pytest.fixture
def tls_storescp(tmp_path: Path, pki: Pki) -> Iterator[int]:
    tls = ["+tls", str(pki.server_key), str(pki.server_certificate), "+cf", str(pki.ca)]
    with storescp(tmp_path / "pacs", "PACS", None, *tls) as port:
        yield port


def destination(port: int, pki: Pki, ca: Path, host: str = "127.0.0.1") -> Destination:
    return Destination(
        name="pacs",
        ae_title="PACS",
        host=host,
        port=port,
        tls=True,
        tls_ca_certificates=ca,
        tls_certificate=pki.client_certificate,
        tls_private_key=pki.client_key,
    )


def test_tls_scu_delivers_to_a_verified_destination(tls_storescp: int, pki: Pki, rg1: Path) -> None:
    assert echo(destination(tls_storescp, pki, pki.ca)) == 0
    (outcome,) = send_files(destination(tls_storescp, pki, pki.ca), [rg1])
    assert outcome.ok


def test_tls_scu_refuses_an_untrusted_or_misnamed_destination(tls_storescp: int, pki: Pki, rg1: Path) -> None:
    assert echo(destination(tls_storescp, pki, pki.other_ca)) is None, "certificate not from the trusted CA"
    (outcome,) = send_files(destination(tls_storescp, pki, pki.other_ca), [rg1])
    assert not outcome.ok and outcome.status is None
    assert echo(destination(tls_storescp, pki, pki.ca, host="127.0.0.2")) is None, "host name not in the certificate"


def test_connections_from_outside_the_allowed_networks_are_closed_and_audited(
    tmp_path: Path, session_factory: SessionFactory
) -> None:
    from pynetdicom import AE

    node = start(tmp_path, session_factory, ScpSettings(host="0.0.0.0", port=0, allowed_networks=["127.0.0.2/32"]))
    try:
        ae = AE(ae_title="PEER")
        ae.add_requested_context("1.2.840.10008.1.1")
        outside = ae.associate("127.0.0.2", node.port, ae_title="CXR_AI", bind_address=("127.0.0.1", 0))
        assert not outside.is_established
        inside = ae.associate("127.0.0.2", node.port, ae_title="CXR_AI", bind_address=("127.0.0.2", 0))
        assert inside.is_established
        inside.release()

        def refused() -> list[str | None]:
            with session_factory() as s:
                return [a.peer_address for a in audit.audit_trail(s, kinds=[AuditKind.CONNECTION_REFUSED])]

        wait_for(lambda: bool(refused()))
        assert refused() == ["127.0.0.1"]
    finally:
        node.stop()


def test_secondary_capture_is_accepted_only_when_configured(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    from db.models import ResultKind
    from tests.helpers.encode_cases import analysed, context
    from worker.encode.bundle import encode_study

    sc = next(o for o in encode_study(context(analysed([pydicom.dcmread(rg1)]))) if o.kind is ResultKind.SC)
    sc_path = sc.write(tmp_path / "sc")
    default = start(tmp_path / "a", session_factory, ScpSettings(host="127.0.0.1", port=0))
    try:
        assert storescu(sc_path, default.port).returncode != 0, "not offered by default"
    finally:
        default.stop()
    configured = start(
        tmp_path / "b", session_factory, ScpSettings(host="127.0.0.1", port=0, accept_secondary_capture=True)
    )
    try:
        assert storescu(sc_path, configured.port).returncode == 0
    finally:
        configured.stop()
