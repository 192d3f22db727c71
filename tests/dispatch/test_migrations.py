import asyncio

import asyncpg
import pytest

from dispatch.store.database import available_migrations, create_pool, migrate, schema_version
from tests.conftest import Servers
from tests.serving import create_database, drop_database

EXPECTED_TABLES = {
    "citizens", "reports", "attachments", "incidents", "incident_events", "precincts",
    "users", "officers", "assignments", "messages", "schema_version",
}  # fmt: skip


async def test_fresh_database_migrates_once_even_when_raced(servers: Servers) -> None:
    admin = servers.admin_database_url
    name = "micro110_test_migrate_race"
    await drop_database(admin, name)
    url = await create_database(admin, name)
    pools = [await create_pool(url, min_size=1, max_size=2) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(pool) for pool in pools))
        # Exactly one migrator applied each version; the others found it done.
        applied = [m.version for result in results for m in result]
        assert sorted(applied) == [m.version for m in available_migrations()]
        assert await migrate(pools[0]) == []  # idempotent
        assert await schema_version(pools[0]) == available_migrations()[-1].version
        async with pools[0].acquire() as conn:
            tables = {
                r["tablename"]
                for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname='public'"
                )
            }
            recorded = await conn.fetch("SELECT version, name FROM schema_version ORDER BY version")
        assert tables >= EXPECTED_TABLES
        assert [(r["version"], r["name"]) for r in recorded] == [
            (m.version, m.name) for m in available_migrations()
        ]
    finally:
        for pool in pools:
            await pool.close()
        await drop_database(admin, name)


async def test_event_rows_must_be_written_in_a_transaction(pg: asyncpg.Pool) -> None:
    from dispatch.domain.events import Actor
    from dispatch.store.events import append_event

    async with pg.acquire() as conn:
        with pytest.raises(RuntimeError, match="transaction"):
            await append_event(conn, "x.test", Actor.system(), {})
        async with conn.transaction():
            first = await append_event(conn, "x.test", Actor.system(), {"n": 1})
            second = await append_event(conn, "x.test", Actor.system(), {"n": 2})
    assert second.seq > first.seq
