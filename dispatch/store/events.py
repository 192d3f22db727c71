"""The incident_events table: the audit trail and the resumable real-time feed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from dispatch.domain.events import Actor, ActorKind

# Held until commit by every transaction that appends an event, so `seq` values
# become visible in increasing order: a reader that has seen seq N can safely resume
# "after N" without missing a lower seq that commits later.
_FEED_LOCK = 0x6D313130_0002


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    type: str
    incident_id: UUID | None
    precinct_code: str | None
    citizen_id: UUID | None
    officer_id: int | None
    actor: Actor
    payload: dict[str, Any]
    created_at: datetime


async def append_event(
    conn: asyncpg.Connection,
    type_: str,
    actor: Actor,
    payload: dict[str, Any],
    *,
    incident_id: UUID | None = None,
    precinct_code: str | None = None,
    citizen_id: UUID | None = None,
    officer_id: int | None = None,
) -> StoredEvent:
    """Append one event inside the caller's transaction; the caller publishes after commit."""
    if not conn.is_in_transaction():
        raise RuntimeError("append_event must run inside the state change's transaction")
    # One round trip: the row is formed (and `seq` drawn) only once the lock is held.
    row = await conn.fetchrow(
        """WITH feed AS (SELECT pg_advisory_xact_lock($1))
           INSERT INTO incident_events
               (type, incident_id, precinct_code, citizen_id, officer_id,
                actor_kind, actor_id, payload)
           SELECT $2::text, $3::uuid, $4::text, $5::uuid, $6::bigint, $7::text, $8::text,
                  $9::jsonb
           FROM feed
           RETURNING seq, created_at""",
        _FEED_LOCK,
        type_,
        incident_id,
        precinct_code,
        citizen_id,
        officer_id,
        actor.kind.value,
        actor.id,
        payload,
    )
    assert row is not None
    return StoredEvent(
        seq=row["seq"],
        type=type_,
        incident_id=incident_id,
        precinct_code=precinct_code,
        citizen_id=citizen_id,
        officer_id=officer_id,
        actor=actor,
        payload=payload,
        created_at=row["created_at"],
    )


def event_from_row(row: asyncpg.Record) -> StoredEvent:
    return StoredEvent(
        seq=row["seq"],
        type=row["type"],
        incident_id=row["incident_id"],
        precinct_code=row["precinct_code"],
        citizen_id=row["citizen_id"],
        officer_id=row["officer_id"],
        actor=Actor(ActorKind(row["actor_kind"]), row["actor_id"]),
        payload=row["payload"],
        created_at=row["created_at"],
    )


async def events_for_incident(conn: asyncpg.Connection, incident_id: UUID) -> list[StoredEvent]:
    rows = await conn.fetch(
        "SELECT * FROM incident_events WHERE incident_id = $1 ORDER BY seq", incident_id
    )
    return [event_from_row(r) for r in rows]


async def latest_seq(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM incident_events")
    return int(value)
