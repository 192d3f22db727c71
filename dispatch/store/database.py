"""Connection pools and schema migrations.

Migrations are versioned SQL files in `migrations/` named `NNNN_name.sql`.  Each is
applied in its own transaction and recorded in `schema_version`; a session advisory
lock makes concurrent migrators (two app nodes starting at once, or `serve` and
`micro110 migrate`) take turns, so applying is idempotent and race-free.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg
import msgspec

logger = logging.getLogger(__name__)

# An arbitrary, fixed key for pg_advisory_lock: "micro110 migrations".
_MIGRATION_LOCK = 0x6D313130_0001
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL could not be reached; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def available_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("dispatch.store.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


_encode_json = msgspec.json.Encoder().encode
_decode_json = msgspec.json.Decoder().decode


def json_text(value: Any) -> str:
    """`value` as JSON text, as the jsonb codec sends it (for jsonb values in arrays)."""
    return _encode_json(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    # msgspec rather than the json module: every event payload goes through here.
    for type_name in ("jsonb", "json"):
        await conn.set_type_codec(
            type_name, encoder=json_text, decoder=_decode_json, schema="pg_catalog"
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool: nothing more.

    asyncpg rolls back a transaction left open before calling this; its default reset
    would then also cost a round trip per release (UNLISTEN, RESET ALL, advisory unlock)
    for session state our code never leaves behind: locks and settings are transaction
    scoped, and the migration lock and the precinct LISTEN undo themselves."""


async def _connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    """asyncpg's connect, with a server that is not running always a ConnectionError.

    On a unix socket a stopped server has no socket file, and connecting raises
    FileNotFoundError, which a request's error handling cannot tell from a missing
    file of its own: it would answer 500 where the client should retry (503)."""
    try:
        return await asyncpg.connect(*args, **kwargs)
    except FileNotFoundError as exc:
        raise ConnectionRefusedError(
            exc.errno, f"PostgreSQL is not running (no socket {exc.filename})"
        ) from exc


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


async def create_pool(
    url: str, *, min_size: int = 2, max_size: int = 20, timeout_s: float = 10.0
) -> asyncpg.Pool:
    """A pool with our codecs; raises DatabaseUnavailable (no traceback worth showing)."""
    try:
        pool = await asyncio.wait_for(
            asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                init=_init_connection,
                reset=_keep_session,
                connect=_connect,
                command_timeout=60,
                # jsonb built by PostgreSQL from doubles (incident_view_sql) keeps every
                # digit only with this above 0 (the server's default, unless changed).
                server_settings={"extra_float_digits": "1"},
            ),
            timeout_s,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, ValueError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to {_redact(url)}: {exc or type(exc).__name__}"
        ) from exc
    assert pool is not None
    return pool


async def migrate(pool: asyncpg.Pool) -> list[Migration]:
    """Apply pending migrations; returns those applied by this call."""
    applied: list[Migration] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_version (
                       version     integer PRIMARY KEY,
                       name        text NOT NULL,
                       applied_at  timestamptz NOT NULL DEFAULT now())"""
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_version")}
            for migration in available_migrations():
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                logger.info(
                    "applied migration",
                    extra={"version": migration.version, "migration": migration.name},
                )
                applied.append(migration)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


async def schema_version(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        value: Any = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
    return int(value)


# --- for the operator's tools: health probe, server secrets, backup checks -------------


async def ping(conn: asyncpg.Connection) -> None:
    await conn.fetchval("SELECT 1")


async def server_secret(conn: asyncpg.Connection, name: str, fresh: str) -> str:
    """The secret kept under `name`; `fresh` becomes it if there is none yet."""
    await conn.execute(
        "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        name,
        fresh,
    )
    value: str = await conn.fetchval("SELECT value FROM server_secrets WHERE name = $1", name)
    return value


async def public_table_count(conn: asyncpg.Connection) -> int:
    value: Any = await conn.fetchval(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    )
    return int(value)


async def row_counts(conn: asyncpg.Connection, tables: Sequence[str]) -> dict[str, int]:
    """Rows per table; `tables` are the caller's own constant names, never input."""
    counts = {}
    for table in tables:
        if not _IDENTIFIER.fullmatch(table):
            raise ValueError(f"not a table name: {table!r}")
        counts[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    return counts


async def attachment_digests(conn: asyncpg.Connection) -> dict[str, str]:
    """Every attachment's storage key and its SHA-256."""
    rows = await conn.fetch("SELECT storage_key, sha256 FROM attachments")
    return {r["storage_key"]: r["sha256"] for r in rows}
