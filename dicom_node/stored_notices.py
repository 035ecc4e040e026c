"""Notices of stored studies for early analysis (``worker.early_analysis``), sent off the C-STORE's path.

The handler only puts the study's id in a queue and answers; a thread sends the messages, one per study however
many of its images arrived meanwhile. A notice that cannot be sent (broker down) is dropped with a warning: early
analysis only saves time, and the study's job analyses every image anyway.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class StoredNotices:
    def __init__(self, send: Callable[[int], None]) -> None:
        self._send = send
        self._queue: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="stored-notices", daemon=True)

    def notify(self, study_id: int) -> None:
        self._queue.put(study_id)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            waiting = [first]
            while not self._queue.empty():
                waiting.append(self._queue.get())
            for study_id in dict.fromkeys(w for w in waiting if w is not None):  # once each, in arrival order
                try:
                    self._send(study_id)
                except Exception as exc:  # the broker is down: the job will analyse the images itself
                    logger.warning("early analysis notice for study %d not sent: %s", study_id, type(exc).__name__)
            if None in waiting:
                return
