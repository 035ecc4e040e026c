"""The delivery messages an analysis sends: one per study and DICOM destination as soon as its first objects are
recorded (each image's, before the SR is built), and the rest when the analysis ends."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from db import conversations
from db.engine import SessionFactory

logger = logging.getLogger(__name__)


class Announcer:
    """Hears the deliveries an analysis recorded (``worker.analyze.Announce``) and sends a message for those that
    need one: a DICOM destination's conversation with a study, once begun, takes the study's later objects as they
    are recorded (``worker.deliver.deliver_conversation``), so its later deliveries get no message of their own."""

    def __init__(self, session_factory: SessionFactory, send: Callable[[int], None]) -> None:
        self._session_factory = session_factory
        self._send = send
        self.announced: list[int] = []

    def __call__(self, delivery_ids: Sequence[int]) -> None:
        with self._session_factory() as session:
            leaders = conversations.conversation_leaders(session, delivery_ids, self.announced)
        try:
            for delivery_id in leaders:
                self._send(delivery_id)
                self.announced.append(delivery_id)  # its conversation has begun, whatever happens to the next
        except Exception as exc:
            # A broker that fails now must not fail the analysis: the deliveries wait in the database, and the next
            # announcement (the analysis's end), else the sweeper, sends their messages.
            logger.warning("delivery messages not sent yet (%s); they follow", type(exc).__name__)
            return
        self.announced.extend(delivery_ids)
