"""Shared fixtures: real PostgreSQL and Redis, started once per test session.

By default both are embedded (under a temporary directory).  With DATABASE_URL /
REDIS_URL set, those servers are used instead: the tests create (and drop) their own
database on that PostgreSQL server, but FLUSH the Redis database named by REDIS_URL,
so point REDIS_URL at a database you can spare (e.g. redis://127.0.0.1:6379/15).
Under pytest-xdist (`./dev test` with no arguments) each worker process is a test
session of its own: its own embedded servers, or its own database on DATABASE_URL's
server; REDIS_URL allows one worker only (pub/sub channels span a server's databases).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dispatch.app import create_app
from dispatch.demo.loader import DEMO_FILE
from dispatch.domain.events import Actor
from dispatch.http.keys import QUEUE
from dispatch.infra.connections import Infrastructure, open_infrastructure
from dispatch.infra.embedded import EmbeddedPostgres, EmbeddedRedis
from dispatch.infra.precinct_registry import IndexCache
from dispatch.services.precincts import import_precincts
from dispatch.settings import Settings
from geo.datum import Datum
from tests.fakes import FakeClock, RecordingSms
from tests.serving import (
    NO_INTAKE_BUDGETS,
    ServerProcess,
    child_env,
    create_database,
    drop_database,
    start_server,
)

# Tables whose rows the migrations seed; everything else is emptied between tests.
_KEEP_TABLES = frozenset({"schema_version", "tags", "server_secrets"})


@dataclass(frozen=True, slots=True)
class Servers:
    """Where the session's PostgreSQL server and Redis database are."""

    admin_database_url: str  # the server's maintenance database (to create test DBs)
    database_url: str  # this session's own database
    redis_url: str


