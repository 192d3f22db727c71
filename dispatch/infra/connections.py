"""The infrastructure a process needs: PostgreSQL, Redis, and the keys stored with them.

`open_infrastructure(settings)` starts embedded servers when no URL is configured (in
a worker thread: initdb and pg_ctl block), connects, migrates, and on exit closes and
stops what it started.  `serve` and every CLI command go through it, so they behave
the same whether or not another process is already running on the data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import asyncpg

from dispatch.infra.embedded import EmbeddedPostgres, EmbeddedRedis
from dispatch.settings import Settings
from dispatch.store import database
from dispatch.store.database import (
    DatabaseUnavailable as DatabaseUnavailable,
)  # for the entry point
from dispatch.store.database import create_pool, migrate, schema_version

if TYPE_CHECKING:
    import redis.asyncio as aioredis

logger = logging.getLogger(__name__)


class RedisUnavailable(RuntimeError):
    """Redis could not be reached; the message says where and why."""


# Failures of the database connection, not of the request: the request may be sent
# again (HTTP 503, a "dependency_unavailable" ack).
DATABASE_UNAVAILABLE = (
    ConnectionError,  # refused, reset, aborted
    TimeoutError,  # a pool that hands out no connection, a statement that never ends
    asyncpg.PostgresConnectionError,  # the connection broke mid-statement
    asyncpg.exceptions.OperatorInterventionError,  # shutdown, cannot connect, cancelled
    # A pooled connection that PostgreSQL terminated while it sat idle (a restart):
    # asyncpg refuses the next statement before sending it ("cannot switch to state").
    asyncpg.exceptions.InternalClientError,
)


@dataclass(frozen=True, slots=True)
class Keys:
    """Server secrets: token signing, and the HMAC key for national ID numbers."""

    secret_key: bytes
    id_hash_key: bytes


@dataclass(frozen=True, slots=True)
class Infrastructure:
    settings: Settings
    database_url: str
    redis_url: str | None
    pool: asyncpg.Pool
    redis: aioredis.Redis | None
    keys: Keys

    async def schema_version(self) -> int:
        return await schema_version(self.pool)


async def ping(client: aioredis.Redis) -> None:
    # redis-py types ping() as "Awaitable[bool] | bool" for its sync and async clients.
    await cast(Awaitable[bool], client.ping())


async def connect_redis(
    url: str, timeout_s: float, command_timeout_s: float | None = None
) -> aioredis.Redis:
    # Imported here: commands that need no Redis (a precinct import) skip ~0.05 s.
    import redis.asyncio as aioredis
    import redis.exceptions

    client = aioredis.Redis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        socket_timeout=command_timeout_s,
        health_check_interval=30,
    )
    try:
        await asyncio.wait_for(ping(client), timeout_s)
    except (OSError, TimeoutError, redis.exceptions.RedisError) as exc:
        await client.aclose()
        where = url.split("@")[-1]
        raise RedisUnavailable(f"cannot connect to {where}: {exc or type(exc).__name__}") from exc
    return client


async def postgres_problem(pool: asyncpg.Pool, timeout_s: float) -> str | None:
    """What is wrong with PostgreSQL, or None when a round trip works within `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s):
            async with pool.acquire() as conn:
                await database.ping(conn)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return str(exc) or type(exc).__name__
    return None


async def load_keys(pool: asyncpg.Pool, settings: Settings) -> Keys:
    """Keys from the environment, else generated once and kept in the database."""

    async def stored(name: str) -> str:
        async with pool.acquire() as conn:
            return await database.server_secret(conn, name, secrets.token_urlsafe(48))

    secret = settings.secret_key or await stored("secret_key")
    id_key = settings.id_hash_key or await stored("id_hash_key")
    return Keys(secret_key=secret.encode(), id_hash_key=id_key.encode())


@contextlib.asynccontextmanager
async def open_infrastructure(
    settings: Settings, *, need_redis: bool = True, run_migrations: bool = True
) -> AsyncIterator[Infrastructure]:
    loop = asyncio.get_running_loop()
    data_dir = settings.data_dir.resolve()
    embedded_pg: EmbeddedPostgres | None = None
    embedded_redis: EmbeddedRedis | None = None
    pool: asyncpg.Pool | None = None
    client: aioredis.Redis | None = None
    try:
        database_url = settings.database_url
        if database_url is None:
            embedded_pg = EmbeddedPostgres(data_dir / "postgres")
            database_url = await loop.run_in_executor(None, embedded_pg.start)
        redis_url = settings.redis_url
        if redis_url is None and need_redis:
            embedded_redis = EmbeddedRedis(data_dir / "redis")
            redis_url = await loop.run_in_executor(None, embedded_redis.start)

        pool = await create_pool(
            database_url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            timeout_s=settings.connect_timeout_s,
        )
        if run_migrations:
            await migrate(pool)
        if need_redis and redis_url is not None:
            client = await connect_redis(
                redis_url, settings.connect_timeout_s, settings.redis_timeout_s
            )
        keys = await load_keys(pool, settings)
        yield Infrastructure(
            settings=settings,
            database_url=database_url,
            redis_url=redis_url,
            pool=pool,
            redis=client,
            keys=keys,
        )
    finally:
        if client is not None:
            await client.aclose()
        if pool is not None:
            await pool.close()
        if embedded_redis is not None:
            await loop.run_in_executor(None, embedded_redis.stop)
        if embedded_pg is not None:
            await loop.run_in_executor(None, embedded_pg.stop)
