"""SQL for precinct boundaries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

# Servers LISTEN here; the NOTIFY is sent inside the import's transaction, so
# PostgreSQL delivers it only if and when that transaction commits.
PRECINCTS_CHANNEL = "micro110_precincts"


async def upsert_precincts(
    conn: asyncpg.Connection, rows: Sequence[tuple[str, str, dict[str, Any]]], source: str
) -> None:
    await conn.executemany(
        """INSERT INTO precincts (code, name, geometry, source, active, updated_at)
           VALUES ($1, $2, $3, $4, true, now())
           ON CONFLICT (code) DO UPDATE
             SET name = excluded.name, geometry = excluded.geometry,
                 source = excluded.source, active = true, updated_at = now()""",
        [(code, name, geometry, source) for code, name, geometry in rows],
    )


async def deactivate_others(conn: asyncpg.Connection, keep: Sequence[str]) -> list[str]:
    """Retire precincts not in `keep` (kept as rows: incidents still refer to them)."""
    rows = await conn.fetch(
        """UPDATE precincts SET active = false, updated_at = now()
           WHERE active AND NOT (code = any($1::text[])) RETURNING code""",
        list(keep),
    )
    return sorted(r["code"] for r in rows)


async def record_import(
    conn: asyncpg.Connection,
    *,
    source: str,
    datum: str,
    accepted: int,
    rejected: int,
    report: list[str],
) -> int:
    import_id: int = await conn.fetchval(
        """INSERT INTO precinct_imports (source, datum, accepted, rejected, report)
           VALUES ($1, $2, $3, $4, $5) RETURNING id""",
        source,
        datum,
        accepted,
        rejected,
        report,
    )
    await conn.execute("SELECT pg_notify($1, $2)", PRECINCTS_CHANNEL, str(import_id))
    return import_id


async def active_precincts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(
        await conn.fetch("SELECT code, name, geometry FROM precincts WHERE active ORDER BY code")
    )


async def precinct_names(conn: asyncpg.Connection) -> dict[str, str]:
    return {r["code"]: r["name"] for r in await conn.fetch("SELECT code, name FROM precincts")}


async def latest_import_id(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM precinct_imports"))


async def precinct_name(conn: asyncpg.Connection, code: str | None) -> str | None:
    name: str | None = await conn.fetchval("SELECT name FROM precincts WHERE code = $1", code)
    return name


async def is_active(conn: asyncpg.Connection, code: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM precincts WHERE code = $1 AND active", code))
