"""Writers commit out of seq order; every reader still sees the feed in seq order.

The feed's writers hold a shared lock (they never wait for each other), so a seq may
commit after a higher one, or never.  These tests hold a writer's transaction open
by hand and check what the hub, the snapshot and resume make of it.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import asyncpg
import pytest
from asyncpg.transaction import Transaction

from dispatch.domain.events import Actor, EventType, StoredEvent
from dispatch.services.feed import events_between
from dispatch.store.events import append_event, feed_snapshot
from signaling import hub as hub_module
from signaling.audiences import rooms_for
from signaling.hub import FeedHub
from signaling.server import Signaling
from tests.conftest import STAFF_PASSWORD, Client, Staff, app_of, register_citizen
from tests.dispatch.calls import report
from tests.signaling.feeds import FeedClient


@pytest.fixture
async def live(feed: Callable[[str, str], FeedClient], staff: Staff) -> AsyncIterator[FeedClient]:
    client = feed("/console", staff.commander.token)
    await client.go_live()
    yield client
    await client.close()


def hub_of(client: Client) -> FeedHub:
    from dispatch.app import SIGNALING

    signaling: Signaling = app_of(client)[SIGNALING]
    return signaling.hub


async def note(conn: asyncpg.Connection, text: str) -> StoredEvent:
    # A type no client is sent (the wire's `incident.updated`): only its seq matters here.
    untyped = cast(EventType, "incident.updated")
    return await append_event(
        conn, untyped, Actor.system("test"), {"note": text}, precinct_code="320102"
    )


@contextlib.asynccontextmanager
async def in_flight(pg: asyncpg.Pool, text: str) -> AsyncIterator[tuple[StoredEvent, Transaction]]:
    """A writer that has appended a note and not yet ended: end it with the transaction."""
    async with pg.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            yield await note(conn, text), transaction
        finally:
            if conn.is_in_transaction():
                await transaction.rollback()


async def committed(pg: asyncpg.Pool, text: str) -> StoredEvent:
    async with pg.acquire() as conn, conn.transaction():
        return await note(conn, text)


async def settler_looks(hub: FeedHub, times: int) -> None:
    """Waits until the hub's settler has looked at the feed `times` more times."""
    target = hub.looks + times
    async with hub.looked:
        await hub.looked.wait_for(lambda: hub.looks >= target)


def notes(client: FeedClient) -> list[Any]:
    return [d["note"] for _, d in client.events if "note" in d]


async def test_a_seq_waits_for_a_lower_one_still_in_flight(
    app_client: Client, live: FeedClient, pg: asyncpg.Pool
) -> None:
    hub = hub_of(app_client)
    async with in_flight(pg, "slow") as (slow, slow_tx):
        fast = await committed(pg, "fast")
        assert fast.seq > slow.seq
        await hub.publish([fast])
        await settler_looks(hub, 3)  # the settler sees a writer in flight: it waits
        assert notes(live) == []
        await slow_tx.commit()
    await hub.publish([slow])
    await live.wait_for_seq(fast.seq)
    assert notes(live) == ["slow", "fast"]
    assert live.seqs() == [slow.seq, fast.seq]


async def test_a_seq_that_never_commits_does_not_hold_the_feed_up(
    app_client: Client, live: FeedClient, pg: asyncpg.Pool
) -> None:
    hub = hub_of(app_client)
    async with in_flight(pg, "doomed") as (doomed, doomed_tx):
        after = await committed(pg, "after")
        await hub.publish([after])
        await settler_looks(hub, 2)
        assert notes(live) == []
        await doomed_tx.rollback()
    await live.wait_for_seq(after.seq)
    assert notes(live) == ["after"]
    assert doomed.seq < after.seq


async def test_an_event_whose_publish_was_lost_is_delivered_from_postgresql(
    live: FeedClient, pg: asyncpg.Pool
) -> None:
    lost = await committed(pg, "never published")
    await live.wait_for_seq(lost.seq)
    assert notes(live) == ["never published"]


async def test_the_snapshot_waits_for_writers_in_flight_so_resuming_from_it_misses_nothing(
    app_client: Client, staff: Staff, feed: Callable[[str, str], FeedClient], pg: asyncpg.Pool
) -> None:
    async with in_flight(pg, "in flight during the snapshot") as (slow, slow_tx):
        later = await committed(pg, "committed before the snapshot")
        snapshot = app_client.get("/api/console/snapshot", headers=staff.commander.headers)
        pending = asyncio.ensure_future(snapshot)
        async with pg.acquire() as conn:
            # The snapshot waits behind the writer in flight.
            while not await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ):
                assert not pending.done()
                await asyncio.sleep(0.01)
        assert not pending.done()
        await slow_tx.commit()
    seq = (await (await pending).json())["seq"]
    assert seq >= later.seq > slow.seq
    # Resuming from the snapshot's seq replays neither; from before both, both in order.
    client = feed("/console", staff.commander.token)
    await client.connect()
    try:
        await client.resume(slow.seq - 1)
        await client.wait_for_seq(later.seq)
        assert notes(client) == ["in flight during the snapshot", "committed before the snapshot"]
    finally:
        await client.close()


