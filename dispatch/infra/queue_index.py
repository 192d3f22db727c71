"""The priority queue index in Redis: one sorted set per precinct plus a global one.

Redis is an index, never the only copy: every member is an open, unclaimed incident
in PostgreSQL, scored by its `priority_score`.  `rebuild` makes the index agree with
PostgreSQL: at every start, by `micro110 queue rebuild`, and while a node runs (`keep`)
whenever one of its Redis writes failed or Redis has lost the index (restarted without
persistence, flushed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import redis.asyncio as aioredis
import redis.exceptions

from dispatch.infra.loops import honour_cancellation, wait_at_most
from dispatch.infra.redis_writes import Commands, RedisWrites
from dispatch.store import incidents as incident_store

logger = logging.getLogger(__name__)

GLOBAL_KEY = "m110:queue:all"
_PRECINCT_PREFIX = "m110:queue:precinct:"
# Every queue key, for rebuild's scan; nothing else lives under it.
_QUEUE_KEYS = "m110:queue:*"
# Set by every rebuild before it reads PostgreSQL (so a wipe during a rebuild is
# noticed too): gone means Redis lost its data and the index needs building again.
BUILT_KEY = "m110:queue-built"
# Incidents with no precinct (out of jurisdiction, or no position) wait here.
NO_PRECINCT = "_none"
# Entries a rebuild sends to Redis in one go.
_REBUILD_SLICE = 5000


def precinct_key(precinct_code: str | None) -> str:
    return _PRECINCT_PREFIX + (precinct_code or NO_PRECINCT)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class QueueEntry:
    incident_id: UUID
    precinct_code: str | None
    score: float


class PriorityQueue:
    def __init__(self, client: aioredis.Redis, writes: RedisWrites | None = None) -> None:
        self._redis = client
        # Changes go out with whatever else this node tells Redis meanwhile (the feed).
        self._writes = writes or RedisWrites(client)
        # A change of this node's did not reach Redis since the last rebuild began.
        self.out_of_step = False
        self._write_failed = asyncio.Event()  # wakes `keep` at once
        # One rebuild at a time (the start-up one, `keep`'s).
        self._rebuilding = asyncio.Lock()
        # Set once the start-up rebuild has ended, whether it succeeded or not.
        self.started = asyncio.Event()

    def add_soon(self, entries: Iterable[QueueEntry]) -> asyncio.Future[bool]:
        """Index entries, in order with every other change of this node; the future
        says whether Redis took them (a failure is logged: PostgreSQL still has them)."""
        everywhere: dict[str, float] = {}
        by_precinct: dict[str, dict[str, float]] = {}
        for entry in entries:
            member = str(entry.incident_id)
            everywhere[member] = entry.score
            by_precinct.setdefault(precinct_key(entry.precinct_code), {})[member] = entry.score
        if not everywhere:  # nothing to send: no round trip
            nothing: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            nothing.set_result(True)
            return nothing

        def commands(pipe: Any) -> None:
            pipe.zadd(GLOBAL_KEY, everywhere)  # one command per key, however many entries
            for key, members in by_precinct.items():
                pipe.zadd(key, members)

        return self._post(commands)

    def remove_soon(self, incident_id: UUID, precinct_code: str | None) -> asyncio.Future[bool]:
        """Take an incident out of the index, in order with every other change."""
        member = str(incident_id)

        def commands(pipe: Any) -> None:
            pipe.zrem(GLOBAL_KEY, member)
            pipe.zrem(precinct_key(precinct_code), member)

        return self._post(commands)

    async def add(self, entries: Iterable[QueueEntry]) -> bool:
        """`add_soon`, and wait until Redis has them."""
        return await self.add_soon(entries)

    async def remove(self, incident_id: UUID, precinct_code: str | None) -> bool:
        """`remove_soon`, and wait until Redis has it."""
        return await self.remove_soon(incident_id, precinct_code)

    def _post(self, commands: Commands) -> asyncio.Future[bool]:
        # A failure is logged once per batch by RedisWrites; `keep` repairs the index.
        sent = self._writes.post(commands)
        sent.add_done_callback(self._note_outcome)
        return sent

    def _note_outcome(self, sent: asyncio.Future[bool]) -> None:
        if sent.cancelled() or sent.exception() is not None or not sent.result():
            self.out_of_step = True
            self._write_failed.set()

    async def ordered(
        self, precinct_code: str | None = None, *, all_precincts: bool = False
    ) -> list[UUID]:
        key = GLOBAL_KEY if all_precincts else precinct_key(precinct_code)
        return [
            UUID(m.decode() if isinstance(m, bytes) else m)
            for m in await self._redis.zrange(key, 0, -1)
        ]

    async def rebuild_at_start(self, pool: asyncpg.Pool) -> None:
        """The start-up rebuild, run beside the requests rather than before them: nothing
        waits for the index (intake, claims and snapshots read PostgreSQL), and what
        intake queues meanwhile is indexed by intake itself.  A failure is logged and left
        to `keep`, which tries again."""
        began = time.monotonic()
        try:
            queued = await self.rebuild(pool)
            logger.info(
                "queue index rebuilt at start",
                extra={"queued": queued, "took_s": round(time.monotonic() - began, 3)},
            )
        except Exception:  # whatever it was, `keep` tries again; the node serves on
            logger.exception("queue index could not be rebuilt at start; retrying")
            self.out_of_step = True
            self._write_failed.set()
        finally:
            self.started.set()

    async def rebuild(self, pool: asyncpg.Pool) -> int:
        """Make the index agree with PostgreSQL; returns the number of queued incidents.

        Safe while intake runs: it only adds what PostgreSQL has queued, and removes a
        member only after PostgreSQL confirms that incident is no longer queued (or no
        longer queued in that precinct).
        """
        async with self._rebuilding:
            return await self._rebuild(pool)

    async def _rebuild(self, pool: asyncpg.Pool) -> int:
        self.out_of_step = False  # a write failing from here on asks for another
        await self._redis.set(BUILT_KEY, "1")
        await self._drop_foreign_keys()
        async with pool.acquire() as conn:
            rows = await incident_store.queued_scores(conn)
        # In slices, each waited for: one command of 100,000 members would hold Redis
        # (and every other write of this node) for as long as it takes.
        for start in range(0, len(rows), _REBUILD_SLICE):
            entries = (QueueEntry(*row) for row in rows[start : start + _REBUILD_SLICE])
            if not await self.add(entries):
                raise redis.exceptions.RedisError("the queue index's entries did not reach Redis")
        keys = [GLOBAL_KEY] + [
            _text(k) async for k in self._redis.scan_iter(match=_PRECINCT_PREFIX + "*")
        ]
        indexed: dict[str, list[str]] = {}
        for key in keys:
            for member in await self._redis.zrange(key, 0, -1):
                indexed.setdefault(_text(member), []).append(key)
        # Ask PostgreSQL again, after the add: an incident claimed or rerouted meanwhile
        # must not stay indexed, nor under a precinct it has left.  (All queued ones in
        # one read: cheaper than looking up every indexed id.)
        async with pool.acquire() as conn:
            now_queued = {
                str(incident_id): precinct_key(code)
                for incident_id, code, _ in await incident_store.queued_scores(conn)
            }
        stale = [
            (key, member)
            for member, member_keys in indexed.items()
            for key in member_keys
            if member not in now_queued or key not in (GLOBAL_KEY, now_queued[member])
        ]
        for start in range(0, len(stale), _REBUILD_SLICE):
            pipe = self._redis.pipeline(transaction=False)
            for key, member in stale[start : start + _REBUILD_SLICE]:
                pipe.zrem(key, member)
            await pipe.execute()
        logger.info("queue rebuilt", extra={"queued": len(rows), "stale_removed": len(stale)})
        return len(rows)

    async def _drop_foreign_keys(self) -> None:
        """A queue key that is not a sorted set (a stray write by another tool) would fail
        every write to it and every rebuild: it goes, and the rebuild refills it."""
        keys = [_text(k) async for k in self._redis.scan_iter(match=_QUEUE_KEYS)]
        if not keys:
            return
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        foreign = [
            key for key, kind in zip(keys, await pipe.execute(), strict=True)
            if _text(kind) not in ("zset", "none")
        ]  # fmt: skip
        if foreign:
            logger.error("queue keys of the wrong type removed", extra={"keys": foreign})
            await self._redis.delete(*foreign)

    async def keep(self, pool: asyncpg.Pool, interval_s: float) -> None:
        """While the node runs: rebuild as soon as one of this node's writes failed, and
        whenever a look every `interval_s` finds that Redis lost the index (`BUILT_KEY`
        is gone: nothing tells of that but looking).  Until then the index may lag
        PostgreSQL, which still hands out every claim and snapshot.  After a failed
        rebuild the next try waits `interval_s`, so an outage is not hammered."""
        failing = False
        while True:
            honour_cancellation()
            if failing:
                await asyncio.sleep(interval_s)
            else:
                await wait_at_most(self._write_failed, interval_s)
            self._write_failed.clear()
            try:
                lost = not await self._redis.exists(BUILT_KEY)
                if self.out_of_step or lost:
                    logger.warning(
                        "queue index out of step with PostgreSQL; rebuilding",
                        extra={"write_failed": self.out_of_step, "index_lost": lost},
                    )
                    await self.rebuild(pool)
                    if failing:
                        logger.warning("queue index rebuilt after failures")
                failing = False
            except (OSError, asyncpg.PostgresError, redis.exceptions.RedisError):
                # Logged once per outage, not every interval; tried again next time.
                self.out_of_step = True
                if not failing:
                    logger.exception("queue index could not be rebuilt; retrying")
                failing = True
