"""SQL for chat messages on an incident (reporter and officers' threads)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from dispatch.domain.events import Actor
from dispatch.domain.field_reports import Capture, Thread


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: uuid.UUID
    incident_id: uuid.UUID
    sender_kind: str
    sender_id: str
    body: str
    client_key: str | None
    created_at: datetime
    thread: str
    captured_at: datetime | None
    lon: float | None
    lat: float | None
    accuracy_m: float | None


def _message(row: asyncpg.Record) -> StoredMessage:
    return StoredMessage(
        id=row["id"], incident_id=row["incident_id"], sender_kind=row["sender_kind"],
        sender_id=row["sender_id"], body=row["body"], client_key=row["client_key"],
        created_at=row["created_at"], thread=row["thread"], captured_at=row["captured_at"],
        lon=row["lon"], lat=row["lat"], accuracy_m=row["accuracy_m"],
    )  # fmt: skip


async def sent_with_key(
    conn: asyncpg.Connection, incident_id: uuid.UUID, sender: Actor, client_key: str
) -> StoredMessage | None:
    """The message this sender already sent on the incident with `client_key`."""
    row = await conn.fetchrow(
        """SELECT * FROM messages WHERE incident_id = $1 AND sender_kind = $2
           AND sender_id = $3 AND client_key = $4""",
        incident_id, sender.kind.value, sender.id, client_key,
    )  # fmt: skip
    return _message(row) if row is not None else None


async def insert_message(
    conn: asyncpg.Connection,
    incident_id: uuid.UUID,
    sender: Actor,
    body: str,
    client_key: str | None,
    thread: Thread,
    capture: Capture,
) -> StoredMessage | None:
    """The new message; None when this sender's `client_key` was used already."""
    place = capture.place
    row = await conn.fetchrow(
        """INSERT INTO messages (id, incident_id, sender_kind, sender_id, body,
               client_key, thread, captured_at, lon, lat, accuracy_m)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT DO NOTHING RETURNING *""",
        uuid.uuid4(), incident_id, sender.kind.value, sender.id, body, client_key,
        thread.value, capture.at, place.lon if place else None,
        place.lat if place else None, place.accuracy_m if place else None,
    )  # fmt: skip
    return _message(row) if row is not None else None
