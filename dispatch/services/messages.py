"""Chat between a dispatcher and the reporter of an incident: persisted, in the feed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from dispatch.domain.errors import NotFound
from dispatch.domain.events import Actor, ActorKind
from dispatch.domain.incidents import CitizenId, Incident
from dispatch.domain.users import Role
from dispatch.infra.publisher import Publisher
from dispatch.services.incidents import IncidentQueries
from dispatch.services.staff_auth import StaffSession
from dispatch.store import events as event_store
from dispatch.store import workflow as workflow_store


def _message(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "incident_id": str(row["incident_id"]),
        "sender_kind": row["sender_kind"],
        "sender_id": row["sender_id"],
        "body": row["body"],
        "client_key": row["client_key"],
        "created_at": row["created_at"].isoformat(),
    }


@dataclass(frozen=True, slots=True)
class MessageService:
    pool: asyncpg.Pool
    publisher: Publisher
    incidents: IncidentQueries

    async def from_staff(
        self, session: StaffSession, incident_id: uuid.UUID, body: str, client_key: str | None
    ) -> dict[str, Any]:
        session.require(Role.DISPATCHER, Role.COMMANDER)
        incident = await self.incidents.get(session, incident_id)  # scope check
        return await self._post(incident, session.actor, body, client_key)

    async def from_citizen(
        self, citizen_id: CitizenId, incident_id: uuid.UUID, body: str, client_key: str | None
    ) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            incident = await workflow_store.get_incident(conn, incident_id)
        if incident is None or incident.citizen_id != citizen_id:
            raise NotFound("no such case", field="incident_id")
        return await self._post(
            incident, Actor(ActorKind.CITIZEN, str(citizen_id)), body, client_key
        )

    async def _post(
        self, incident: Incident, actor: Actor, body: str, client_key: str | None
    ) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """INSERT INTO messages (id, incident_id, sender_kind, sender_id, body, client_key)
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING *""",
                uuid.uuid4(), incident.id, actor.kind.value, actor.id, body, client_key,
            )  # fmt: skip
            if row is None:  # a retry of a message already sent: the same answer
                existing = await conn.fetchrow(
                    """SELECT * FROM messages WHERE incident_id = $1 AND sender_kind = $2
                       AND sender_id = $3 AND client_key = $4""",
                    incident.id, actor.kind.value, actor.id, client_key,
                )  # fmt: skip
                assert existing is not None
                return _message(existing)
            message = _message(row)
            event = await event_store.append_event(
                conn, "message.created", actor,
                {"message": message, "sender_kind": actor.kind.value, "case_no": incident.case_no},
                incident_id=incident.id, precinct_code=incident.scope_precinct,
                citizen_id=incident.citizen_id,
            )  # fmt: skip
        await self.publisher.publish([event])
        return message
