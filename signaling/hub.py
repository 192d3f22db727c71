"""The feed hub of one node: committed events, in `seq` order, to the right rooms.

Every node publishes the events it commits to one Redis channel and every node's hub
consumes that channel; a node's own events go to its clients at once, without waiting
for their echo.  The hub delivers strictly in `seq` order: `seq` is assigned
under a lock held until commit, so when event N has committed every lower seq has
committed or never will, and a gap (an event published by another node that has not
arrived yet, or a publish lost with a Redis hiccup) is filled from PostgreSQL.  A poll
of PostgreSQL catches up when no further event arrives to reveal a gap.

A client resumes by replaying from PostgreSQL and then joining its rooms while
holding the hub's lock, so it misses nothing and sees nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import redis.asyncio as aioredis
import redis.exceptions

from dispatch.domain.events import Actor, ActorKind
from dispatch.store.events import StoredEvent, event_from_row
from signaling.audiences import membership, rooms_for

logger = logging.getLogger(__name__)

CHANNEL = "m110:feed"

# (namespace, room, wire event name, wire data) for each delivery of one event.
Delivery = tuple[str, str, str, dict[str, Any]]
# event, data, rooms, namespace: one send of the same data to every client in any of rooms.
Emit = Callable[[str, dict[str, Any], Sequence[str], str], Awaitable[None]]


class _Seq(msgspec.Struct):
    seq: int


# Reads only `seq` of a published event, to drop the ones delivered already unparsed.
_seq_of = msgspec.json.Decoder(_Seq).decode


def encode_event(event: StoredEvent) -> str:
    return json.dumps(
        {
            "seq": event.seq,
            "type": event.type,
            "incident_id": str(event.incident_id) if event.incident_id else None,
            "precinct_code": event.precinct_code,
            "citizen_id": str(event.citizen_id) if event.citizen_id else None,
            "officer_id": event.officer_id,
            "actor": [event.actor.kind.value, event.actor.id],
            "payload": event.payload,
            "created_at": event.created_at.isoformat(),
        },
        separators=(",", ":"),
    )


def decode_event(raw: str | bytes) -> StoredEvent:
    data = json.loads(raw)
    return StoredEvent(
        seq=int(data["seq"]),
        type=data["type"],
        incident_id=UUID(data["incident_id"]) if data["incident_id"] else None,
        precinct_code=data["precinct_code"],
        citizen_id=UUID(data["citizen_id"]) if data["citizen_id"] else None,
        officer_id=data["officer_id"],
        actor=Actor(ActorKind(data["actor"][0]), data["actor"][1]),
        payload=data["payload"],
        created_at=datetime.fromisoformat(data["created_at"]),
    )


async def events_between(
    pool: asyncpg.Pool, after: int, upto: int | None, where: str = "true", *args: Any
) -> list[StoredEvent]:
    """Events with after < seq <= upto (no upper bound when None), oldest first."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"""SELECT * FROM incident_events
                WHERE seq > $1 AND ($2::bigint IS NULL OR seq <= $2) AND {where}
                ORDER BY seq LIMIT 10000""",
            after,
            upto,
            *args,
        )
    return [event_from_row(r) for r in rows]


def _sends(
    deliveries: Iterable[Delivery],
) -> list[tuple[str, list[str], str, dict[str, Any]]]:
    """Deliveries of the same data under the same name, merged into one send to all their
    rooms: the packet is encoded once, and a client in two of the rooms gets it once."""
    sends: list[tuple[str, list[str], str, dict[str, Any]]] = []
    for namespace, room, name, data in deliveries:
        if sends and sends[-1][0] == namespace and sends[-1][2] == name and sends[-1][3] is data:
            sends[-1][1].append(room)
        else:
            sends.append((namespace, [room], name, data))
    return sends


@dataclass
class FeedHub:
    pool: asyncpg.Pool
    redis: aioredis.Redis
    emit: Emit
    poll_interval_s: float = 1.0
    cursor: int = 0
    # Moves this node's clients between rooms as the feed says (incident rooms), right
    # after the event that moves them is delivered: (namespace, from room, room, join?).
    move: Callable[[str, str, str, bool], None] | None = None

    def __post_init__(self) -> None:
        self.lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.delivered = 0

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        """The Publisher listener: hand committed events to every node, this one directly."""
        pipe = self.redis.pipeline(transaction=False)
        for event in events:
            pipe.publish(CHANNEL, encode_event(event))
        try:
            await pipe.execute()
        except (OSError, redis.exceptions.RedisError):
            # Not lost: every hub's poll finds them in PostgreSQL.
            logger.exception("feed publish failed", extra={"seqs": [e.seq for e in events]})
        # This node's clients need not wait for the Redis echo, which `_consume` then drops.
        try:
            for event in events:
                await self.deliver(event)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # A gap could not be filled just now: the echo or the poll will deliver them.
            logger.warning("feed delivery failed", extra={"seqs": [e.seq for e in events]})

    async def start(self) -> None:
        async with self.pool.acquire() as conn:
            self.cursor = int(
                await conn.fetchval("SELECT coalesce(max(seq), 0) FROM incident_events")
            )
        ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._consume(ready), name="feed-consume"),
            asyncio.create_task(self._poll(), name="feed-poll"),
        ]
        await ready.wait()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _consume(self, ready: asyncio.Event) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                ready.set()
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None or message.get("type") != "message":
                        continue
                    if _seq_of(message["data"]).seq <= self.cursor:
                        continue  # delivered already: this node's own, or backfilled
                    await self.deliver(decode_event(message["data"]))
            except (OSError, redis.exceptions.RedisError):
                ready.set()  # start-up must not hang on Redis: the poll covers delivery
                logger.warning("feed subscription lost; resubscribing", exc_info=True)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(OSError, redis.exceptions.RedisError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self.catch_up()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                logger.warning("feed poll failed", exc_info=True)

    async def catch_up(self) -> None:
        async with self.lock:
            for event in await events_between(self.pool, self.cursor, None):
                await self._dispatch(event)

    async def deliver(self, event: StoredEvent) -> None:
        async with self.lock:
            if event.seq <= self.cursor:
                return  # already delivered (a backfill got there first)
            if event.seq > self.cursor + 1:
                for missing in await events_between(self.pool, self.cursor, event.seq - 1):
                    await self._dispatch(missing)
            await self._dispatch(event)

    async def _dispatch(self, event: StoredEvent) -> None:
        for namespace, rooms, name, data in _sends(rooms_for(event)):
            await self.emit(name, data, rooms, namespace)
        if self.move is not None and (moved := membership(event)) is not None:
            self.move(*moved)
        self.cursor = max(self.cursor, event.seq)
        self.delivered += 1
