"""Overdue incidents: waiting longer than their severity allows raises one event each.

Every node runs the sweep; the conditional UPDATE (`overdue_at IS NULL`) makes sure an
incident is marked, and its `incident.overdue` event written, exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from dispatch.domain.events import Actor, EventType
from dispatch.infra.clock import Clock
from dispatch.infra.loops import honour_cancellation
from dispatch.infra.publisher import Publisher
from dispatch.store import events as event_store
from dispatch.store.workflow import mark_overdue
from dispatch.wire.incident_view import incident_view

logger = logging.getLogger(__name__)

# Incidents marked (and events written) per transaction.
OVERDUE_BATCH = 200


@dataclass(frozen=True, slots=True)
class OverdueWatch:
    pool: asyncpg.Pool
    clock: Clock
    publisher: Publisher
    thresholds_s: Mapping[int, int]  # severity -> seconds

    async def sweep(self) -> int:
        """Mark every incident overdue that is due now; how many.  In batches, each its
        own transaction: after a long outage thousands may be due at once, and one
        transaction for them all would hold back every writer's event and every
        console's snapshot (they wait for the feed's writers) until it ended."""
        now = self.clock.now()
        marked = 0
        while True:
            batch = await self._sweep_batch(now)
            marked += batch
            if batch < OVERDUE_BATCH:
                return marked

    async def _sweep_batch(self, now: datetime) -> int:
        severities = sorted(self.thresholds_s)
        async with self.pool.acquire() as conn, conn.transaction():
            overdue = await mark_overdue(
                conn, now, severities, [self.thresholds_s[s] for s in severities],
                limit=OVERDUE_BATCH,
            )  # fmt: skip
            events = []
            for incident in overdue:
                waited = (now - incident.received_at).total_seconds()
                events.append(
                    await event_store.append_event(
                        conn, EventType.INCIDENT_OVERDUE, Actor.system("overdue"),
                        {"incident": incident_view(incident), "waited_s": round(waited, 1),
                         "threshold_s": self.thresholds_s[incident.severity]},
                        incident_id=incident.id, precinct_code=incident.scope_precinct,
                        citizen_id=incident.citizen_id,
                    )
                )  # fmt: skip
        if events:
            logger.warning("incidents overdue", extra={"count": len(events)})
            await self.publisher.publish(events)
        return len(events)

    async def run(self, interval_s: float = 5.0) -> None:
        while True:
            honour_cancellation()
            try:
                await self.sweep()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                logger.exception("overdue sweep failed; retrying")
            await asyncio.sleep(interval_s)
