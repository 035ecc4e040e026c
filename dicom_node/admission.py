"""Who may hold an association: at most ``scp.maximum_associations`` at once, and at most
``scp.maximum_associations_per_source`` from one address. A slot is taken when the peer asks for an association
(A-ASSOCIATE-RQ) and given back when its connection closes; a connection that never asks holds none, and is dropped
after ``scp.acse_timeout_s``."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from config.settings import ScpSettings

LIMIT_EXCEEDED = (0x02, 0x03, 0x02)
"""A-ASSOCIATE-RJ: rejected-transient, service provider (presentation related), local limit exceeded."""


@dataclass
class AssociationSlots:
    settings: ScpSettings
    _holders: dict[int, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, association_id: int, address: str) -> str | None:
        """Take a slot for this association; None when taken, else why not (for the audit trail)."""
        with self._lock:
            if association_id in self._holders:
                return None
            if len(self._holders) >= self.settings.maximum_associations:
                return "too many associations"
            if Counter(self._holders.values())[address] >= self.settings.maximum_associations_per_source:
                return "too many associations from this address"
            self._holders[association_id] = address
            return None

    def give_back(self, association_id: int) -> None:
        with self._lock:
            self._holders.pop(association_id, None)

    def held(self) -> int:
        with self._lock:
            return len(self._holders)
