"""The incident_events table: the audit trail and the resumable real-time feed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from dispatch.domain.events import Actor, ActorKind, EventType, Horizon, StoredEvent

# Every transaction that appends an event holds this lock in SHARED mode from before
# it draws its first `seq` until it ends.  Writers never wait for each other (their
# commits group), so seqs may become visible out of order; readers restore the order:
# `feed_horizon` tells which seqs are settled (committed or never to be), and
# `feed_snapshot` gives a view with no writer in flight.
FEED_LOCK = 0x6D313130_0002
FEED_LOCK_HI, FEED_LOCK_LO = FEED_LOCK >> 32, FEED_LOCK & 0xFFFFFFFF


async def append_event(
    conn: asyncpg.Connection,
    type_: EventType,
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
        """WITH feed AS (SELECT pg_advisory_xact_lock_shared($1))
           INSERT INTO incident_events
               (type, incident_id, precinct_code, citizen_id, officer_id,
                actor_kind, actor_id, payload)
           SELECT $2::text, $3::uuid, $4::text, $5::uuid, $6::bigint, $7::text, $8::text,
                  $9::jsonb
           FROM feed
           RETURNING seq, created_at""",
        FEED_LOCK,
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


async def events_between(
    conn: asyncpg.Connection, after: int, upto: int | None
) -> list[StoredEvent]:
    """Committed events with after < seq <= upto (no upper bound when None), oldest
    first, at most 10,000."""
    rows = await conn.fetch(
        """SELECT * FROM incident_events
           WHERE seq > $1 AND ($2::bigint IS NULL OR seq <= $2)
           ORDER BY seq LIMIT 10000""",
        after,
        upto,
    )
    return [event_from_row(r) for r in rows]


async def latest_officer_events(
    conn: asyncpg.Connection, officer_id: int, seq: int, types: Sequence[str]
) -> list[tuple[UUID, str]]:
    """For each incident, the type of the officer's latest event among `types`, up to
    `seq`."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (incident_id) incident_id, type FROM incident_events
           WHERE officer_id = $1 AND seq <= $2 AND type = any($3::text[])
           ORDER BY incident_id, seq DESC""",
        officer_id,
        seq,
        list(types),
    )
    return [(row["incident_id"], row["type"]) for row in rows]


async def latest_seq(conn: asyncpg.Connection) -> int:
    """The highest committed seq; lower ones may still be in flight (see `feed_horizon`)."""
    value = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM incident_events")
    return int(value)


async def feed_horizon(conn: asyncpg.Connection) -> Horizon:
    # The statement's snapshot is taken before pg_locks is read: a seq visible in it was
    # drawn, like every lower seq, before that read, by a writer that has ended or
    # still holds the lock.  (Virtual transaction ids are never reused while a server runs.)
    row = await conn.fetchrow(
        """SELECT (SELECT coalesce(max(seq), 0) FROM incident_events) AS seq,
                  array(SELECT virtualtransaction FROM pg_locks
                        WHERE locktype = 'advisory' AND granted
                          AND database = (SELECT oid FROM pg_database
                                          WHERE datname = current_database())
                          AND classid::bigint = $1 AND objid::bigint = $2
                          AND objsubid = 1) AS writers""",
        FEED_LOCK_HI,
        FEED_LOCK_LO,
    )
    assert row is not None
    return Horizon(int(row["seq"]), frozenset(row["writers"]))


async def settled_seq(conn: asyncpg.Connection, poll_s: float = 0.005) -> int:
    """A seq at least as high as every seq committed before the call, below which
    nothing more will ever commit (waits for the writers in flight, never blocks them)."""
    first = await feed_horizon(conn)
    while first.writers:
        await asyncio.sleep(poll_s)
        if first.settled_by(await feed_horizon(conn)):
            break
    return first.seq


@contextlib.asynccontextmanager
async def feed_snapshot(conn: asyncpg.Connection) -> AsyncIterator[int]:
    """A read-only REPEATABLE READ transaction whose view holds the effects of exactly
    the events up to the seq it yields, so a reader resuming the feed after that seq
    misses and repeats nothing.  It waits for the feed's writers in flight and holds
    new ones back only until its snapshot is taken (one statement).

    The exclusive lock is a session lock, and a pooled connection is not reset (see
    `database._keep_session`): if anything interrupts taking the snapshot (a reader
    that goes away, a timeout), the lock may have been granted all the same, so the
    connection is closed, which ends the session and its lock, rather than going back
    to the pool holding up every writer."""
    transaction = conn.transaction(isolation="repeatable_read", readonly=True)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", FEED_LOCK)
        await transaction.start()
        seq = await latest_seq(conn)  # the transaction's snapshot is taken here
        await conn.execute("SELECT pg_advisory_unlock($1)", FEED_LOCK)
    except BaseException:
        conn.terminate()
        raise
    try:
        yield seq
    finally:
        # Read-only: nothing to keep.  (If this is interrupted, the pool rolls back.)
        if not conn.is_closed() and conn.is_in_transaction():
            await transaction.rollback()
