"""Publishing committed events to whoever listens (Socket.IO, in `signaling`).

Services call `publish` only after their transaction commits.  Listeners must not
raise; a failing listener is logged and the others still run: clients that miss a
push catch up from PostgreSQL by `seq` when they resume.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from dispatch.domain.events import StoredEvent

logger = logging.getLogger(__name__)

Listener = Callable[[Sequence[StoredEvent]], Awaitable[None]]


class Publisher:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        if not events:
            return
        for listener in self._listeners:
            try:
                await listener(events)
            except Exception:
                logger.exception("event listener failed", extra={"seqs": [e.seq for e in events]})
