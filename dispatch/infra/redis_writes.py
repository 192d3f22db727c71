"""What a node tells Redis after its commits, sent together.

Queue index changes (`dispatch.infra.queue_index`) and feed messages (`signaling.hub`) made while
an earlier batch is on its way to Redis go in one pipeline, in the order they were
made: one round trip for however many, instead of one each.  Under light load a batch
is what one request had to say, sent at once.

Redis is an index and a bus, never the only copy: a batch that fails is logged here,
its senders are told (False), and PostgreSQL repairs it (queue rebuild, the hubs'
settlers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from dispatch.infra.batching import GroupCommit

logger = logging.getLogger(__name__)

# Adds one sender's commands to the batch's pipeline.
Commands = Callable[[Any], object]


class RedisWrites:
    def __init__(
        self, client: aioredis.Redis, *, max_batch: int = 256, max_backlog: int = 20_000
    ) -> None:
        self._client = client
        self._max_backlog = max_backlog
        self._refusing = False
        self._group: GroupCommit[Commands, bool] = GroupCommit(
            self._send, max_batch=max_batch, max_running=1
        )

    async def send(self, commands: Commands) -> bool:
        """Have `commands(pipeline)` sent with the next batch; True once Redis has
        executed them, False when the batch failed (logged)."""
        return await self._group.submit(commands)

    def post(self, commands: Commands) -> asyncio.Future[bool]:
        """`send` without waiting: sent in order with the rest, the outcome in the future.

        While Redis is down or hung (each batch then takes the command timeout) at most
        `max_backlog` writes wait; beyond that they are refused at once (False) instead
        of holding memory: PostgreSQL repairs them (queue rebuild, the hubs' settlers)."""
        if self._group.waiting >= self._max_backlog:
            if not self._refusing:
                logger.error(
                    "Redis writes backlogged; refusing more", extra={"waiting": self._group.waiting}
                )
            self._refusing = True
            refused: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            refused.set_result(False)
            return refused
        self._refusing = False
        return self._group.post(commands)

    async def drain(self) -> None:
        """Wait until everything handed over so far has been sent (at shutdown)."""
        await self._group.drain()

    async def _send(self, batch: Sequence[Commands], written: Callable[[], None]) -> list[bool]:
        # MULTI/EXEC: a sorted set per precinct and the global one change together.
        pipe = self._client.pipeline(transaction=True)
        try:
            for commands in batch:
                commands(pipe)
            await pipe.execute()
        except (OSError, redis.exceptions.RedisError, ValueError, TypeError):
            # Once per batch, not per sender: the queue index is repaired by a rebuild
            # (at every start), the feed by every node's settler, from PostgreSQL.
            logger.exception("Redis write failed", extra={"senders": len(batch)})
            return [False] * len(batch)
        return [True] * len(batch)
