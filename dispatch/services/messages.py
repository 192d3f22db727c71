"""Chat on an incident, persisted and in the feed: a dispatcher with the reporter (the
`reporter` thread) and, apart from that, with the officers working it (`officers`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from dispatch.domain.errors import NotFound
from dispatch.domain.events import Actor, ActorKind, EventType
from dispatch.domain.field_reports import NO_CAPTURE, Capture, Place, Thread, capture
from dispatch.domain.incidents import CitizenId, Incident
from dispatch.domain.users import Role
from dispatch.infra.clock import Clock
from dispatch.infra.publisher import Publisher
from dispatch.services.incidents import IncidentQueries
from dispatch.services.intake_budgets import IntakeBudgets, Submitted
from dispatch.services.staff_auth import StaffSession
from dispatch.store import assignments as assignment_store
from dispatch.store import events as event_store
from dispatch.store import messages as message_store
from dispatch.store import workflow as workflow_store


def _message(stored: message_store.StoredMessage) -> dict[str, Any]:
    captured = stored.captured_at
    place = (
        {"lon": stored.lon, "lat": stored.lat, "accuracy_m": stored.accuracy_m}
        if stored.lon is not None
        else None
    )
    return {
        "id": str(stored.id),
        "incident_id": str(stored.incident_id),
        "sender_kind": stored.sender_kind,
        "sender_id": stored.sender_id,
        "body": stored.body,
        "client_key": stored.client_key,
        "created_at": stored.created_at.isoformat(),
        "thread": stored.thread,
        "captured_at": captured.isoformat() if captured is not None else None,
        "place": place,
    }


@dataclass(frozen=True, slots=True)
class MessageService:
    pool: asyncpg.Pool
    publisher: Publisher
    incidents: IncidentQueries
    clock: Clock
    # A reporter's chat is budgeted like their alarms (dispatch/services/intake_budgets.py).
    budgets: IntakeBudgets | None = None

    async def from_staff(
        self,
        session: StaffSession,
        incident_id: uuid.UUID,
        body: str,
        client_key: str | None,
        thread: Thread = Thread.REPORTER,
    ) -> dict[str, Any]:
        """A dispatcher's message to the reporter or to the officers working the incident."""
        session.require(Role.DISPATCHER, Role.COMMANDER)
        incident = await self.incidents.get(session, incident_id)  # scope check
        return await self._post(incident, session.actor, body, client_key, thread)

    async def from_officer(
        self,
        session: StaffSession,
        incident_id: uuid.UUID,
        body: str,
        client_key: str | None,
        captured_at: datetime | None = None,
        place: Place | None = None,
    ) -> dict[str, Any]:
        """An officer's message to the dispatcher, while they work the incident (accepted,
        en route or on scene); the other officers working it see it too."""
        session.require(Role.OFFICER)
        written = capture(captured_at, place, self.clock.now())
        async with self.pool.acquire() as conn:
            if client_key is not None:
                # Sent again from the outbox, perhaps after the assignment ended.
                sent = await message_store.sent_with_key(
                    conn, incident_id, session.actor, client_key
                )
                if sent is not None:
                    return _message(sent)
            incident = await workflow_store.get_incident(conn, incident_id)
            working = incident is not None and await assignment_store.is_working(
                conn, incident_id, session.user.id
            )
        if incident is None or not working:
            raise NotFound("no incident you are working with this id", field="incident_id")
        return await self._post(incident, session.actor, body, client_key, Thread.OFFICERS, written)

    async def from_citizen(
        self, citizen_id: CitizenId, incident_id: uuid.UUID, body: str, client_key: str | None
    ) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            incident = await workflow_store.get_incident(conn, incident_id)
        if incident is None or incident.citizen_id != citizen_id:
            raise NotFound("no such case", field="incident_id")
        if self.budgets is not None:
            await self.budgets.admit(citizen_id, Submitted.MESSAGE, client_key, None)
        return await self._post(
            incident, Actor(ActorKind.CITIZEN, str(citizen_id)), body, client_key,
            Thread.REPORTER,
        )  # fmt: skip

    async def _post(
        self,
        incident: Incident,
        actor: Actor,
        body: str,
        client_key: str | None,
        thread: Thread,
        capture: Capture = NO_CAPTURE,
    ) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            stored = await message_store.insert_message(
                conn, incident.id, actor, body, client_key, thread, capture
            )
            if stored is None:  # a retry of a message already sent: the same answer
                assert client_key is not None
                existing = await message_store.sent_with_key(conn, incident.id, actor, client_key)
                assert existing is not None
                return _message(existing)
            message = _message(stored)
            event = await event_store.append_event(
                conn, EventType.MESSAGE_CREATED, actor,
                {"message": message, "sender_kind": actor.kind.value, "case_no": incident.case_no},
                incident_id=incident.id, precinct_code=incident.scope_precinct,
                # The officers' thread is none of the reporter's business.
                citizen_id=incident.citizen_id if thread is Thread.REPORTER else None,
            )  # fmt: skip
        await self.publisher.publish([event])
        return message
