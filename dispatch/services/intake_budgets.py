"""How much one reporter, and one network, may submit: alarms, reports and messages.

Budgets count distinct submissions (idempotency keys) per window, so a phone's retries
never count twice.  A reporter is never turned away on a first alarm: the first alarm
(or report) of a citizen in a window is accepted even when their network has spent its
budget (a whole carrier-grade NAT may be behind one address).  Beyond a budget the
answer is 429 with Retry-After and a message that says to call 110; the refusals are
shown on the reporter's latest open incident (`refused_attempts`, an `incident.updated`
to the consoles), so a dispatcher sees someone trying again and again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum

import asyncpg

from dispatch.domain.errors import RateLimited
from dispatch.domain.events import Actor, EventType
from dispatch.domain.incidents import CitizenId
from dispatch.infra.clock import Clock
from dispatch.infra.publisher import Publisher
from dispatch.infra.throttle import KeyedBudget, RefusalCount, address_group
from dispatch.store import events as event_store
from dispatch.store import workflow as workflow_store
from dispatch.wire.incident_view import incident_view

logger = logging.getLogger(__name__)

# Refusals are written to the incident one by one up to this many, then at powers of
# two: a flood of refused requests must not become a flood of writes.
_WRITE_EVERY_REFUSAL_UP_TO = 20


class Submitted(StrEnum):
    ALARM = "alarm"
    REPORT = "report"
    MESSAGE = "message"


_TOO_MANY = {
    Submitted.ALARM: "too many alarms from this phone in a short time",
    Submitted.REPORT: "too many reports from this phone in a short time",
    Submitted.MESSAGE: "too many messages from this phone in a short time",
}
CALL_110 = "If you are in danger, call 110 now."


@dataclass(frozen=True, slots=True)
class IntakeBudgets:
    pool: asyncpg.Pool
    publisher: Publisher
    clock: Clock
    per_citizen: dict[Submitted, KeyedBudget]
    per_network: KeyedBudget
    refusals: RefusalCount

    async def admit(
        self, citizen_id: CitizenId, kind: Submitted, key: str | None, client: str | None
    ) -> None:
        """Spend one of the citizen's (and, for alarms and reports, their network's)
        budget on the submission `key`; RateLimited beyond it."""
        key = key or f"unkeyed-{uuid.uuid4()}"
        mine = await self.per_citizen[kind].spend(str(citizen_id), key)
        if not mine.allowed:
            await self._refused(citizen_id, kind)
            raise RateLimited(
                f"{_TOO_MANY[kind]}; try again in {mine.retry_after_s} s. {CALL_110}",
                retry_after_s=mine.retry_after_s,
            )
        if client is None or kind is Submitted.MESSAGE:
            return
        first = mine.count == 1
        network = await self.per_network.spend(
            address_group(client), f"{citizen_id}:{key}", force=first
        )
        if not network.allowed:
            await self._refused(citizen_id, kind)
            raise RateLimited(
                f"too many reports from your network in a short time; try again in "
                f"{network.retry_after_s} s. {CALL_110}",
                retry_after_s=network.retry_after_s,
            )

    async def _refused(self, citizen_id: CitizenId, kind: Submitted) -> None:
        refused = await self.refusals.add(str(citizen_id))
        if refused is None or (
            refused > _WRITE_EVERY_REFUSAL_UP_TO and refused & (refused - 1) != 0
        ):
            return
        async with self.pool.acquire() as conn, conn.transaction():
            incident = await workflow_store.record_refusals(
                conn, citizen_id, refused, self.clock.now()
            )
            if incident is None:
                return
            event = await event_store.append_event(
                conn, EventType.INCIDENT_REFUSED, Actor.system("intake-budgets"),
                {"incident": incident_view(incident), "refused_attempts": refused,
                 "refused_kind": kind.value},
                incident_id=incident.id, precinct_code=incident.scope_precinct,
                citizen_id=citizen_id,
            )  # fmt: skip
        await self.publisher.publish([event])
        logger.info(
            "intake refused",
            extra={"citizen_id": str(citizen_id), "incident_id": str(incident.id),
                   "refused": refused, "kind": kind.value},
        )  # fmt: skip
