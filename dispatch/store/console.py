"""SQL for what only the console reads: its roster (officers with their duty and last
position, the names of staff who may hold an incident) and the queue's annotations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from dispatch.domain.scope import Scope
from dispatch.store.workflow import loaded_open_sql


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


async def officers(conn: asyncpg.Connection, scope: Scope) -> list[OfficerOnRoster]:
    """Active officers working a precinct of `scope` (all of them for all precincts)."""
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
        None if scope.all_precincts else scope.codes(),
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


@dataclass(frozen=True, slots=True)
class Annotation:
    """What the queue shows beside the incident snapshot: the report's words, how many
    photos came with it, the possible duplicates found at intake, and whether a video
    call is live on it now (a console opened mid-call marks it before any call event)."""

    id: uuid.UUID
    text: str | None
    images: int
    possible_duplicates: list[dict[str, Any]]
    live_call: bool


async def queue_annotations(
    conn: asyncpg.Connection, scope: Scope, *, limit: int
) -> list[Annotation]:
    """For the open incidents in `scope` a console loads (`loaded_open_sql`: the
    snapshot's, with the same `limit`)."""
    rows = await conn.fetch(
        f"""SELECT i.id,
                  (SELECT r.text FROM reports r WHERE r.incident_id = i.id
                   ORDER BY r.received_at, r.id LIMIT 1) AS text,
                  (SELECT count(*) FROM attachments a WHERE a.incident_id = i.id) AS images,
                  coalesce((SELECT jsonb_agg(jsonb_build_object(
                                'incident_id', l.other_id::text, 'distance_m', l.distance_m)
                              ORDER BY l.distance_m)
                            FROM incident_links l
                            WHERE l.incident_id = i.id AND l.kind = 'possible_duplicate'),
                           '[]'::jsonb) AS duplicates,
                  EXISTS (SELECT 1 FROM call_sessions s
                          WHERE s.incident_id = i.id AND s.state = 'live') AS live_call
           FROM {loaded_open_sql(1, 2, scope)} i""",
        scope.codes(),
        limit,
    )
    # The pool decodes jsonb (dispatch.store.database).
    return [
        Annotation(r["id"], r["text"], r["images"], r["duplicates"], r["live_call"]) for r in rows
    ]


@dataclass(frozen=True, slots=True)
class TagLabel:
    code: str
    label: str
    label_zh: str
    severity: int


async def tag_labels(conn: asyncpg.Connection) -> list[TagLabel]:
    rows = await conn.fetch(
        "SELECT code, label, label_zh, severity FROM tags WHERE active ORDER BY severity, code"
    )
    return [TagLabel(r["code"], r["label"], r["label_zh"], r["severity"]) for r in rows]
