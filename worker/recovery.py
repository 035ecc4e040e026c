"""Dead letters re-sent when their destination is back (``worker.resend_dead_letters_on_recovery``; off by default).

A delivery whose retries ran out during an outage longer than the retry window waits in the dead letter for an
operator. With the setting on, the sweeper C-ECHOes each destination that holds such deliveries, and when it answers,
re-sends them, each once at most and audited as the sweeper's action: a destination that answers C-ECHO but keeps
failing the C-STORE cannot make a loop. Deliveries the destination refused, or whose file retention removed, are
never re-sent by themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from config.outputs import Destination
from config.settings import Settings
from db import deliveries, destinations
from db.engine import SessionFactory
from dicom_node.scu import echo
from worker.operator_actions import NotAllowedError, resend_delivery

logger = logging.getLogger(__name__)

Echo = Callable[[Destination, str], int | None]
RECOVERY_ACTOR = "sweeper"


def _echo(destination: Destination, calling_ae: str) -> int | None:
    return echo(destination, calling_ae=calling_ae, timeout_s=5.0)


def resend_on_recovery(
    settings: Settings, session_factory: SessionFactory, enqueue_delivery: Callable[[int], None], probe: Echo = _echo
) -> list[int]:
    """Re-send the exhausted dead letters of every destination that answers C-ECHO now; returns their ids."""
    if not settings.worker.resend_dead_letters_on_recovery:
        return []
    configured = {d.name: d for d in settings.destinations}
    with session_factory() as session:
        waiting = deliveries.exhausted_dead_letters(session)
        paused = {name for name in waiting if destinations.is_paused(session, name)}
    resent: list[int] = []
    for name, delivery_ids in waiting.items():
        destination = configured.get(name)
        if destination is None or name in paused:
            continue
        try:
            status = probe(destination, settings.scp.ae_title)
        except Exception as exc:  # a TLS file gone, say: this destination waits, the others go on
            logger.warning("recovery: C-ECHO to %s failed: %s", name, type(exc).__name__)
            continue
        if status != 0:
            continue
        before = len(resent)
        for delivery_id in delivery_ids:
            with session_factory.begin() as session:
                deliveries.mark_auto_resent(session, delivery_id)
            try:
                resend_delivery(session_factory, enqueue_delivery, delivery_id, actor=RECOVERY_ACTOR)
            except NotAllowedError as exc:  # an operator moved it meanwhile
                logger.info("recovery: %s", exc)
                continue
            resent.append(delivery_id)
        logger.warning(
            "recovery: %s answers C-ECHO again; %d dead-lettered deliveries re-sent", name, len(resent) - before
        )
    return resent
