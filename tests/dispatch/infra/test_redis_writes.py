"""Redis writes after a commit: batched in order, and a hung Redis holds nobody for ever."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from dispatch.infra.connections import Infrastructure
from dispatch.infra.redis_writes import RedisWrites
from dispatch.infra.throttle import WindowLimit
from dispatch.settings import Settings
from tests.conftest import Servers


def _client(servers: Servers, timeout_s: float) -> aioredis.Redis:
    return aioredis.Redis.from_url(servers.redis_url, socket_timeout=timeout_s)


async def test_writes_handed_over_together_go_in_one_round_trip_in_order(
    infra: Infrastructure, redis: aioredis.Redis
) -> None:
    writes = RedisWrites(redis)
    seen: list[int] = []

    def append(n: int) -> Any:
        def commands(pipe: Any) -> None:
            seen.append(n)
            pipe.append("m110:test:order", str(n))

        return commands

    sent = [writes.post(append(n)) for n in range(5)]
    assert await asyncio.gather(*sent) == [True] * 5
    assert seen == [0, 1, 2, 3, 4]
    assert await redis.get("m110:test:order") == b"01234"
    assert (writes._group.batches, writes._group.items) == (1, 5)


async def test_a_hung_redis_fails_the_batch_and_the_next_one_goes_through(
    infra: Infrastructure, servers: Servers, redis: aioredis.Redis
) -> None:
    client = _client(servers, 0.5)
    writes = RedisWrites(client)
    limit = WindowLimit(client, "test", 1, window_s=60)
    try:
        await redis.client_pause(2000, all=True)
        # Neither waits for ever: the write is reported failed, the counter lets through.
        assert await writes.send(lambda pipe: pipe.set("m110:test:a", 1)) is False
        assert await limit.count("203.0.113.1") is None
        await redis.client_unpause()
        assert await writes.send(lambda pipe: pipe.set("m110:test:b", 1)) is True
        assert await redis.get("m110:test:b") == b"1"
    finally:
        await redis.client_unpause()
        await client.aclose()


def test_the_redis_timeout_setting_reaches_the_client(
    settings: Settings, session_infra: Infrastructure
) -> None:
    assert session_infra.redis is not None
    kwargs = session_infra.redis.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == settings.redis_timeout_s == 5.0


async def test_while_redis_hangs_the_backlog_is_bounded(
    infra: Infrastructure, servers: Servers, redis: aioredis.Redis
) -> None:
    client = _client(servers, 0.5)
    writes = RedisWrites(client, max_batch=2, max_backlog=3)
    try:
        await redis.client_pause(2000, all=True)
        posted = [writes.post(lambda pipe: pipe.set("m110:test:c", 1)) for _ in range(6)]
        # Three wait (the first batch takes two of them when it starts); the rest are
        # refused at once instead of piling up.
        assert [p.done() for p in posted] == [False, False, False, True, True, True]
        assert [p.result() for p in posted[3:]] == [False, False, False]
        await redis.client_unpause()
        await asyncio.gather(*posted)
        assert await writes.send(lambda pipe: pipe.set("m110:test:d", 1)) is True
    finally:
        await redis.client_unpause()
        await client.aclose()
