"""SQL for incidents, the reports that raise them, attachments and alarm trails."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from dispatch.domain.events import Actor
from dispatch.domain.identity import VerificationLevel
from dispatch.domain.incidents import CitizenId, Incident, IncidentId, IncidentState, Location
from dispatch.store.events import FEED_LOCK, StoredEvent


@dataclass(frozen=True, slots=True)
class NewIncident:
    id: UUID
    case_no: str
    channel: str
    tag: str
    severity: int
    citizen_id: UUID
    verification: str
    location: Location
    received_at: datetime
    priority_credit_s: float
    priority_score: float
    tracking_token_hash: str


@dataclass(frozen=True, slots=True)
class NewReport:
    """The report that raises a new incident (its incident, reporter, channel, tag and
    time are the incident's)."""

    id: UUID
    idempotency_key: str
    text: str | None
    lon: float | None
    lat: float | None
    datum: str | None
    accuracy_m: float | None
    location_source: str
    client_time: datetime | None
    response: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TrackedIncident:
    id: UUID
    case_no: str
    state: IncidentState
    channel: str
    tag: str
    precinct_code: str | None
    citizen_id: UUID | None
    received_at: datetime
    tracking_token_hash: str


@dataclass(frozen=True, slots=True)
class NearbyIncident:
    id: UUID
    tag: str
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class IntakeContext:
    """What intake reads before it writes."""

    earlier: tuple[dict[str, Any], str] | None  # the stored answer to this key, its channel
    verification: VerificationLevel | None  # None: no such citizen
    false_alarms: int
    severity: int | None  # None: no such active tag
    active_tags: frozenset[str]
    case_serial: int | None  # drawn only for a new submission that will be written
    nearby: list[NearbyIncident]  # open incidents in the box since the window opened


async def intake_context(
    conn: asyncpg.Connection,
    citizen_id: UUID,
    idempotency_key: str,
    tag: str,
    box: tuple[float, float, float, float] | None,
    since: datetime,
) -> IntakeContext:
    """Everything intake needs to know before writing, in one round trip: an earlier
    answer to this idempotency key, the reporter, the tag, a case serial, and the open
    incidents nearby (possible duplicates; no box, none)."""
    min_lon, min_lat, max_lon, max_lat = box if box is not None else (None, None, None, None)
    row = await conn.fetchrow(
        """SELECT r.response, r.channel, c.verification, c.false_alarms, t.severity,
                  array(SELECT code FROM tags WHERE active) AS active_tags,
                  CASE WHEN r.id IS NULL AND c.id IS NOT NULL AND t.severity IS NOT NULL
                       THEN nextval('case_number_seq') END AS case_serial,
                  CASE WHEN r.id IS NULL AND $4::float8 IS NOT NULL THEN
                      (SELECT coalesce(json_agg(json_build_array(i.id, i.tag, i.lon, i.lat)),
                                       '[]')
                       FROM incidents i
                       WHERE i.received_at >= $8
                         AND i.state IN ('queued', 'claimed', 'assigned', 'escalated')
                         AND i.lon BETWEEN $4 AND $6 AND i.lat BETWEEN $5 AND $7)
                  END AS nearby
           FROM (VALUES (1)) AS one (x)
           LEFT JOIN reports r ON r.citizen_id = $1 AND r.idempotency_key = $2
           LEFT JOIN citizens c ON c.id = $1
           LEFT JOIN tags t ON t.code = $3 AND t.active""",
        citizen_id, idempotency_key, tag, min_lon, min_lat, max_lon, max_lat, since,
    )  # fmt: skip
    assert row is not None
    verification = row["verification"]
    return IntakeContext(
        earlier=(row["response"], row["channel"]) if row["response"] is not None else None,
        verification=VerificationLevel(verification) if verification is not None else None,
        false_alarms=row["false_alarms"] or 0,
        severity=row["severity"],
        active_tags=frozenset(row["active_tags"]),
        case_serial=row["case_serial"],
        nearby=[
            NearbyIncident(UUID(id_), tag_, lon, lat)
            for id_, tag_, lon, lat in (row["nearby"] or ())
        ],
    )


def queued_incident(incident: NewIncident) -> Incident:
    """The row `insert_intake` writes for `incident`, as `incident_from_row` reads it."""
    loc = incident.location
    return Incident(
        id=IncidentId(incident.id), case_no=incident.case_no, state=IncidentState.QUEUED,
        channel=incident.channel, tag=incident.tag, severity=incident.severity,
        citizen_id=CitizenId(incident.citizen_id), verification=incident.verification,
        precinct_code=loc.precinct_code, jurisdiction=loc.jurisdiction,
        nearest_precinct_code=loc.nearest_code, distance_m=loc.distance_m, lon=loc.lon,
        lat=loc.lat, accuracy_m=loc.accuracy_m, received_at=incident.received_at,
        priority_score=incident.priority_score, claimed_by=None, claimed_at=None,
        merged_into=None, escalated_at=None, disposition=None, resolved_at=None,
        closed_at=None, overdue_at=None, cancelled_at=None, cancel_reason=None,
        invalid_reason=None, transfer=None, rating=None, version=0,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class NewAttachment:
    id: UUID
    kind: str
    media_type: str
    sha256: str
    size: int
    width: int | None
    height: int | None
    storage_key: str
    exif_lon: float | None
    exif_lat: float | None
    taken_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str
    actor: Actor
    payload: dict[str, Any]
    precinct_code: str | None


async def insert_intake(
    conn: asyncpg.Connection,
    incident: NewIncident,
    report: NewReport,
    duplicates: Sequence[tuple[UUID, float]],
    attachments: Sequence[NewAttachment],
    event: NewEvent,
) -> StoredEvent:
    """A new incident with its report, its possible-duplicate links (both ways), the
    report's attachments and its feed event: one statement, so one round trip and one
    implicit transaction (all or nothing), outside any transaction of the caller's.

    Raises UniqueViolationError when (citizen, idempotency key) was already used."""
    if conn.is_in_transaction():
        raise RuntimeError("insert_intake commits by itself; call it outside a transaction")
    loc = incident.location
    others = [other for other, _ in duplicates]
    distances = [distance for _, distance in duplicates]
    row = await conn.fetchrow(
        """WITH incident AS (
               INSERT INTO incidents
                   (id, case_no, state, channel, tag, severity, citizen_id, verification,
                    precinct_code, jurisdiction, nearest_precinct_code, distance_m,
                    lon, lat, accuracy_m, received_at, priority_credit_s, priority_score,
                    tracking_token_hash)
               VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                       $15, $16, $17, $18)
               RETURNING id),
           report AS (
               INSERT INTO reports
                   (id, incident_id, citizen_id, channel, idempotency_key, text, tag, lon, lat,
                    datum, accuracy_m, location_source, client_time, received_at, response)
               VALUES ($19, $1, $6, $3, $20, $21, $4, $22, $23, $24, $25, $26, $27, $15, $28)),
           links AS (
               INSERT INTO incident_links (incident_id, other_id, kind, distance_m)
               SELECT a, b, 'possible_duplicate', d
               FROM unnest($29::uuid[], $30::float8[]) AS other (id, d),
                    LATERAL (VALUES ($1::uuid, other.id), (other.id, $1::uuid)) AS pair (a, b)
               ON CONFLICT DO NOTHING),
           attachments AS (
               INSERT INTO attachments
                   (id, incident_id, report_id, kind, media_type, sha256, bytes, width, height,
                    storage_key, exif_lon, exif_lat, taken_at)
               SELECT a.id, $1, $19, a.kind, a.media_type, a.sha256, a.bytes, a.width,
                      a.height, a.storage_key, a.exif_lon, a.exif_lat, a.taken_at
               FROM unnest($31::uuid[], $32::text[], $33::text[], $34::text[], $35::bigint[],
                           $36::int[], $37::int[], $38::text[], $39::float8[], $40::float8[],
                           $41::timestamptz[])
                    AS a (id, kind, media_type, sha256, bytes, width, height, storage_key,
                          exif_lon, exif_lat, taken_at)),
           feed AS (SELECT pg_advisory_xact_lock_shared($42)),
           event AS (
               -- `seq` is drawn only once the feed lock is held (see store.events).
               INSERT INTO incident_events
                   (type, incident_id, precinct_code, citizen_id, actor_kind, actor_id, payload)
               SELECT $43::text, incident.id, $44::text, $6::uuid, $45::text, $46::text,
                      $47::jsonb
               FROM feed, incident
               RETURNING seq, created_at)
           SELECT seq, created_at FROM event""",
        incident.id, incident.case_no, incident.channel, incident.tag, incident.severity,
        incident.citizen_id, incident.verification, loc.precinct_code, loc.jurisdiction,
        loc.nearest_code, loc.distance_m, loc.lon, loc.lat, loc.accuracy_m,
        incident.received_at, incident.priority_credit_s, incident.priority_score,
        incident.tracking_token_hash,
        report.id, report.idempotency_key, report.text, report.lon, report.lat, report.datum,
        report.accuracy_m, report.location_source, report.client_time, report.response,
        others, distances,
        [a.id for a in attachments], [a.kind for a in attachments],
        [a.media_type for a in attachments], [a.sha256 for a in attachments],
        [a.size for a in attachments], [a.width for a in attachments],
        [a.height for a in attachments], [a.storage_key for a in attachments],
        [a.exif_lon for a in attachments], [a.exif_lat for a in attachments],
        [a.taken_at for a in attachments],
        FEED_LOCK, event.type, event.precinct_code, event.actor.kind.value, event.actor.id,
        event.payload,
    )  # fmt: skip
    assert row is not None
    return StoredEvent(
        seq=row["seq"], type=event.type, incident_id=incident.id,
        precinct_code=event.precinct_code, citizen_id=incident.citizen_id, officer_id=None,
        actor=event.actor, payload=event.payload, created_at=row["created_at"],
    )  # fmt: skip


async def find_response(
    conn: asyncpg.Connection, citizen_id: UUID, idempotency_key: str
) -> tuple[dict[str, Any], str] | None:
    """The stored answer to an earlier submission with this key, and its channel."""
    row = await conn.fetchrow(
        "SELECT response, channel FROM reports WHERE citizen_id = $1 AND idempotency_key = $2",
        citizen_id,
        idempotency_key,
    )
    return (row["response"], row["channel"]) if row else None


def _tracked(row: asyncpg.Record) -> TrackedIncident:
    return TrackedIncident(
        id=row["id"],
        case_no=row["case_no"],
        state=IncidentState(row["state"]),
        channel=row["channel"],
        tag=row["tag"],
        precinct_code=row["precinct_code"],
        citizen_id=row["citizen_id"],
        received_at=row["received_at"],
        tracking_token_hash=row["tracking_token_hash"],
    )


_TRACKED = """SELECT id, case_no, state, channel, tag, precinct_code, citizen_id, received_at,
                     tracking_token_hash FROM incidents"""


async def get_by_case_no(conn: asyncpg.Connection, case_no: str) -> TrackedIncident | None:
    row = await conn.fetchrow(_TRACKED + " WHERE case_no = $1", case_no)
    return _tracked(row) if row else None


async def get_for_update(conn: asyncpg.Connection, incident_id: UUID) -> TrackedIncident | None:
    row = await conn.fetchrow(_TRACKED + " WHERE id = $1 FOR UPDATE", incident_id)
    return _tracked(row) if row else None


async def set_state(
    conn: asyncpg.Connection, incident_id: UUID, state: IncidentState, **columns: Any
) -> None:
    allowed = {"cancelled_at", "cancel_reason"}
    if not set(columns) <= allowed:
        raise ValueError(f"set_state cannot write {sorted(set(columns) - allowed)}")
    sets = "".join(f", {name} = ${i}" for i, name in enumerate(columns, start=3))
    await conn.execute(
        f"UPDATE incidents SET state = $2, version = version + 1, updated_at = now(){sets} "
        "WHERE id = $1",
        incident_id,
        state.value,
        *columns.values(),
    )


async def mark_cancelled(
    conn: asyncpg.Connection, incident_id: UUID, reason: str, at: datetime
) -> None:
    """Record the reporter's false trigger without changing state (someone has it)."""
    await conn.execute(
        """UPDATE incidents SET cancelled_at = $2, cancel_reason = $3, version = version + 1,
               updated_at = now() WHERE id = $1""",
        incident_id,
        at,
        reason,
    )


async def add_trail(
    conn: asyncpg.Connection, incident_id: UUID, points: list[tuple[float, float, float, datetime]]
) -> None:
    await conn.executemany(
        """INSERT INTO alarm_trail (incident_id, lon, lat, accuracy_m, recorded_at)
           VALUES ($1, $2, $3, $4, $5)""",
        [(incident_id, *point) for point in points],
    )


async def update_position(conn: asyncpg.Connection, incident_id: UUID, location: Location) -> None:
    await conn.execute(
        """UPDATE incidents SET lon = $2, lat = $3, accuracy_m = $4, updated_at = now()
           WHERE id = $1""",
        incident_id,
        location.lon,
        location.lat,
        location.accuracy_m,
    )
