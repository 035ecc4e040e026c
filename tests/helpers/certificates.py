"""A throwaway PKI for TLS tests, made with the openssl command: a CA, a server certificate and a client certificate."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.peers import require_tool


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_certificate: Path
    server_key: Path
    client_certificate: Path
    client_key: Path
    other_ca: Path
    """A second CA that signed nothing we use: trusting it alone must fail verification."""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, certificate = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key.name,
        "-out",
        certificate.name,
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        cwd=directory,
    )
    return certificate, key


def _leaf(directory: Path, name: str, ca: tuple[Path, Path], san: str) -> tuple[Path, Path]:
    key, request, certificate = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.crt"
    extensions = directory / f"{name}.ext"
    extensions.write_text(f"subjectAltName={san}\n")
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key.name,
        "-out",
        request.name,
        "-subj",
        f"/CN={name}",
        cwd=directory,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        request.name,
        "-CA",
        ca[0].name,
        "-CAkey",
        ca[1].name,
        "-CAcreateserial",
        "-out",
        certificate.name,
        "-days",
        "2",
        "-extfile",
        extensions.name,
        cwd=directory,
    )
    return certificate, key


def make_pki(directory: Path) -> Pki:
    require_tool("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "test-ca")
    other = _ca(directory, "other-ca")
    server = _leaf(directory, "server", ca, "DNS:localhost,IP:127.0.0.1")
    client = _leaf(directory, "client", ca, "DNS:client.example")
    return Pki(ca[0], server[0], server[1], client[0], client[1], other[0])
