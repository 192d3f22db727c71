"""What the service benchmarks share: real servers, real `micro110 serve` nodes, figures.

`cluster()` starts what a benchmark needs itself.  With DATABASE_URL and REDIS_URL
set, those servers are used (a fresh database is created on that PostgreSQL server
and dropped afterwards; the Redis database is used as is, so name one you can spare);
otherwise embedded PostgreSQL and Redis run under a temporary directory.  Then N
`micro110 serve` processes start on them, the first loading the demo city.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import numpy as np
import psutil

# Benchmarks run as `python bench/x.py`: make the repository (and tests.serving) importable.
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dispatch.domain.events import Actor  # noqa: E402
from dispatch.domain.users import Role  # noqa: E402
from dispatch.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from dispatch.passwords import Passwords  # noqa: E402
from dispatch.services.users import create_user  # noqa: E402
from dispatch.store.database import create_pool  # noqa: E402
from tests.serving import (  # noqa: E402
    ServerProcess,
    child_env,
    create_database,
    drop_database,
    start_server,
)

PASSWORD = "bench-password-1"  # noqa: S105 - throwaway accounts in a throwaway database


def percentile_ms(samples_s: Sequence[float], q: float) -> float:
    """The q-th percentile of `samples_s` (seconds), in milliseconds, 2 decimals."""
    if not samples_s:
        return float("nan")
    return round(float(np.percentile(np.asarray(samples_s), q)) * 1000.0, 2)


@contextlib.asynccontextmanager
async def raw_servers(workdir: Path) -> AsyncIterator[tuple[str, str]]:
    """(PostgreSQL URL of a fresh database, Redis URL): external if configured, else embedded."""
    external_pg, external_redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    loop = asyncio.get_running_loop()
    postgres = redis = None
    try:
        if external_pg:
            admin_url = external_pg
        else:
            postgres = EmbeddedPostgres(workdir / "pg")
            admin_url = await loop.run_in_executor(None, postgres.start)
        if external_redis:
            redis_url = external_redis
        else:
            redis = EmbeddedRedis(workdir / "redis")
            redis_url = await loop.run_in_executor(None, redis.start)
        name = f"micro110_bench_{secrets.token_hex(4)}"
        database_url = await create_database(admin_url, name)
        try:
            yield database_url, redis_url
        finally:
            await drop_database(admin_url, name)
    finally:
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()


class MachineCpu:
    """CPU seconds spent on this machine by kind of process: the `micro110 serve` nodes,
    PostgreSQL, Redis, this benchmark's own process and everything else."""

    KINDS = ("servers", "postgres", "redis", "client", "other")

    @staticmethod
    def _kind(process: psutil.Process) -> str:
        if process.pid == os.getpid():
            return "client"
        name = process.name()
        if name.startswith("postgres"):
            return "postgres"
        if name.startswith("redis"):
            return "redis"
        if "serve" in process.cmdline() and "dispatch.cli" in process.cmdline():
            return "servers"
        return "other"

    def read(self) -> dict[int, tuple[str, float]]:
        seen: dict[int, tuple[str, float]] = {}
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                seen[process.pid] = (self._kind(process), times.user + times.system)
        return seen

    def spent(
        self, before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
    ) -> dict[str, float]:
        """CPU seconds by kind between two readings."""
        spent = dict.fromkeys(self.KINDS, 0.0)
        for pid, (kind, cpu) in after.items():
            spent[kind] += cpu - before.get(pid, (kind, 0.0))[1]
        return spent

    @staticmethod
    def per_op_ms(spent: dict[str, float], ops: int) -> str:
        return ", ".join(f"{k} {1000 * v / max(ops, 1):.2f}" for k, v in spent.items())


@dataclass
class Cluster:
    nodes: list[ServerProcess]
    database_url: str
    redis_url: str
    pool: asyncpg.Pool

    @property
    def urls(self) -> list[str]:
        return [node.base_url for node in self.nodes]

    async def precinct_codes(self) -> frozenset[str]:
        async with self.pool.acquire() as conn:
            return frozenset(r["code"] for r in await conn.fetch("SELECT code FROM precincts"))

    async def add_staff(
        self, username: str, role: Role, precincts: Iterable[str] | None = None
    ) -> int:
        scope = frozenset(precincts) if precincts is not None else await self.precinct_codes()
        user = await create_user(
            self.pool, Passwords(), username=username, password=PASSWORD, role=role,
            precincts=scope, actor=Actor.system("bench"),
        )  # fmt: skip
        return user.id


@contextlib.asynccontextmanager
async def cluster(nodes: int = 1, **env: str) -> AsyncIterator[Cluster]:
    """`nodes` server processes on one PostgreSQL and one Redis; extra MICRO110_* in env."""
    with tempfile.TemporaryDirectory(prefix="m110b-") as tmp:
        workdir = Path(tmp)
        async with raw_servers(workdir) as (database_url, redis_url):
            base = child_env(
                {"DATABASE_URL": database_url, "REDIS_URL": redis_url,
                 "MICRO110_LOG_LEVEL": "WARNING", **env},
                external=True,
            )  # fmt: skip
            started: list[ServerProcess] = []
            pool = await create_pool(database_url, min_size=1, max_size=4)
            try:
                for n in range(nodes):
                    started.append(
                        await start_server(
                            workdir / f"node-{n + 1}",
                            env=base
                            | {
                                "MICRO110_DEMO": "true" if n == 0 else "false",
                                "MICRO110_NODE_NAME": f"node-{n + 1}",
                            },
                        )
                    )
                yield Cluster(started, database_url, redis_url, pool)
            finally:
                for node in started:
                    with contextlib.suppress(Exception):
                        await node.stop(signal.SIGTERM, timeout_s=30)
                await pool.close()


async def post_json(
    http: aiohttp.ClientSession, url: str, body: Any, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(url, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def login(http: aiohttp.ClientSession, base_url: str, username: str) -> str:
    status, body = await post_json(
        http, f"{base_url}/api/auth/login", {"username": username, "password": PASSWORD}
    )
    if status != 200:
        raise RuntimeError(f"login {username}: {status} {body}")
    token: str = body["token"]
    return token


async def new_citizen(http: aiohttp.ClientSession, base_url: str, device_id: str) -> str:
    status, body = await post_json(http, f"{base_url}/api/citizens", {"device_id": device_id})
    if status != 201 and status != 200:
        raise RuntimeError(f"citizen {device_id}: {status} {body}")
    token: str = body["token"]
    return token


def grid_position(n: int) -> tuple[float, float]:
    """Points about 400 m apart across Nanjing, so no alarm is another's possible duplicate."""
    return 118.70 + (n % 40) * 0.0045, 31.95 + (n // 40 % 40) * 0.0045
