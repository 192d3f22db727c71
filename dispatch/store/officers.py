"""SQL for officers: duty status, last position, who is free near an incident."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from dispatch.domain.users import UserId


@dataclass(frozen=True, slots=True)
class LastPosition:
    position_at: datetime | None
    precinct: str | None  # where the last position was, by the geofence
    status: str


@dataclass(frozen=True, slots=True)
class FreeOfficer:
    officer_id: int
    callsign: str
    lon: float
    lat: float
    position_at: datetime | None


async def status_for_update(conn: asyncpg.Connection, user_id: UserId) -> str | None:
    """The officer's duty status, the row locked; None: no officer record."""
    status: str | None = await conn.fetchval(
        "SELECT status FROM officers WHERE user_id = $1 FOR UPDATE", user_id
    )
    return status


async def set_status(conn: asyncpg.Connection, user_id: UserId, status: str) -> None:
    await conn.execute(
        "UPDATE officers SET status = $2, updated_at = now() WHERE user_id = $1", user_id, status
    )


async def last_position_for_update(
    conn: asyncpg.Connection, user_id: UserId
) -> LastPosition | None:
    row = await conn.fetchrow(
        """SELECT position_at, position_precinct, status FROM officers
           WHERE user_id = $1 FOR UPDATE""",
        user_id,
    )
    if row is None:
        return None
    return LastPosition(row["position_at"], row["position_precinct"], row["status"])


async def set_position(
    conn: asyncpg.Connection,
    user_id: UserId,
    *,
    lon: float,
    lat: float,
    accuracy_m: float,
    at: datetime,
    precinct: str | None,
) -> None:
    await conn.execute(
        """UPDATE officers SET lon = $2, lat = $3, accuracy_m = $4, position_at = $5,
               position_precinct = $6, updated_at = $5 WHERE user_id = $1""",
        user_id, lon, lat, accuracy_m, at, precinct,
    )  # fmt: skip


async def free_officers(conn: asyncpg.Connection, precinct: str | None) -> list[FreeOfficer]:
    """Active, available officers with a position, serving `precinct` (None: any)."""
    rows = await conn.fetch(
        """SELECT o.user_id, o.callsign, o.lon, o.lat, o.position_at FROM officers o
           JOIN users u ON u.id = o.user_id
           WHERE u.active AND o.status = 'available' AND o.lon IS NOT NULL
             AND ($1::text IS NULL OR EXISTS (SELECT 1 FROM user_precincts p
                  WHERE p.user_id = o.user_id AND p.precinct_code = $1))""",
        precinct,
    )
    return [
        FreeOfficer(r["user_id"], r["callsign"], r["lon"], r["lat"], r["position_at"]) for r in rows
    ]


@dataclass(frozen=True, slots=True)
class RosterOfficer:
    user_id: int
    callsign: str
    status: str
    precincts: frozenset[str]


async def officers_in(conn: asyncpg.Connection, officer_ids: Sequence[int]) -> list[RosterOfficer]:
    """The active officers among `officer_ids`, with the precincts they serve."""
    rows = await conn.fetch(
        """SELECT o.user_id, o.callsign, o.status, array(SELECT precinct_code FROM
                  user_precincts p WHERE p.user_id = o.user_id) AS precincts
           FROM officers o JOIN users u ON u.id = o.user_id
           WHERE o.user_id = any($1::bigint[]) AND u.active""",
        list(officer_ids),
    )
    return [
        RosterOfficer(r["user_id"], r["callsign"], r["status"], frozenset(r["precincts"]))
        for r in rows
    ]


async def set_officers_status(
    conn: asyncpg.Connection, officer_ids: Sequence[int], status: str
) -> None:
    await conn.execute(
        """UPDATE officers SET status = $2, updated_at = now()
           WHERE user_id = any($1::bigint[]) AND status <> 'off_duty'""",
        list(officer_ids),
        status,
    )
