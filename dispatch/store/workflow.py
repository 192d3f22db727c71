"""SQL for the incident workflow: reads, claims, state changes, ratings, links.

Assignments are in `assignments.py`, officers in `officers.py`, citizens' counters in
`citizens.py`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from dispatch.domain.events import Actor, EventType, StoredEvent
from dispatch.domain.identity import VerificationLevel
from dispatch.domain.incidents import (
    CitizenId,
    Disposition,
    Incident,
    IncidentId,
    IncidentState,
)
from dispatch.domain.priority import Channel
from dispatch.domain.scope import Scope
from dispatch.store.events import FEED_LOCK
from dispatch.store.incident_view import incident_view_sql
from dispatch.store.scope import scope_clause

_COLUMNS = """id, case_no, state, channel, tag, severity, citizen_id, verification,
    precinct_code, jurisdiction, nearest_precinct_code, distance_m, lon, lat, accuracy_m,
    received_at, priority_score, claimed_by, claimed_at, merged_into, escalated_at,
    disposition, resolved_at, closed_at, overdue_at, cancelled_at, cancel_reason,
    invalid_reason, transfer, rating, version, refused_attempts"""


def incident_from_row(row: asyncpg.Record) -> Incident:
    merged = row["merged_into"]
    citizen = row["citizen_id"]
    return Incident(
        id=IncidentId(row["id"]),
        case_no=row["case_no"],
        state=IncidentState(row["state"]),
        channel=Channel(row["channel"]),
        tag=row["tag"],
        severity=row["severity"],
        citizen_id=CitizenId(citizen) if citizen else None,
        verification=VerificationLevel(row["verification"]),
        precinct_code=row["precinct_code"],
        jurisdiction=row["jurisdiction"],
        nearest_precinct_code=row["nearest_precinct_code"],
        distance_m=row["distance_m"],
        lon=row["lon"],
        lat=row["lat"],
        accuracy_m=row["accuracy_m"],
        received_at=row["received_at"],
        priority_score=row["priority_score"],
        claimed_by=row["claimed_by"],
        claimed_at=row["claimed_at"],
        merged_into=IncidentId(merged) if merged else None,
        escalated_at=row["escalated_at"],
        disposition=Disposition(row["disposition"]) if row["disposition"] else None,
        resolved_at=row["resolved_at"],
        closed_at=row["closed_at"],
        overdue_at=row["overdue_at"],
        cancelled_at=row["cancelled_at"],
        cancel_reason=row["cancel_reason"],
        invalid_reason=row["invalid_reason"],
        transfer=row["transfer"],
        rating=row["rating"],
        version=row["version"],
        refused_attempts=row["refused_attempts"],
    )


async def get_incident(
    conn: asyncpg.Connection, incident_id: UUID, *, for_update: bool = False
) -> Incident | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM incidents WHERE id = $1{lock}", incident_id)
    return incident_from_row(row) if row else None


async def open_incidents(
    conn: asyncpg.Connection, scope: Scope, *, limit: int | None = None
) -> list[Incident]:
    """Open incidents in `scope`, most urgent first (all of them when `limit` is None)."""
    rows = await conn.fetch(
        f"""SELECT * FROM incidents
            WHERE state IN ('queued', 'claimed', 'assigned', 'escalated')
              AND {scope_clause(1, scope)}
            ORDER BY priority_score, id LIMIT $2""",
        scope.codes(),
        limit,
    )
    return [incident_from_row(r) for r in rows]


def loaded_open_sql(scope_param: int, limit_param: int, scope: Scope) -> str:
    """A subquery (rows of `incidents`) of the open incidents in `scope` a console loads:
    every one in hand (claimed, assigned, escalated) first, then the queued ones most
    urgent first, at most `$limit_param` in all.  Each arm walks its own index in order
    and stops at the limit: a queue of 100,000 costs what a queue of a few thousand does.
    The snapshot and the annotations read the same ones."""
    where = scope_clause(scope_param, scope)
    return f"""(SELECT * FROM (
                  (SELECT * FROM incidents
                   WHERE state IN ('claimed', 'assigned', 'escalated') AND {where}
                   ORDER BY priority_score, id LIMIT ${limit_param})
                  UNION ALL
                  (SELECT * FROM incidents
                   WHERE state = 'queued' AND {where}
                   ORDER BY priority_score, id LIMIT ${limit_param})) AS open_in_scope
                ORDER BY state = 'queued', priority_score, id LIMIT ${limit_param})"""


@dataclass(frozen=True, slots=True)
class RenderedSnapshot:
    """The open incidents in a scope as JSON text, most urgent first: `incidents` is
    their views (`dispatch.wire.incident_view`, rendered by `incident_view_sql`) and
    `queue` the queued ones' ids, each a JSON array's elements without the brackets;
    `totals` (a JSON object) counts every open incident in the scope, loaded or not:
    `open`, `queued` and `by_severity`.

    Text, not `Incident`s: a console's snapshot may hold thousands of incidents, and
    PostgreSQL renders them in a fraction of the time Python takes to build, convert and
    encode as many objects (docs/reliability.md, the restart benchmark)."""

    incidents: str
    queue: str
    count: int
    totals: str
    open_total: int

    @property
    def more(self) -> bool:
        """Open incidents in the scope beyond those loaded."""
        return self.open_total > self.count


async def open_incidents_rendered(
    conn: asyncpg.Connection, scope: Scope, *, limit: int
) -> RenderedSnapshot:
    """The open incidents in `scope` a console loads (`loaded_open_sql`) as wire JSON,
    most urgent first (`ORDER BY priority_score, id`, as `open_incidents`), and the
    counts of all of them.  Call it inside one snapshot (REPEATABLE READ): both reads
    then see the same incidents."""
    rows = await conn.fetch(
        f"""SELECT {incident_view_sql("i")}::text AS view,
                   CASE WHEN i.state = 'queued' THEN '"' || i.id::text || '"' END AS queued
            FROM {loaded_open_sql(1, 2, scope)} i
            ORDER BY i.priority_score, i.id""",
        scope.codes(),
        limit,
    )
    totals = await conn.fetchrow(
        f"""SELECT count(*) AS open,
                   json_build_object(
                       'open', count(*),
                       'queued', count(*) FILTER (WHERE state = 'queued'),
                       'by_severity', json_build_object(
                           '1', count(*) FILTER (WHERE severity = 1),
                           '2', count(*) FILTER (WHERE severity = 2),
                           '3', count(*) FILTER (WHERE severity = 3),
                           '4', count(*) FILTER (WHERE severity = 4)))::text AS totals
            FROM incidents
            WHERE state IN ('queued', 'claimed', 'assigned', 'escalated')
              AND {scope_clause(1, scope)}""",
        scope.codes(),
    )
    assert totals is not None
    return RenderedSnapshot(
        incidents=",".join([r[0] for r in rows]),
        queue=",".join([r[1] for r in rows if r[1] is not None]),
        count=len(rows),
        totals=totals["totals"],
        open_total=totals["open"],
    )


# Queued incidents due to go overdue ($2/$3: severities and their thresholds in seconds,
# $5 the smallest), the longest waiting first, at most $4, marked at $1.  Walks
# `incidents_overdue_due` (migration 0250): only the incidents not yet marked, however
# many have gone overdue before (the sweep's cost must not grow with the queue).
MARK_OVERDUE_SQL = """WITH due AS (
           SELECT i.id FROM incidents i
           JOIN unnest($2::smallint[], $3::int[]) AS t(severity, seconds)
             ON i.severity = t.severity
           WHERE i.state = 'queued' AND i.overdue_at IS NULL
             AND i.received_at <= $1::timestamptz - make_interval(secs => t.seconds)
             -- (redundant, but bounds the walk of incidents_overdue_due)
             AND i.received_at <= $1::timestamptz - make_interval(secs => $5::int)
           ORDER BY i.received_at LIMIT $4)
       UPDATE incidents i SET overdue_at = $1, version = version + 1, updated_at = $1
       FROM due
       WHERE i.id = due.id AND i.state = 'queued' AND i.overdue_at IS NULL
       RETURNING i.*"""


async def mark_overdue(
    conn: asyncpg.Connection,
    now: datetime,
    severities: Sequence[int],
    seconds: Sequence[int],
    *,
    limit: int,
) -> list[Incident]:
    """Mark queued incidents overdue that have waited longer than their severity's
    threshold (`seconds[i]` for `severities[i]`), at most `limit` of them, the longest
    waiting first; the ones marked now."""
    rows = await conn.fetch(
        MARK_OVERDUE_SQL,
        now,
        list(severities),
        list(seconds),
        limit,
        min(seconds, default=0),
    )
    return [incident_from_row(row) for row in rows]


async def claim_next(
    conn: asyncpg.Connection,
    actor: Actor,
    user_id: int,
    scope: Scope,
    now: datetime,
    *,
    escalated: bool = False,
) -> tuple[Incident, StoredEvent] | None:
    """Claim the lowest-score queued incident in scope and write its `incident.claimed`
    event; concurrent callers skip each other.  Not inside a transaction: each attempt
    is one statement, so one round trip and its own transaction.

    A commander (`escalated`) is handed incidents escalated to a commander first, in
    priority order, before the queue.
    """
    if conn.is_in_transaction():
        raise RuntimeError("claim_next commits its own claim; call it outside a transaction")
    if escalated:
        claimed = await _claim_first(conn, "escalated", actor, user_id, scope, now)
        if claimed is not None:
            return claimed
    return await _claim_first(conn, "queued", actor, user_id, scope, now)


async def _claim_first(
    conn: asyncpg.Connection,
    state: Literal["queued", "escalated"],
    actor: Actor,
    user_id: int,
    scope: Scope,
    now: datetime,
) -> tuple[Incident, StoredEvent] | None:
    # One literal state and ORDER BY exactly the index's columns: the planner walks the
    # partial index in priority order and stops at the first row in scope that no one
    # else is claiming.  (Sorting by anything more, say `state = 'escalated' DESC`,
    # makes it scan and sort the whole queue on every claim.)
    # The event is written as append_event writes it: its seq is drawn only once the
    # feed lock is held, and the lock is taken only when there is a claim to record.
    row = await conn.fetchrow(
        f"""WITH claimed AS (
                UPDATE incidents SET state = 'claimed', claimed_by = $1, claimed_at = $2,
                       version = version + 1, updated_at = $2
                WHERE id = (SELECT id FROM incidents
                            WHERE state = '{state}' AND merged_into IS NULL
                              AND {scope_clause(3, scope)}
                            ORDER BY priority_score, id
                            LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING {_COLUMNS}),
            feed AS (SELECT pg_advisory_xact_lock_shared($4) FROM claimed),
            event AS (
                INSERT INTO incident_events
                    (type, incident_id, precinct_code, citizen_id, actor_kind, actor_id,
                     payload)
                SELECT '{EventType.INCIDENT_CLAIMED.value}', c.id,
                       coalesce(c.precinct_code, c.nearest_precinct_code), c.citizen_id,
                       $5::text, $6::text, jsonb_build_object('incident', {incident_view_sql("c")})
                FROM claimed c, feed
                RETURNING seq, created_at, payload)
            SELECT c.*, e.seq AS event_seq, e.created_at AS event_created_at,
                   e.payload AS event_payload
            FROM claimed c, event e""",
        user_id,
        now,
        scope.codes(),
        FEED_LOCK,
        actor.kind.value,
        actor.id,
    )
    if row is None:
        return None
    incident = incident_from_row(row)
    event = StoredEvent(
        seq=row["event_seq"],
        type=EventType.INCIDENT_CLAIMED,
        incident_id=incident.id,
        precinct_code=incident.scope_precinct,
        citizen_id=incident.citizen_id,
        officer_id=None,
        actor=actor,
        payload=row["event_payload"],
        created_at=row["event_created_at"],
    )
    return incident, event


async def claim(
    conn: asyncpg.Connection, incident_id: UUID, user_id: int, now: datetime
) -> Incident | None:
    """Claim one incident if it is still claimable: one conditional UPDATE."""
    row = await conn.fetchrow(
        f"""UPDATE incidents SET state = 'claimed', claimed_by = $2, claimed_at = $3,
                   version = version + 1, updated_at = $3
            WHERE id = $1 AND state IN ('queued', 'escalated')
            RETURNING {_COLUMNS}""",
        incident_id,
        user_id,
        now,
    )
    return incident_from_row(row) if row else None


_UPDATABLE = frozenset(
    {
        "state", "claimed_by", "claimed_at", "merged_into", "escalated_at", "disposition",
        "resolved_at", "closed_at", "overdue_at", "invalid_reason", "transfer", "rating",
        "rating_comment", "precinct_code", "jurisdiction", "nearest_precinct_code",
        "distance_m", "priority_score",
    }
)  # fmt: skip


async def update_incident(
    conn: asyncpg.Connection, incident_id: UUID, now: datetime, **columns: Any
) -> Incident:
    unknown = set(columns) - _UPDATABLE
    if unknown:
        raise ValueError(f"update_incident cannot write {sorted(unknown)}")
    values = [v.value if isinstance(v, IncidentState) else v for v in columns.values()]
    sets = "".join(f", {name} = ${i}" for i, name in enumerate(columns, start=3))
    row = await conn.fetchrow(
        f"""UPDATE incidents SET version = version + 1, updated_at = $2{sets}
            WHERE id = $1 RETURNING {_COLUMNS}""",
        incident_id,
        now,
        *values,
    )
    assert row is not None
    return incident_from_row(row)


async def rate_once(
    conn: asyncpg.Connection, incident_id: UUID, rating: int, comment: str, now: datetime
) -> Incident | None:
    """Record the reporter's rating unless one is there already: one conditional UPDATE."""
    row = await conn.fetchrow(
        f"""UPDATE incidents SET rating = $2, rating_comment = $3,
                   version = version + 1, updated_at = $4
            WHERE id = $1 AND rating IS NULL
            RETURNING {_COLUMNS}""",
        incident_id,
        rating,
        comment,
        now,
    )
    return incident_from_row(row) if row else None


@dataclass(frozen=True, slots=True)
class IncidentLink:
    other_id: UUID
    kind: str


async def incident_links(conn: asyncpg.Connection, incident_id: UUID) -> list[IncidentLink]:
    rows = await conn.fetch(
        "SELECT other_id, kind FROM incident_links WHERE incident_id = $1", incident_id
    )
    return [IncidentLink(r["other_id"], r["kind"]) for r in rows]


@dataclass(frozen=True, slots=True)
class MergedIncident:
    id: UUID
    case_no: str


async def merged_from(conn: asyncpg.Connection, incident_id: UUID) -> list[MergedIncident]:
    """The incidents merged into this one."""
    rows = await conn.fetch("SELECT id, case_no FROM incidents WHERE merged_into = $1", incident_id)
    return [MergedIncident(r["id"], r["case_no"]) for r in rows]


async def record_refusals(
    conn: asyncpg.Connection, citizen_id: UUID, refused: int, now: datetime
) -> Incident | None:
    """Show `refused` (the citizen's refused attempts of the last day) on their latest
    open incident; None when they have none open or it shows as many already.  Ties of
    `received_at` (alarms in the same microsecond) go to the higher case number, always
    the same one: without it each write could land on another (an updated row moves)."""
    row = await conn.fetchrow(
        f"""UPDATE incidents SET refused_attempts = $2, version = version + 1, updated_at = $3
            WHERE id = (SELECT id FROM incidents
                        WHERE citizen_id = $1
                          AND state IN ('queued', 'claimed', 'assigned', 'escalated')
                        ORDER BY received_at DESC, case_no DESC LIMIT 1)
              AND refused_attempts < $2
            RETURNING {_COLUMNS}""",
        citizen_id,
        refused,
        now,
    )
    return incident_from_row(row) if row else None
