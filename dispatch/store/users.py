"""SQL for staff accounts and officers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from dispatch.domain.users import Role, User, UserId


def _user(row: asyncpg.Record) -> User:
    return User(
        id=UserId(row["id"]),
        username=row["username"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        precincts=frozenset(row["precincts"] or ()),
        active=row["active"],
    )


_SELECT = """
    SELECT u.id, u.username, u.display_name, u.role, u.active, u.password_hash,
           array(SELECT precinct_code FROM user_precincts p WHERE p.user_id = u.id
                 ORDER BY precinct_code) AS precincts
    FROM users u
"""


async def insert_user(
    conn: asyncpg.Connection,
    *,
    username: str,
    display_name: str,
    role: Role,
    password_hash: str,
    precincts: frozenset[str],
) -> User:
    user_id = await conn.fetchval(
        """INSERT INTO users (username, display_name, role, password_hash)
           VALUES ($1, $2, $3, $4) RETURNING id""",
        username,
        display_name,
        role.value,
        password_hash,
    )
    await conn.executemany(
        "INSERT INTO user_precincts (user_id, precinct_code) VALUES ($1, $2)",
        [(user_id, code) for code in sorted(precincts)],
    )
    user = await get_user(conn, UserId(user_id))
    assert user is not None
    return user


async def get_user(conn: asyncpg.Connection, user_id: UserId) -> User | None:
    row = await conn.fetchrow(_SELECT + " WHERE u.id = $1", user_id)
    return _user(row) if row else None


@dataclass(frozen=True, slots=True)
class SessionUser:
    """A staff session and the account it belongs to, as they are now."""

    user: User
    expires_at: datetime
    revoked_at: datetime | None


_SESSION_USER = """SELECT s.id AS session_id, s.expires_at, s.revoked_at,
                  u.id, u.username, u.display_name, u.role, u.active,
                  array(SELECT precinct_code FROM user_precincts p WHERE p.user_id = u.id
                        ORDER BY precinct_code) AS precincts
           FROM staff_sessions s JOIN users u ON u.id = s.user_id"""


async def get_session_users(
    conn: asyncpg.Connection, session_ids: Sequence[UUID]
) -> dict[UUID, SessionUser]:
    """What every staff request checks, for several sessions in one round trip (those
    that exist)."""
    rows = await conn.fetch(_SESSION_USER + " WHERE s.id = any($1::uuid[])", session_ids)
    return {
        row["session_id"]: SessionUser(_user(row), row["expires_at"], row["revoked_at"])
        for row in rows
    }


async def get_user_with_hash(conn: asyncpg.Connection, username: str) -> tuple[User, str] | None:
    row = await conn.fetchrow(_SELECT + " WHERE lower(u.username) = lower($1)", username)
    return (_user(row), row["password_hash"]) if row else None


async def username_taken(conn: asyncpg.Connection, username: str) -> bool:
    return bool(
        await conn.fetchval("SELECT 1 FROM users WHERE lower(username) = lower($1)", username)
    )


async def set_password_hash(conn: asyncpg.Connection, user_id: UserId, password_hash: str) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
        user_id,
        password_hash,
    )


async def list_users(conn: asyncpg.Connection) -> list[User]:
    return [_user(r) for r in await conn.fetch(_SELECT + " ORDER BY u.id")]


async def insert_officer(conn: asyncpg.Connection, user_id: UserId, callsign: str) -> None:
    await conn.execute(
        "INSERT INTO officers (user_id, callsign) VALUES ($1, $2)", user_id, callsign
    )


async def unknown_precincts(conn: asyncpg.Connection, codes: frozenset[str]) -> list[str]:
    known = {
        r["code"]
        for r in await conn.fetch(
            "SELECT code FROM precincts WHERE code = any($1::text[])", list(codes)
        )
    }
    return sorted(codes - known)


async def insert_staff_session(
    conn: asyncpg.Connection,
    session_id: UUID,
    user_id: UserId,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO staff_sessions (id, user_id, created_at, expires_at)
           VALUES ($1, $2, $3, $4)""",
        session_id, user_id, created_at, expires_at,
    )  # fmt: skip


async def revoke_staff_session(conn: asyncpg.Connection, session_id: UUID, at: datetime) -> None:
    await conn.execute(
        "UPDATE staff_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        session_id,
        at,
    )