@pytest.fixture(scope="session")
def service_dir() -> Iterator[Path]:
    # Short path: unix sockets live in here.
    with tempfile.TemporaryDirectory(prefix="m110-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def postgres_admin_url(service_dir: Path) -> Iterator[str]:
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(service_dir / "pg")
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def redis_url(service_dir: Path) -> Iterator[str]:
    external = os.environ.get("REDIS_URL")
    if external:
        if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
            # Every database of a Redis server shares its pub/sub channels: the workers'
            # nodes would hear each other's feeds.
            pytest.exit("REDIS_URL with several pytest workers: run with -n 0", returncode=4)
        yield external
        return
    server = EmbeddedRedis(service_dir / "redis")
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
async def servers(postgres_admin_url: str, redis_url: str) -> AsyncIterator[Servers]:
    name = f"micro110_test_{os.getpid()}_{secrets.token_hex(3)}"
    url = await create_database(postgres_admin_url, name)
    yield Servers(postgres_admin_url, url, redis_url)
    await drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def settings(servers: Servers, service_dir: Path) -> Settings:
    return Settings(
        database_url=servers.database_url,
        redis_url=servers.redis_url,
        data_dir=service_dir / "data",
        demo=False,
        db_pool_min=1,
        db_pool_max=10,
        log_format="text",
        background_tasks=False,
        # Tests move the fake clock by hours; the 15-minute access token has its own test.
        citizen_token_ttl_s=7 * 24 * 3600,
        # Tests file many alarms as one citizen from one address; the budgets have their
        # own tests (tests/dispatch/services/test_intake_budgets.py) with their settings.
        alarms_per_citizen=0,
        reports_per_citizen=0,
        messages_per_citizen=0,
        intake_per_network=0,
    )


@pytest.fixture(scope="session")
async def session_infra(settings: Settings) -> AsyncIterator[Infrastructure]:
    async with open_infrastructure(settings) as infra:
        yield infra


async def reset_state(infra: Infrastructure) -> None:
    async with infra.pool.acquire() as conn:
        tables = [
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            if r["tablename"] not in _KEEP_TABLES
        ]
        if tables:
            await conn.execute(
                "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
            )
    assert infra.redis is not None
    await infra.redis.flushdb()


@pytest.fixture
async def infra(session_infra: Infrastructure) -> Infrastructure:
    """The session's servers, emptied for this test."""
    await reset_state(session_infra)
    return session_infra


@pytest.fixture
async def pg(infra: Infrastructure) -> asyncpg.Pool:
    return infra.pool


@pytest.fixture
async def redis(infra: Infrastructure) -> aioredis.Redis:
    assert infra.redis is not None
    return infra.redis


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def nanjing(infra: Infrastructure, index_cache: IndexCache) -> list[str]:
    """The demo city's 11 districts as precincts; returns their codes."""
    collection = json.loads(
        resources.files("dispatch.demo").joinpath(DEMO_FILE).read_text(encoding="utf-8")
    )
    await import_precincts(
        infra.pool, collection, name_property="name", code_property="adcode",
        datum=Datum.WGS84, replace=False, source="test", actor=Actor.system("test"),
        cache=index_cache,
    )  # fmt: skip
    async with infra.pool.acquire() as conn:
        return [r["code"] for r in await conn.fetch("SELECT code FROM precincts ORDER BY code")]


@pytest.fixture
def sms() -> RecordingSms:
    return RecordingSms()


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """Override in a test module to run the app with other settings."""
    return settings


@pytest.fixture(scope="session")
def index_cache() -> IndexCache:
    return IndexCache()


@pytest.fixture
async def app(
    infra: Infrastructure,
    app_settings: Settings,
    fake_clock: FakeClock,
    sms: RecordingSms,
    nanjing: list[str],
    index_cache: IndexCache,
) -> web.Application:
    return create_app(
        app_settings,
        infrastructure=infra,
        clock=fake_clock,
        sms_sender=sms,
        index_cache=index_cache,
    )


@pytest.fixture
async def app_client(
    app: web.Application,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    client = TestClient(TestServer(app))
    await client.start_server()
    # The start-up index rebuild runs beside the requests; tests start from a whole index.
    await asyncio.wait_for(app[QUEUE].started.wait(), 60)
    yield client
    await client.close()


Client = TestClient[web.Request, web.Application]


def app_of(client: Client) -> web.Application:
    app = client.app
    assert app is not None
    return app


@dataclass(frozen=True, slots=True)
class CitizenSession:
    id: str
    token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register_citizen(client: Client, device: str = "test-device-0001") -> CitizenSession:
    response = await client.post("/api/citizens", json={"device_id": device})
    assert response.status == 201, await response.text()
    body = await response.json()
    return CitizenSession(body["citizen_id"], body["token"], body["refresh_token"])


@pytest.fixture
async def citizen(app_client: Client) -> CitizenSession:
    return await register_citizen(app_client)


@dataclass(frozen=True, slots=True)
class StaffLogin:
    id: int
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


STAFF_PASSWORD = "correct horse battery staple"


async def make_staff(
    client: Client,
    username: str,
    role: str,
    precincts: tuple[str, ...] = (),
    callsign: str | None = None,
) -> StaffLogin:
    from dispatch.domain.users import Role
    from dispatch.http.keys import INFRA, PASSWORDS
    from dispatch.services.users import create_user

    app = app_of(client)
    user = await create_user(
        app[INFRA].pool, app[PASSWORDS], username=username, password=STAFF_PASSWORD,
        role=Role(role), precincts=frozenset(precincts), callsign=callsign, actor=Actor.system("test"),
    )  # fmt: skip
    response = await client.post(
        "/api/auth/login", json={"username": username, "password": STAFF_PASSWORD}
    )
    assert response.status == 200, await response.text()
    return StaffLogin(user.id, username, (await response.json())["token"])


@dataclass(frozen=True, slots=True)
class Staff:
    dispatcher: StaffLogin  # Xuanwu (320102)
    other_dispatcher: StaffLogin  # Gulou (320106) only
    commander: StaffLogin
    officer: StaffLogin  # Xuanwu


@pytest.fixture
async def staff(app_client: Client) -> Staff:
    return Staff(
        dispatcher=await make_staff(app_client, "disp-xw", "dispatcher", ("320102",)),
        other_dispatcher=await make_staff(app_client, "disp-gl", "dispatcher", ("320106",)),
        commander=await make_staff(app_client, "cmdr", "commander"),
        officer=await make_staff(app_client, "off-xw", "officer", ("320102",), "XW-07"),
    )


@pytest.fixture
async def cluster(
    tmp_path: Path, servers: Servers, redis: aioredis.Redis
) -> AsyncIterator[tuple[ServerProcess, ServerProcess, str]]:
    """Two `micro110 serve` processes on a fresh database and this session's Redis."""
    name = f"micro110_test_cluster_{secrets.token_hex(3)}"
    database_url = await create_database(servers.admin_database_url, name)
    env = child_env(
        # A load of alarms from a few citizens on one address: no intake budgets (they
        # have their own tests, tests/dispatch/services/test_intake_budgets.py).
        {"DATABASE_URL": database_url, "REDIS_URL": servers.redis_url,
         "MICRO110_LOG_LEVEL": "WARNING", **NO_INTAKE_BUDGETS},
        external=True,
    )  # fmt: skip
    started: list[ServerProcess] = []
    try:
        # The first node migrates and loads the demo city (precincts); the second joins.
        started.append(
            await start_server(
                tmp_path / "node-1",
                env=env | {"MICRO110_DEMO": "true", "MICRO110_NODE_NAME": "node-1"},
            )
        )
        started.append(
            await start_server(
                tmp_path / "node-2",
                env=env | {"MICRO110_DEMO": "false", "MICRO110_NODE_NAME": "node-2"},
            )
        )
        yield started[0], started[1], database_url
    finally:
        for server in started:
            if server.proc.returncode is None:
                server.proc.kill()
                await server.proc.wait()
        await drop_database(servers.admin_database_url, name)
