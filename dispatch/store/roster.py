"""SQL for the console's roster: officers with their duty and last position, and the
names of staff who may hold an incident."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class OfficerOnRoster:
    id: int
    callsign: str
    display_name: str
    status: str
    lon: float | None
    lat: float | None
    accuracy_m: float | None
    position_at: datetime | None
    precincts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StaffName:
    id: int
    display_name: str
    role: str


async def officers(conn: asyncpg.Connection, precincts: list[str] | None) -> list[OfficerOnRoster]:
    """Active officers; with `precincts`, only those working one of them."""
    rows = await conn.fetch(
        """SELECT o.user_id, o.callsign, u.display_name, o.status, o.lon, o.lat,
                  o.accuracy_m, o.position_at,
                  coalesce(array_agg(p.precinct_code ORDER BY p.precinct_code)
                           FILTER (WHERE p.precinct_code IS NOT NULL), '{}') AS precincts
           FROM officers o JOIN users u ON u.id = o.user_id
           LEFT JOIN user_precincts p ON p.user_id = o.user_id
           WHERE u.active
           GROUP BY o.user_id, u.display_name
           HAVING $1::text[] IS NULL OR array_agg(p.precinct_code) && $1::text[]
           ORDER BY o.callsign""",
        precincts,
    )
    return [
        OfficerOnRoster(
            r["user_id"],
            r["callsign"],
            r["display_name"],
            r["status"],
            r["lon"],
            r["lat"],
            r["accuracy_m"],
            r["position_at"],
            tuple(r["precincts"]),
        )
        for r in rows
    ]


async def desk_staff(conn: asyncpg.Connection) -> list[StaffName]:
    rows = await conn.fetch(
        """SELECT id, display_name, role FROM users
           WHERE active AND role IN ('dispatcher', 'commander') ORDER BY id"""
    )
    return [StaffName(r["id"], r["display_name"], r["role"]) for r in rows]
