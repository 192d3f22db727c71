import asyncio
from typing import cast

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
    from dispatch.domain.events import Actor, EventType
    from dispatch.store.events import append_event

    test_type = cast(EventType, "x.test")  # a type of its own: only the seqs matter

    async with pg.acquire() as conn:
        with pytest.raises(RuntimeError, match="transaction"):
            await append_event(conn, test_type, Actor.system(), {})
        async with conn.transaction():
            first = await append_event(conn, test_type, Actor.system(), {"n": 1})
            second = await append_event(conn, test_type, Actor.system(), {"n": 2})
    assert second.seq > first.seq


@pytest.mark.parametrize(
    ("table", "insert", "key", "changed"),
    [
        ("tags", None, "code", "robbery2"),
        (
            "precincts",
            "INSERT INTO precincts (code, name, geometry) VALUES ('P1', 'One', '{}')",
            "code",
            "P2",
        ),
        (
            "citizens",
            "INSERT INTO citizens (id, device_id) VALUES (gen_random_uuid(), 'phone-1')",
            "id",
            "gen_random_uuid()",
        ),
    ],
)
async def test_referenced_rows_are_never_deleted_nor_rekeyed(
    pg: asyncpg.Pool, table: str, insert: str | None, key: str, changed: str
) -> None:
    # Incidents reference tags, precincts and citizens without foreign keys (0004):
    # the rows they point at must stay.
    async with pg.acquire() as conn:
        if insert is not None:
            await conn.execute(insert)
        value = await conn.fetchval(f"SELECT {key} FROM {table} ORDER BY {key} LIMIT 1")
        literal = changed if changed.endswith("()") else f"'{changed}'"
        with pytest.raises(asyncpg.RestrictViolationError, match="never deleted"):
            await conn.execute(f"DELETE FROM {table} WHERE {key} = $1", value)
        with pytest.raises(asyncpg.RestrictViolationError, match="never changes"):
            await conn.execute(f"UPDATE {table} SET {key} = {literal} WHERE {key} = $1", value)
        # Everything else about them may change: a tag or precinct is deactivated.
        if table != "citizens":
            await conn.execute(f"UPDATE {table} SET active = false WHERE {key} = $1", value)
            await conn.execute(f"UPDATE {table} SET active = true WHERE {key} = $1", value)
        assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {key} = $1", value) == 1
