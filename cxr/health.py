"""Local health checks for ``cxr healthcheck``: each returns None when healthy, else what is wrong."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

from config.settings import Destination, Settings
from dicom_node.scu import echo

LOOPBACK = "127.0.0.1"


def check_scp(settings: Settings, timeout_s: float = 5.0) -> str | None:
    """A C-ECHO to our own SCP. With an allow-list, it calls as the first allowed AE title so the SCP accepts it;
    with TLS on, a TCP connection is the check (the local peer holds no client certificate)."""
    scp = settings.scp
    if scp.tls.enabled:
        try:
            socket.create_connection((LOOPBACK, scp.port), timeout=timeout_s).close()
        except OSError as exc:
            return f"no TLS listener on port {scp.port}: {exc.strerror or exc}"
        return None
    calling = scp.allowed_calling_aets[0] if scp.allowed_calling_aets else scp.ae_title
    target = Destination(name="self", ae_title=scp.ae_title, host=LOOPBACK, port=scp.port)
    status = echo(target, calling_ae=calling, timeout_s=timeout_s)
    if status is None:
        return f"no association with {scp.ae_title} on port {scp.port}"
    return None if status == 0 else f"C-ECHO status 0x{status:04X}"


def check_dashboard(settings: Settings, timeout_s: float = 5.0) -> str | None:
    url = f"http://{LOOPBACK}:{settings.dashboard.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return None if response.status == 200 else f"{url} answered {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"
