"""DICOM TLS contexts for the SCP and the SCU: TLS 1.2 or newer, certificates from settings, verification on."""

from __future__ import annotations

import ssl
from pathlib import Path

from config.outputs import Destination
from config.settings import TlsSettings


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """The SCP's context; with ``require_client_certificate`` a peer without a trusted certificate cannot connect."""
    if settings.certificate is None or settings.private_key is None:
        raise ValueError("scp.tls needs both certificate and private_key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.certificate, settings.private_key)
    if settings.ca_certificates is not None:
        context.load_verify_locations(settings.ca_certificates)
    if settings.require_client_certificate:
        if settings.ca_certificates is None:
            raise ValueError("scp.tls.require_client_certificate needs ca_certificates to verify clients against")
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(destination: Destination) -> ssl.SSLContext:
    """The SCU's context: the destination's certificate must chain to its CA and name its host."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=_optional(destination.tls_ca_certificates))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if destination.tls_certificate is not None and destination.tls_private_key is not None:
        context.load_cert_chain(destination.tls_certificate, destination.tls_private_key)
    return context


def _optional(path: Path | None) -> str | None:
    return str(path) if path is not None else None
