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
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from dispatch.domain.errors import BadRequest, Conflict, InvalidTransition, NotFound
from dispatch.domain.events import Actor, EventType, StoredEvent
from dispatch.domain.field_reports import Place, capture
from dispatch.domain.users import Role
from dispatch.infra.clock import Clock
from dispatch.infra.loops import honour_cancellation
from dispatch.infra.publisher import Publisher
from dispatch.services.staff_auth import StaffSession
from dispatch.store import assignments as assignment_store
from dispatch.store import events as event_store
from dispatch.store import field_reports as field_store
from dispatch.store import officers as officer_store
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
        """Offers still waiting for this officer's answer, oldest first."""
        session.require(Role.OFFICER)
        async with self.pool.acquire() as conn:
            return await self._held(conn, session, assignment_store.WAITING_STATES)

    async def active(self, session: StaffSession) -> list[dict[str, Any]]:
        """The assignments this officer is working (accepted, en route, on scene)."""
        session.require(Role.OFFICER)
        async with self.pool.acquire() as conn:
            return await self._held(conn, session, assignment_store.WORKING_STATES)

    async def snapshot(self, session: StaffSession) -> dict[str, Any]:
        """The officer's phone on (re)load: duty status, offers waiting, assignments being
        worked, and the feed `seq` they are current as of (resume after it)."""
        session.require(Role.OFFICER)
        async with self.pool.acquire() as conn, event_store.feed_snapshot(conn) as seq:
            return {
                "seq": seq,
                "status": await field_store.officer_status(conn, session.user.id),
                "pending": await self._held(conn, session, assignment_store.WAITING_STATES),
                "active": await self._held(conn, session, assignment_store.WORKING_STATES),
            }

    async def _held(
        self, conn: asyncpg.Connection, session: StaffSession, states: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        result = []
        for held in await assignment_store.assignments_of(conn, session.user.id, states):
            incident = await workflow_store.get_incident(conn, held.incident_id)
            assert incident is not None
            result.append(
                {"assignment_id": str(held.id), "state": held.state,
                 "offers": held.offers, "offered_at": held.offered_at.isoformat(),
                 "incident": incident_view(incident)}
            )  # fmt: skip
        return result

    async def _replayed(
        self,
        conn: asyncpg.Connection,
        session: StaffSession,
        client_key: str | None,
        assignment_id: uuid.UUID,
        action: str,
    ) -> str | None:
        """The first answer to a step sent again with its idempotency key, if any."""
        if client_key is None:
            return None
        done = await field_store.recorded_action(conn, session.user.id, client_key)
        if done is None:
            return None
        if done.assignment_id != assignment_id or done.action != action:
            raise Conflict(
                "this idempotency key was already used for another step", field="client_key"
            )
        return done.result

    async def _remember(
        self,
        conn: asyncpg.Connection,
        session: StaffSession,
        client_key: str | None,
        assignment_id: uuid.UUID,
        action: str,
        result: str,
    ) -> None:
        if client_key is None:
            return
        try:
            async with conn.transaction():  # a savepoint: the race below leaves no mess
                await field_store.record_action(
                    conn, session.user.id, client_key, assignment_id, action, result
                )
        except asyncpg.UniqueViolationError:
            # The same key sent at once for another assignment (this one's row lock
            # serialises sends for the same assignment).
            raise Conflict(
                "this idempotency key was already used for another step", field="client_key"
            ) from None

    async def _event(
        self,
        conn: asyncpg.Connection,
        type_: EventType,
        actor: Actor,
        row: assignment_store.HeldAssignment,
        **extra: Any,
    ) -> StoredEvent:
        incident = await workflow_store.get_incident(conn, row.incident_id)
        assert incident is not None
        return await event_store.append_event(
            conn, type_, actor,
            {"incident": incident_view(incident), "assignment_id": str(row.id),
             "officer_id": row.officer_id, "callsign": row.callsign, **extra},
            # citizen_id: the reporter is told when an officer accepts and arrives.
            incident_id=incident.id, precinct_code=incident.scope_precinct,
            citizen_id=incident.citizen_id, officer_id=row.officer_id,
        )  # fmt: skip

    async def _locked(
        self, conn: asyncpg.Connection, session: StaffSession, assignment_id: uuid.UUID
    ) -> assignment_store.HeldAssignment:
        row = await assignment_store.assignment_for_update(conn, assignment_id, session.user.id)
        if row is None:
            raise NotFound("no such assignment of yours", field="assignment_id")
        return row

    async def answer(
        self,
        session: StaffSession,
        assignment_id: uuid.UUID,
        accept: bool,
        reason: str,
        *,
        client_key: str | None = None,
        captured_at: datetime | None = None,
        place: Place | None = None,
    ) -> str:
        session.require(Role.OFFICER)
        if not accept and not reason.strip():
            raise BadRequest("say why you decline", field="reason")
        now = self.clock.now()
        tapped = capture(captured_at, place, now)
        state = "accepted" if accept else "declined"
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._locked(conn, session, assignment_id)
            replayed = await self._replayed(conn, session, client_key, assignment_id, state)
            if replayed is not None:
                return replayed
            if row.state == state:
                # A repeated answer (the ack was lost): same result.
                await self._remember(conn, session, client_key, assignment_id, state, state)
                return state
            if row.state not in ("offered", "unacknowledged"):
                raise InvalidTransition(
                    f"cannot {'accept' if accept else 'decline'} an assignment that is {row.state}",
                    field="assignment_id",
                )
            await assignment_store.answer_assignment(conn, assignment_id, state, now)
            if accept:
                await officer_store.set_officers_status(conn, [session.user.id], "busy")
            event = await self._event(
                conn, EventType.of_assignment(state), session.actor, row, reason=reason,
                **tapped.payload(),
            )  # fmt: skip
            await self._remember(conn, session, client_key, assignment_id, state, state)
        await self.publisher.publish([event])
        return state

    async def progress(
        self,
        session: StaffSession,
        assignment_id: uuid.UUID,
        status: str,
        *,
        client_key: str | None = None,
        captured_at: datetime | None = None,
        place: Place | None = None,
    ) -> str:
        """En route, on scene, cleared: each recorded once, with when and where the
        officer tapped it; a retry with the same key gets the first answer."""
        session.require(Role.OFFICER)
        now = self.clock.now()
        tapped = capture(captured_at, place, now)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._locked(conn, session, assignment_id)
            replayed = await self._replayed(conn, session, client_key, assignment_id, status)
            if replayed is not None:
                return replayed
            if row.state == status:
                await self._remember(conn, session, client_key, assignment_id, status, status)
                return status
            if status not in _PROGRESS.get(row.state, set()):
                raise InvalidTransition(
                    f"cannot mark an assignment that is {row.state} as {status}",
                    field="status",
                )
            await assignment_store.set_assignment_state(conn, assignment_id, status, now)
            if status == "cleared":
                await officer_store.set_officers_status(conn, [session.user.id], "available")
            event = await self._event(
                conn, EventType.of_assignment(status), session.actor, row, **tapped.payload()
            )
            await self._remember(conn, session, client_key, assignment_id, status, status)
        await self.publisher.publish([event])
        return status

    async def sweep(self) -> int:
        """Re-offer unanswered assignments; give up on the ones unanswered too long."""
        now = self.clock.now()
        actor = Actor.system("assignments")
        events: list[StoredEvent] = []
        async with self.pool.acquire() as conn, conn.transaction():
            stale = await assignment_store.give_up_unanswered(conn, now, now - self.give_up_after)
            for row in stale:
                events.append(
                    await self._event(
                        conn, EventType.ASSIGNMENT_UNACKNOWLEDGED, actor, row, offers=row.offers
                    )
                )
            again = await assignment_store.offer_again(conn, now, self.reoffer_after)
            for row in again:
                events.append(
                    await self._event(
                        conn, EventType.ASSIGNMENT_OFFERED, actor, row, offers=row.offers
                    )
                )
        if events:
            await self.publisher.publish(events)
        return len(events)

    async def run(self, interval_s: float = 2.0) -> None:
        while True:
            honour_cancellation()
            try:
                await self.sweep()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                logger.exception("assignment sweep failed; retrying")
            await asyncio.sleep(interval_s)
