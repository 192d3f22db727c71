"""SQL for precinct boundaries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

# Servers LISTEN here; the NOTIFY is sent inside the import's transaction, so
# PostgreSQL delivers it only if and when that transaction commits.
PRECINCTS_CHANNEL = "micro110_precincts"


async def upsert_precincts(
    conn: asyncpg.Connection, rows: Sequence[tuple[str, str, str]], source: str
) -> None:
    """``rows``: (code, name, geometry as GeoJSON text), the text stored as it is."""
    await conn.executemany(
        """INSERT INTO precincts (code, name, geometry, source, active, updated_at)
           VALUES ($1, $2, $3, $4, true, now())
           ON CONFLICT (code) DO UPDATE
             SET name = excluded.name, geometry = excluded.geometry,
                 source = excluded.source, active = true, updated_at = now()""",
        [(code, name, msgspec.Raw(geometry.encode()), source) for code, name, geometry in rows],
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


@dataclass(frozen=True, slots=True)
class StoredPrecinct:
    code: str
    name: str
    geometry: dict[str, Any]  # GeoJSON, WGS 84


async def active_precincts(conn: asyncpg.Connection) -> list[StoredPrecinct]:
    return await _precincts(
        conn, "SELECT code, name, geometry FROM precincts WHERE active ORDER BY code"
    )


async def _precincts(conn: asyncpg.Connection, sql: str, *args: Any) -> list[StoredPrecinct]:
    return [
        StoredPrecinct(r["code"], r["name"], r["geometry"]) for r in await conn.fetch(sql, *args)
    ]


async def precinct_names(conn: asyncpg.Connection) -> dict[str, str]:
    return {r["code"]: r["name"] for r in await conn.fetch("SELECT code, name FROM precincts")}


async def latest_import_id(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM precinct_imports"))


async def precinct_name(conn: asyncpg.Connection, code: str | None) -> str | None:
    name: str | None = await conn.fetchval("SELECT name FROM precincts WHERE code = $1", code)
    return name


async def active_code(conn: asyncpg.Connection, code_or_name: str) -> str | None:
    """The active precinct whose code is `code_or_name`, else the one active precinct of
    that exact name (None: no such precinct, or the name is shared)."""
    rows = await conn.fetch(
        """SELECT code FROM precincts WHERE active AND (code = $1 OR name = $1)
           ORDER BY code = $1 DESC, code LIMIT 2""",
        code_or_name,
    )
    if rows and (rows[0]["code"] == code_or_name or len(rows) == 1):
        return str(rows[0]["code"])
    return None


# One import at a time: an import builds its index from the active set it sees.
_IMPORT_LOCK = 110_20


async def lock_imports(conn: asyncpg.Connection) -> None:
    """Held until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _IMPORT_LOCK)


async def any_precinct(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM precincts LIMIT 1"))


async def active_codes(conn: asyncpg.Connection) -> list[str]:
    """Active precinct codes in index order (the order nodes always built in)."""
    return [
        r["code"] for r in await conn.fetch("SELECT code FROM precincts WHERE active ORDER BY code")
    ]


async def active_codes_after(
    conn: asyncpg.Connection, imported: Sequence[str], *, replace: bool
) -> list[str]:
    """What ``active_codes`` will say once ``imported`` are upserted and, with
    ``replace``, every other precinct retired: read before those writes (under the
    import lock), in the same order, since PostgreSQL sorts both by the same collation."""
    rows = await conn.fetch(
        """SELECT code FROM (SELECT unnest($1::text[])
                             UNION SELECT code FROM precincts WHERE active AND NOT $2) AS c (code)
           ORDER BY code""",
        list(imported),
        replace,
    )
    return [r["code"] for r in rows]


async def active_geometries(conn: asyncpg.Connection, codes: Sequence[str]) -> list[StoredPrecinct]:
    return await _precincts(
        conn, "SELECT code, name, geometry FROM precincts WHERE code = any($1::text[])", list(codes)
    )


async def store_index(conn: asyncpg.Connection, import_id: int, index: bytes) -> None:
    """Stores the import's packed index; only the latest two are kept."""
    await conn.execute(
        "INSERT INTO precinct_index_blobs (import_id, index) VALUES ($1, $2)", import_id, index
    )
    await conn.execute(
        """DELETE FROM precinct_index_blobs WHERE import_id NOT IN
             (SELECT import_id FROM precinct_index_blobs ORDER BY import_id DESC LIMIT 2)"""
    )


# Bytes of a stored index read per query. A national index is ~63 MB, and asyncpg
# decodes a row on the event loop: one row of it held a serving node's loop for 80-90
# ms (alarms answered meanwhile waited), pieces of 1-4 MB for 3-8 ms, in the same time
# (the fewer the pieces, the fewer round trips on a busy machine).
INDEX_PIECE = 4 << 20


async def stored_index(conn: asyncpg.Connection, import_id: int) -> list[bytes] | None:
    """The import's packed index in pieces, to be joined off the event loop; None when
    the import stored none. The pieces come from one snapshot (a repeatable-read
    transaction, unless the caller has one)."""
    if conn.is_in_transaction():
        return await _index_pieces(conn, import_id)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await _index_pieces(conn, import_id)


async def _index_pieces(conn: asyncpg.Connection, import_id: int) -> list[bytes] | None:
    size: int | None = await conn.fetchval(
        "SELECT octet_length(index) FROM precinct_index_blobs WHERE import_id = $1", import_id
    )
    if size is None:
        return None
    pieces = []
    for start in range(0, size, INDEX_PIECE):
        piece: bytes = await conn.fetchval(
            """SELECT substring(index FROM $2 FOR $3)
               FROM precinct_index_blobs WHERE import_id = $1""",
            import_id,
            start + 1,
            INDEX_PIECE,
        )
        pieces.append(piece)
    return pieces


async def report_serving(
    conn: asyncpg.Connection, node: str, import_id: int, loaded_at: datetime
) -> None:
    await conn.execute(
        """INSERT INTO precinct_nodes (node, import_id, loaded_at, seen_at)
           VALUES ($1, $2, $3, now())
           ON CONFLICT (node) DO UPDATE
             SET import_id = excluded.import_id, loaded_at = excluded.loaded_at,
                 seen_at = now()""",
        node,
        import_id,
        loaded_at,
    )


async def forget_node(conn: asyncpg.Connection, node: str) -> None:
    await conn.execute("DELETE FROM precinct_nodes WHERE node = $1", node)


@dataclass(frozen=True, slots=True)
class NodeServing:
    node: str
    import_id: int
    loaded_at: datetime


async def live_nodes(conn: asyncpg.Connection, within_s: float) -> list[NodeServing]:
    """Nodes whose heartbeat is at most `within_s` old, by name."""
    rows = await conn.fetch(
        """SELECT node, import_id, loaded_at FROM precinct_nodes
           WHERE seen_at > now() - make_interval(secs => $1) ORDER BY node""",
        within_s,
    )
    return [NodeServing(r["node"], r["import_id"], r["loaded_at"]) for r in rows]
