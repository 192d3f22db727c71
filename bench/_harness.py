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
import math
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import numpy as np
import psutil
import redis.asyncio as aioredis

# Benchmarks run as `python bench/x.py`: make the repository (and tests.serving) importable.
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dispatch.auth.passwords import Passwords  # noqa: E402
from dispatch.domain.events import Actor  # noqa: E402
from dispatch.domain.users import Role  # noqa: E402
from dispatch.infra.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from dispatch.services.users import create_user  # noqa: E402
from dispatch.store.database import create_pool  # noqa: E402
from tests.serving import (  # noqa: E402
    NO_INTAKE_BUDGETS,
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


def process_cpu_s(process: psutil.Process, *, tree: bool = True) -> float:
    """CPU seconds of `process` so far, with `tree` also of its descendants, those alive
    and those reaped (a PostgreSQL backend that has exited still counts)."""
    times = process.cpu_times()
    spent = times.user + times.system
    if tree:
        spent += times.children_user + times.children_system
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                spent += sum(child.cpu_times()[:2])
    return float(spent)


def _machine_busy_s() -> tuple[float, float]:
    """CPU seconds the machine's cores were busy here so far, and stolen: the time a
    virtual machine's cores were ready to run but the host ran something else."""
    times = psutil.cpu_times()
    stolen = getattr(times, "steal", 0.0)
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0) - stolen), stolen


@dataclass(frozen=True)
class CpuReading:
    groups: dict[str, list[float]]  # CPU seconds so far of each group's processes
    machine_s: float  # busy CPU seconds of the whole machine so far
    stolen_s: float  # CPU seconds the host took from this virtual machine so far
    at: float  # time.monotonic()


@dataclass(frozen=True)
class CpuSpent:
    """CPU seconds between two readings: each named group's processes, in order, the
    rest of the machine (`other`: whatever else competed for the same cores) and what
    the host took (`stolen`: another tenant's turn, a noisy neighbour)."""

    groups: dict[str, list[float]]
    other_s: float
    elapsed_s: float
    stolen_s: float = 0.0

    def total(self, group: str) -> float:
        return sum(self.groups.get(group, []))

    def per_op_ms(self, ops: int) -> dict[str, float]:
        """Milliseconds per operation by group (summed over its processes), other, stolen."""
        per = {name: 1000 * sum(v) / max(ops, 1) for name, v in self.groups.items()}
        rest = {
            "other": 1000 * self.other_s / max(ops, 1),
            "stolen": 1000 * self.stolen_s / max(ops, 1),
        }
        return {k: round(v, 3) for k, v in (per | rest).items()}

    def machine_cores(self) -> float:
        """How many cores the whole machine kept busy on average."""
        return (sum(map(sum, self.groups.values())) + self.other_s) / max(self.elapsed_s, 1e-9)


class CpuMeter:
    """CPU time of named groups of processes, each process with its descendants unless
    its group is `flat`, and of the rest of the machine.  The one meter every
    benchmark uses: `micro110 serve` nodes, PostgreSQL, Redis, load generators."""

    def __init__(self, groups: Mapping[str, Sequence[int]], *, flat: Iterable[str] = ()) -> None:
        self.procs = {name: [psutil.Process(pid) for pid in pids] for name, pids in groups.items()}
        self.flat = frozenset(flat)

    def read(self) -> CpuReading:
        groups = {}
        for name, procs in self.procs.items():
            values = []
            for process in procs:
                try:
                    values.append(process_cpu_s(process, tree=name not in self.flat))
                except psutil.Error:  # it has exited: its time is lost, not negative
                    values.append(float("nan"))
            groups[name] = values
        return CpuReading(groups, *_machine_busy_s(), time.monotonic())

    @staticmethod
    def spent(before: CpuReading, after: CpuReading) -> CpuSpent:
        groups = {
            name: [
                0.0 if math.isnan(a - b) else a - b
                for a, b in zip(after.groups[name], was, strict=True)
            ]
            for name, was in before.groups.items()
        }
        ours = sum(map(sum, groups.values()))
        other = max(0.0, after.machine_s - before.machine_s - ours)
        stolen = max(0.0, after.stolen_s - before.stolen_s)
        return CpuSpent(groups, other, after.at - before.at, stolen)


async def service_pids(pool: asyncpg.Pool, redis_url: str) -> dict[str, list[int]]:
    """The PostgreSQL postmaster and the Redis server, when they run on this machine."""
    found = {}
    with contextlib.suppress(psutil.Error):
        async with pool.acquire() as conn:
            backend = psutil.Process(await conn.fetchval("SELECT pg_backend_pid()"))
        postmaster = backend.parent()
        # A remote server's backend pid means nothing here.
        if postmaster is not None and "postgres" in postmaster.name():
            found["postgres"] = [postmaster.pid]
    client = aioredis.from_url(redis_url)
    try:
        pid = int((await client.info("server"))["process_id"])
        if psutil.pid_exists(pid):
            found["redis"] = [pid]
    finally:
        await client.aclose()
    return found


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
                 "MICRO110_LOG_LEVEL": "WARNING",
                 # Every simulated phone calls from this machine's one address.
                 "MICRO110_REGISTRATIONS_PER_MINUTE": "0",
                 # Load generators send many alarms per citizen from one address.
                 **NO_INTAKE_BUDGETS, **env},
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