async def test_a_snapshot_interrupted_at_any_point_leaves_no_lock_behind(pg: asyncpg.Pool) -> None:
    """The snapshot's exclusive lock is a session lock: a reader cancelled while taking
    it (or its timeout firing) must not hand the pool a connection that still holds it,
    or every writer of the feed would wait behind that idle connection."""

    async def reader() -> None:
        async with pg.acquire() as conn, feed_snapshot(conn):
            await asyncio.sleep(0.001)

    # Cancel at every stage: before the lock, while waiting for it behind a writer in
    # flight, between the statements, inside the snapshot.
    for round_ in range(60):
        async with in_flight(pg, f"writer {round_}") as (_, transaction):
            task = asyncio.ensure_future(reader())
            await asyncio.sleep((round_ % 6) * 0.0005)
            await transaction.commit()
            await asyncio.sleep((round_ % 5) * 0.0007)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # A terminated connection's backend lets go of the lock once PostgreSQL notices the
    # closed socket, which takes a moment on a loaded machine; a connection handed back to
    # the pool with the lock would hold it for good.
    held = -1
    for _ in range(100):
        async with pg.acquire() as conn:
            held = await conn.fetchval(
                """SELECT count(*) FROM pg_locks
                   WHERE locktype = 'advisory' AND mode = 'ExclusiveLock'"""
            )
        if held == 0:
            break
        await asyncio.sleep(0.05)
    assert held == 0
    # And a writer gets through at once on every pooled connection.
    async with asyncio.timeout(5):
        await asyncio.gather(*(committed(pg, f"after {n}") for n in range(8)))


async def test_events_no_client_is_shown_leave_no_gap_that_live_ones_wait_on(
    app_client: Client, live: FeedClient, staff: Staff
) -> None:
    """Registrations, logins and logouts are on the feed (the audit trail) though no
    client is shown them; unpublished, each left a gap in the seqs that every live
    event after it waited on until the settler looked at PostgreSQL."""
    hub = hub_of(app_client)
    hub.poll_interval_s = hub.settle_interval_s = 3600.0  # no help from the settler now
    await settler_looks(hub, 1)  # it has picked up the new intervals
    citizen = await register_citizen(app_client, "device-no-gaps-0001")
    login = await app_client.post(
        "/api/auth/login",
        json={"username": staff.dispatcher.username, "password": STAFF_PASSWORD},
    )
    assert login.status == 200
    session = {"Authorization": f"Bearer {(await login.json())['token']}"}
    assert (await app_client.post("/api/auth/logout", headers=session)).status == 200
    await report(app_client, citizen)
    await live.wait_for(lambda events: any(n == "incident.created" for n, _ in events))


async def test_resumes_replay_from_the_hubs_memory_exactly_what_postgresql_holds(
    app_client: Client, pg: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = hub_of(app_client)
    citizen = await register_citizen(app_client, "device-recent")
    start = hub.cursor
    for _ in range(6):
        await report(app_client, citizen)
    await committed(pg, "no client is shown this one")
    await hub.catch_up()
    stored = await events_between(pg, start, hub.cursor)
    held = hub.recent(start, hub.cursor)
    assert held is not None and len(stored) >= 7
    assert [(d.event.seq, d.event.type) for d in held] == [(e.seq, e.type) for e in stored]
    middle = stored[3].seq
    assert [d.event.seq for d in hub.recent(middle, hub.cursor) or []] == [
        e.seq for e in stored[4:]
    ]
    assert hub.recent(start, hub.cursor + 1) is None  # not dispatched yet: not held

    # A node starting (again) holds the last `RECENT` events, read back from PostgreSQL;
    # older ones are replayed from there.
    monkeypatch.setattr(hub_module, "RECENT", 4)
    restarted = FeedHub(pool=pg, redis=hub.redis, emit=hub.emit)
    await restarted.start()
    try:
        assert restarted.cursor == hub.cursor
        newest = restarted.recent(restarted.cursor - 4, restarted.cursor)
        assert newest is not None
        assert [d.event.seq for d in newest] == [e.seq for e in stored if e.seq > hub.cursor - 4]
        assert restarted.recent(start, restarted.cursor) is None
        replayed = await restarted.replay(start, restarted.cursor)
        assert [d.event.seq for d in replayed] == [e.seq for e in stored]
        assert [d.deliveries for d in replayed] == [tuple(rooms_for(e)) for e in stored]
    finally:
        await restarted.stop()
