"""Assignments reach officers at least once.

An assignment is offered until the officer answers: handed over again on every
(re)connect, re-offered every `reoffer_after` while unanswered, and after
`give_up_after` without an answer the dispatcher gets `assignment.unacknowledged`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from dispatch.domain.errors import InvalidTransition, NotFound
from dispatch.domain.events import Actor, StoredEvent
from dispatch.domain.users import Role
from dispatch.infra.clock import Clock
from dispatch.infra.publisher import Publisher
from dispatch.services.staff_auth import StaffSession
from dispatch.store import events as event_store
from dispatch.store import workflow as workflow_store
from dispatch.wire.incident_view import incident_view

logger = logging.getLogger(__name__)

# assignment state -> the states an officer may move it to
_PROGRESS = {
    "accepted": {"en_route", "on_scene", "cleared"},
    "en_route": {"on_scene", "cleared"},
    "on_scene": {"cleared"},
}


@dataclass(frozen=True, slots=True)
class AssignmentService:
    pool: asyncpg.Pool
    publisher: Publisher
    clock: Clock
    reoffer_after: timedelta = timedelta(seconds=30)
    give_up_after: timedelta = timedelta(seconds=120)

    async def pending(self, session: StaffSession) -> list[dict[str, Any]]:
        session.require(Role.OFFICER)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT id, incident_id, offers, offered_at FROM assignments
                   WHERE officer_id = $1 AND state IN ('offered', 'unacknowledged')
                   ORDER BY offered_at""",
                session.user.id,
            )
            result = []
            for row in rows:
                incident = await workflow_store.get_incident(conn, row["incident_id"])
                assert incident is not None
                result.append(
                    {"assignment_id": str(row["id"]), "offers": row["offers"],
                     "offered_at": row["offered_at"].isoformat(),
                     "incident": incident_view(incident)}
                )  # fmt: skip
        return result

    async def _event(
        self, conn: asyncpg.Connection, type_: str, actor: Actor, row: asyncpg.Record, **extra: Any
    ) -> StoredEvent:
        incident = await workflow_store.get_incident(conn, row["incident_id"])
        assert incident is not None
        return await event_store.append_event(
            conn, type_, actor,
            {"incident": incident_view(incident), "assignment_id": str(row["id"]),
             "officer_id": row["officer_id"], "callsign": row["callsign"], **extra},
            # citizen_id: the reporter is told when an officer accepts and arrives.
            incident_id=incident.id, precinct_code=incident.scope_precinct,
            citizen_id=incident.citizen_id, officer_id=row["officer_id"],
        )  # fmt: skip

    async def _locked(
        self, conn: asyncpg.Connection, session: StaffSession, assignment_id: uuid.UUID
    ) -> asyncpg.Record:
        row = await conn.fetchrow(
            """SELECT a.*, o.callsign FROM assignments a JOIN officers o ON o.user_id = a.officer_id
               WHERE a.id = $1 AND a.officer_id = $2 FOR UPDATE OF a""",
            assignment_id,
            session.user.id,
        )
        if row is None:
            raise NotFound("no such assignment of yours", field="assignment_id")
        return row

    async def answer(
        self, session: StaffSession, assignment_id: uuid.UUID, accept: bool, reason: str
    ) -> str:
        session.require(Role.OFFICER)
        now = self.clock.now()
        state = "accepted" if accept else "declined"
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._locked(conn, session, assignment_id)
            if row["state"] == state:
                return state  # a repeated answer (the ack was lost): same result
            if row["state"] not in ("offered", "unacknowledged"):
                raise InvalidTransition(
                    f"cannot {'accept' if accept else 'decline'} an assignment "
                    f"that is {row['state']}",
                    field="assignment_id",
                )
            await conn.execute(
                """UPDATE assignments SET state = $2, acked_at = $3, next_offer_at = NULL,
                       updated_at = $3 WHERE id = $1""",
                assignment_id, state, now,
            )  # fmt: skip
            if accept:
                await workflow_store.set_officers_status(conn, [session.user.id], "busy")
            event = await self._event(
                conn, f"assignment.{state}", session.actor, row, reason=reason
            )
        await self.publisher.publish([event])
        return state

    async def progress(self, session: StaffSession, assignment_id: uuid.UUID, status: str) -> str:
        session.require(Role.OFFICER)
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._locked(conn, session, assignment_id)
            if row["state"] == status:
                return status
            if status not in _PROGRESS.get(row["state"], set()):
                raise InvalidTransition(
                    f"cannot mark an assignment that is {row['state']} as {status}",
                    field="status",
                )
            await conn.execute(
                "UPDATE assignments SET state = $2, updated_at = $3 WHERE id = $1",
                assignment_id,
                status,
                now,
            )
            if status == "cleared":
                await workflow_store.set_officers_status(conn, [session.user.id], "available")
            event = await self._event(conn, f"assignment.{status}", session.actor, row)
        await self.publisher.publish([event])
        return status

    async def sweep(self) -> int:
        """Re-offer unanswered assignments; give up on the ones unanswered too long."""
        now = self.clock.now()
        actor = Actor.system("assignments")
        events: list[StoredEvent] = []
        async with self.pool.acquire() as conn, conn.transaction():
            stale = await conn.fetch(
                """UPDATE assignments a
                   SET state = 'unacknowledged', next_offer_at = NULL, updated_at = $1
                   FROM officers o WHERE o.user_id = a.officer_id
                     AND a.state = 'offered' AND a.offered_at <= $2
                   RETURNING a.*, o.callsign""",
                now, now - self.give_up_after,
            )  # fmt: skip
            for row in stale:
                events.append(
                    await self._event(
                        conn, "assignment.unacknowledged", actor, row, offers=row["offers"]
                    )
                )
            again = await conn.fetch(
                """UPDATE assignments a SET offers = offers + 1, next_offer_at = $2, updated_at = $1
                   FROM officers o WHERE o.user_id = a.officer_id
                     AND a.state = 'offered' AND a.next_offer_at <= $1
                   RETURNING a.*, o.callsign""",
                now, now + self.reoffer_after,
            )  # fmt: skip
            for row in again:
                events.append(
                    await self._event(conn, "assignment.offered", actor, row, offers=row["offers"])
                )
        if events:
            await self.publisher.publish(events)
        return len(events)

    async def run(self, interval_s: float = 2.0) -> None:
        while True:
            try:
                await self.sweep()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                logger.exception("assignment sweep failed; retrying")
            await asyncio.sleep(interval_s)
