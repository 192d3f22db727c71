"""Reading the event feed back from PostgreSQL, for the hub that fans it out and for
clients that resume: how far the feed has settled, and the events between two seqs.
(The feed's ordering rules: `dispatch.store.events`.)"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from dispatch.domain.events import Horizon, StoredEvent
from dispatch.store import events as event_store


async def settled_seq(pool: asyncpg.Pool) -> int:
    """A seq at least as high as every seq committed before the call, below which
    nothing more will ever commit."""
    async with pool.acquire() as conn:
        return await event_store.settled_seq(conn)


async def horizon(pool: asyncpg.Pool) -> Horizon:
    """One look at the feed: its highest seq and the writers in flight."""
    async with pool.acquire() as conn:
        return await event_store.feed_horizon(conn)


async def events_between(pool: asyncpg.Pool, after: int, upto: int | None) -> list[StoredEvent]:
    """Committed events with after < seq <= upto (no upper bound when None), oldest
    first, at most 10,000."""
    async with pool.acquire() as conn:
        return await event_store.events_between(conn, after, upto)


async def latest_officer_events(
    pool: asyncpg.Pool, officer_id: int, seq: int, types: Sequence[str]
) -> list[tuple[UUID, str]]:
    """For each incident, the type of the officer's latest event among `types`, up to
    `seq`."""
    async with pool.acquire() as conn:
        return await event_store.latest_officer_events(conn, officer_id, seq, types)
