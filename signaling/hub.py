"""The feed hub of one node: committed events, in `seq` order, to the right rooms.

Every node publishes the events it commits to one Redis channel and every node's hub
consumes that channel; a node's own events go to its clients at once, without waiting
for their echo.  The hub delivers strictly in `seq` order.  Writers do not serialise
their commits (see `dispatch.store.events`), so event N may arrive while a lower seq is
still in flight, or will never commit (its transaction rolled back), or committed
but its publish was lost: N waits in `pending` until the gap fills from Redis, and
a settler closes what does not fill by itself from PostgreSQL once the feed's
horizon says every seq below has settled.  The settler also polls, so events whose
publish was lost are delivered when nothing further arrives to reveal the gap.

A client resumes by replaying up to the hub's cursor (every seq up to it has settled)
and then joining its rooms while holding the hub's lock, so it misses nothing and sees
nothing twice.  The replay comes from the hub's memory of the last `RECENT` events it
dispatched (read back from PostgreSQL at start), with their deliveries already worked
out and encoded once: a storm of reconnecting consoles costs no query and no decoding
per console.  PostgreSQL is read only when that memory does not reach back far enough
(a client further behind is told to load a fresh snapshot anyway).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import redis.asyncio as aioredis
import redis.exceptions

from dispatch.domain.events import Actor, ActorKind, Horizon, StoredEvent
from dispatch.infra.loops import honour_cancellation, wait_at_most
from dispatch.infra.redis_writes import RedisWrites
from dispatch.services.feed import events_between, horizon, settled_seq
from signaling.audiences import membership, rooms_for
from signaling.fanout import Encoded

logger = logging.getLogger(__name__)

CHANNEL = "m110:feed"

# (namespace, room, wire event name, wire data) for each delivery of one event.
Delivery = tuple[str, str, str, dict[str, Any]]
# event, data, rooms, namespace: one send of the same data to every client in any of rooms.
Emit = Callable[[str, dict[str, Any], Sequence[str], str], Awaitable[None]]


def _log_lost_publish(sent: asyncio.Future[bool], seqs: list[int]) -> None:
    if sent.cancelled() or sent.exception() is not None or sent.result() is False:
        # Not lost: every hub's settler finds them in PostgreSQL.  (RedisWrites logs the
        # failure once per batch; this says which events, for whoever looks.)
        logger.debug("feed publish failed", extra={"seqs": seqs})


class _Seq(msgspec.Struct):
    seq: int


# Reads only the `seq`s of a published message (a list of events), to drop the ones
# delivered already unparsed.
_seqs_of = msgspec.json.Decoder(list[_Seq]).decode


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def encode_events(events: Sequence[StoredEvent]) -> bytes:
    """One feed message: the events of one commit, in `seq` order."""
    return _encode([_wire(event) for event in events])


def decode_events(raw: str | bytes) -> list[StoredEvent]:
    return [_from_wire(data) for data in _decode(raw)]


def _wire(event: StoredEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "type": event.type,
        "incident_id": str(event.incident_id) if event.incident_id else None,
        "precinct_code": event.precinct_code,
        "citizen_id": str(event.citizen_id) if event.citizen_id else None,
        "officer_id": event.officer_id,
        "actor": [event.actor.kind.value, event.actor.id],
        "payload": event.payload,
        "created_at": event.created_at.isoformat(),
    }


def _from_wire(data: dict[str, Any]) -> StoredEvent:
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


_FILL_BATCH = 10000
# Events the hub keeps for replay (a client further behind than this resyncs anyway:
# signaling.namespaces.base.MAX_REPLAY).
RECENT = 5000


@dataclass(frozen=True, slots=True)
class Dispatched:
    """An event as the hub dispatched it: with its deliveries, worked out once."""

    event: StoredEvent
    deliveries: tuple[Delivery, ...]
    # Each delivery once encoded (by delivery index), for the next replay.
    encoded: dict[int, Encoded] = field(default_factory=dict, compare=False)


@dataclass
class FeedHub:
    pool: asyncpg.Pool
    redis: aioredis.Redis
    emit: Emit
    # How often the settler looks at PostgreSQL when nothing is pending (lost
    # publishes), and while an event waits for a lower seq.
    poll_interval_s: float = 1.0
    settle_interval_s: float = 0.01
    cursor: int = 0
    # Moves this node's clients between rooms as the feed says (incident rooms), right
    # after the event that moves them is delivered: (namespace, from room, room, join?).
    move: Callable[[str, str, str, bool], None] | None = None
    # How this node's events reach Redis: with the other writes made meanwhile.
    writes: RedisWrites | None = None

    def __post_init__(self) -> None:
        self.lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: dict[int, StoredEvent] = {}
        self._gap = asyncio.Event()
        self.delivered = 0
        # How often the settler has looked at the feed's horizon (tests wait on it).
        self.looks = 0
        self.looked = asyncio.Condition()
        self._writes = self.writes or RedisWrites(self.redis)
        # The last events dispatched, in seq order; every event with
        # `_recent_floor` < seq <= `cursor` is in it (seqs that never committed aside).
        self._recent: list[Dispatched] = []
        self._recent_seqs: list[int] = []
        self._recent_floor = 0

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        """The Publisher listener: hand committed events to every node, this one directly.

        This node's clients first: they need not wait for the Redis round trip, nor for
        its echo, which `_consume` then drops."""
        try:
            for event in events:
                await self.deliver(event)
        finally:
            # To the other nodes in order with this node's other Redis writes, without
            # waiting: Redis is a bus, and PostgreSQL has the events should it fail.
            # (Even if a delivery here failed: the other nodes' clients need not wait
            # for their settlers.)
            message = encode_events(events)
            seqs = [e.seq for e in events]
            sent = self._writes.post(lambda pipe: pipe.publish(CHANNEL, message))
            sent.add_done_callback(lambda done: _log_lost_publish(done, seqs))

    async def start(self) -> None:
        self.cursor = await settled_seq(self.pool)
        # What clients resuming on this node (say, after it restarted) will ask for.
        self._recent_floor = max(0, self.cursor - RECENT)
        for event in await events_between(self.pool, self._recent_floor, self.cursor):
            self._remember(Dispatched(event, tuple(rooms_for(event))))
        ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._consume(ready), name="feed-consume"),
            asyncio.create_task(self._settle(), name="feed-settle"),
        ]
        await ready.wait()

    async def stop(self) -> None:
        await self._writes.drain()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _consume(self, ready: asyncio.Event) -> None:
        while True:
            honour_cancellation()
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                ready.set()
                while True:
                    honour_cancellation()
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None or message.get("type") != "message":
                        continue
                    if all(
                        one.seq <= self.cursor or one.seq in self._pending
                        for one in _seqs_of(message["data"])
                    ):
                        continue  # delivered or held already: this node's own, or backfilled
                    for event in decode_events(message["data"]):
                        await self.deliver(event)
            except (OSError, redis.exceptions.RedisError):
                ready.set()  # start-up must not hang on Redis: the settler covers delivery
                logger.warning("feed subscription lost; resubscribing", exc_info=True)
                await asyncio.sleep(0.5)
            except Exception:  # this loop must outlive any bad message
                ready.set()
                logger.exception("feed subscription failed; resubscribing")
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(OSError, redis.exceptions.RedisError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _settle(self) -> None:
        previous: Horizon | None = None
        while True:
            honour_cancellation()
            if not self._pending:
                self._gap.clear()
                await wait_at_most(self._gap, self.poll_interval_s)
            if self._pending:
                # Most gaps fill by themselves within a commit or two.
                await asyncio.sleep(self.settle_interval_s)
                if not self._pending:
                    continue
            try:
                now = await horizon(self.pool)
                async with self.looked:
                    self.looks += 1
                    self.looked.notify_all()
                if not now.writers:
                    await self.settle_upto(now.seq)
                elif previous is not None and previous.settled_by(now):
                    await self.settle_upto(previous.seq)
                previous = now
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                logger.warning("feed settling failed", exc_info=True)
                previous = None
                await asyncio.sleep(self.settle_interval_s)
            except Exception:  # without the settler, gaps would never close
                logger.exception("feed settling failed unexpectedly")
                previous = None
                await asyncio.sleep(self.settle_interval_s)

    async def catch_up(self) -> None:
        """Delivers every event committed before the call (waits for writers in flight)."""
        await self.settle_upto(await settled_seq(self.pool))

    async def settle_upto(self, upto: int) -> None:
        """Every seq <= upto has settled: deliver the ones that committed, in order, and
        move past the ones that never will."""
        async with self.lock:
            while self.cursor < upto:
                batch = await events_between(self.pool, self.cursor, upto)
                for event in batch:
                    self._pending.pop(event.seq, None)
                    await self._dispatch(event)
                if len(batch) < _FILL_BATCH:
                    break
            for seq in sorted(s for s in self._pending if s <= upto):
                # Published, so committed, yet not read back: never expected; deliver
                # it late rather than lose it.
                logger.error("feed event missing from PostgreSQL", extra={"seq": seq})
                await self._dispatch(self._pending.pop(seq))
            self.cursor = max(self.cursor, upto)
            await self._drain()

    async def deliver(self, event: StoredEvent) -> None:
        async with self.lock:
            if event.seq <= self.cursor or event.seq in self._pending:
                return  # already delivered or held (a backfill got there first)
            self._pending[event.seq] = event
            await self._drain()
            if self._pending:
                self._gap.set()

    async def _drain(self) -> None:
        while (event := self._pending.pop(self.cursor + 1, None)) is not None:
            await self._dispatch(event)

    async def replay(self, after: int, upto: int) -> list[Dispatched]:
        """The committed events with after < seq <= upto (at most 10,000), oldest first:
        from memory when the hub still holds them, else from PostgreSQL."""
        held = self.recent(after, upto)
        if held is not None:
            return held
        return [
            Dispatched(event, tuple(rooms_for(event)))
            for event in await events_between(self.pool, after, upto)
        ]

    def recent(self, after: int, upto: int) -> list[Dispatched] | None:
        """The events dispatched with after < seq <= upto, oldest first, when the hub
        still holds them all (None: read them from PostgreSQL)."""
        if after < self._recent_floor or upto > self.cursor:
            return None
        return self._recent[
            bisect.bisect_right(self._recent_seqs, after) : bisect.bisect_right(
                self._recent_seqs, upto
            )
        ]

    def _remember(self, dispatched: Dispatched) -> None:
        if self._recent_seqs and dispatched.event.seq <= self._recent_seqs[-1]:
            # Out of order (a published event PostgreSQL did not return, delivered
            # late): replays from before here go to PostgreSQL.
            self._recent_floor = self._recent_seqs[-1]
            self._recent.clear()
            self._recent_seqs.clear()
            return
        self._recent.append(dispatched)
        self._recent_seqs.append(dispatched.event.seq)
        if len(self._recent) > 2 * RECENT:  # trimmed now and then, not on every event
            self._recent_floor = self._recent_seqs[-RECENT - 1]
            del self._recent[:-RECENT], self._recent_seqs[:-RECENT]

    async def _dispatch(self, event: StoredEvent) -> None:
        deliveries = tuple(rooms_for(event))
        self._remember(Dispatched(event, deliveries))
        for namespace, rooms, name, data in _sends(deliveries):
            await self.emit(name, data, rooms, namespace)
        if self.move is not None and (moved := membership(event)) is not None:
            self.move(*moved)
        self.cursor = max(self.cursor, event.seq)
        self.delivered += 1
