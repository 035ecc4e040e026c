"""Local health checks for ``cxr healthcheck``: each returns None when healthy, else what is wrong."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from config.outputs import Destination
from config.settings import Settings
from dicom_node.scu import echo

LOOPBACK = "127.0.0.1"


def check_scp_listening(settings: Settings, timeout_s: float = 5.0) -> str | None:
    """The SCP's port takes a TCP connection. No association is made, so nothing is audited or counted."""
    try:
        socket.create_connection((LOOPBACK, settings.scp.port), timeout=timeout_s).close()
    except OSError as exc:
        return f"nothing listens on port {settings.scp.port}: {exc.strerror or exc}"
    return None


def check_scp(settings: Settings, timeout_s: float = 5.0) -> str | None:
    """A C-ECHO to our own SCP. With an allow-list, it calls as the first allowed AE title so the SCP accepts it;
    with TLS on, a TCP connection is the check (the local peer holds no client certificate)."""
    scp = settings.scp
    problem = check_scp_listening(settings, timeout_s)
    if problem is not None or scp.tls.enabled:
        return problem
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


NODE_QUEUES = ("gpu", "io")


def check_workers(
    settings: Settings, queues: tuple[str, ...] = NODE_QUEUES, since: datetime | None = None
) -> str | None:
    """A worker for each queue has said it is ready (its heartbeat, written once Celery consumes and the model is
    loaded) and is still beating; with ``since``, one started at or after it."""
    from db import heartbeats
    from db.engine import make_engine, make_session_factory
    from db.models import utcnow
    from worker.heartbeat import ONLINE_WITHIN_S

    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            online = heartbeats.online_workers(session, utcnow() - timedelta(seconds=ONLINE_WITHIN_S))
    finally:
        engine.dispose()
    fresh = [w for w in online if since is None or w.started_at >= since]
    missing = [q for q in queues if not any(q in w.queues.split(",") for w in fresh)]
    return f"no ready worker for queue {', '.join(missing)}" if missing else None


def check_node(settings: Settings, since: datetime | None = None, echo_scp: bool = True) -> str | None:
    """What ``cxr serve`` runs, all up: the SCP answers (a C-ECHO; or, for the supervisor's own polling, its port,
    which leaves no association in the audit trail and /metrics), the dashboard (if enabled) answers, and a worker for
    each queue is ready."""
    scp_check = check_scp if echo_scp else check_scp_listening
    checks = [scp_check, *([check_dashboard] if settings.dashboard.enabled else [])]
    for check in checks:
        problem = check(settings)
        if problem is not None:
            return problem
    return check_workers(settings, since=since)


def ready_line(settings: Settings) -> str:
    scp, dashboard = settings.scp, settings.dashboard
    line = f"ready: SCP on {scp.host}:{scp.port} as {scp.ae_title}, workers {', '.join(NODE_QUEUES)}"
    return line + (f", dashboard http://{dashboard.host}:{dashboard.port}/" if dashboard.enabled else "")
