"""SQL for incidents, the reports that raise them, attachments and alarm trails."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from dispatch.domain.events import Actor, EventType, StoredEvent
from dispatch.domain.identity import VerificationLevel
from dispatch.domain.incidents import CitizenId, Incident, IncidentId, IncidentState, Location
from dispatch.domain.priority import Channel
from dispatch.store.database import json_text
from dispatch.store.events import FEED_LOCK


@dataclass(frozen=True, slots=True)
class NewIncident:
    id: UUID
    case_no: str
    channel: Channel
    tag: str
    severity: int
    citizen_id: UUID
    verification: VerificationLevel
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
    channel: Channel
    tag: str
    precinct_code: str | None
    citizen_id: UUID | None
    received_at: datetime
    tracking_token_hash: str
    rating: int | None


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


@dataclass(frozen=True, slots=True)
class ContextQuery:
    """One submission's questions to `intake_contexts`."""

    citizen_id: UUID
    idempotency_key: str
    tag: str
    box: tuple[float, float, float, float] | None  # min lon, min lat, max lon, max lat
    since: datetime  # open incidents received since then are possible duplicates


async def intake_contexts(
    conn: asyncpg.Connection, queries: Sequence[ContextQuery]
) -> list[IntakeContext]:
    """Everything intake needs to know before writing, for several submissions in one
    round trip, in their order: an earlier answer to the idempotency key, the reporter,
    the tag, a case serial, and the open incidents nearby (possible duplicates; no box,
    none)."""
    boxes = [q.box or (None, None, None, None) for q in queries]
    # The SQL is the function intake_contexts (migration 0005): planned once per
    # connection, where a statement was planned on every call.
    rows = await conn.fetch(
        """SELECT * FROM intake_contexts($1::uuid[], $2::text[], $3::text[], $4::float8[],
                                         $5::float8[], $6::float8[], $7::float8[],
                                         $8::timestamptz[])""",
        [q.citizen_id for q in queries], [q.idempotency_key for q in queries],
        [q.tag for q in queries], [b[0] for b in boxes], [b[1] for b in boxes],
        [b[2] for b in boxes], [b[3] for b in boxes], [q.since for q in queries],
    )  # fmt: skip
    assert len(rows) == len(queries)
    return [_context(row) for row in rows]


def _context(row: asyncpg.Record) -> IntakeContext:
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
    type: EventType
    actor: Actor
    payload: dict[str, Any]
    precinct_code: str | None


@dataclass(frozen=True, slots=True)
class NewIntake:
    """Everything one submission writes."""

    incident: NewIncident
    report: NewReport
    duplicates: Sequence[tuple[UUID, float]]  # (other incident, metres): linked both ways
    attachments: Sequence[NewAttachment]
    event: NewEvent


async def insert_intakes(
    conn: asyncpg.Connection, intakes: Sequence[NewIntake]
) -> list[StoredEvent]:
    """New incidents with their reports, possible-duplicate links (both ways),
    attachments and feed events, for several submissions: one statement, so one round
    trip and one implicit transaction (all or nothing, for all of them), outside any
    transaction of the caller's.  Returns each intake's event, in order; their `seq`s
    follow that order.

    Raises UniqueViolationError when a (citizen, idempotency key) was already used."""
    if conn.is_in_transaction():
        raise RuntimeError("insert_intakes commits by itself; call it outside a transaction")
    incidents = [n.incident for n in intakes]
    locations = [i.location for i in incidents]
    reports = [n.report for n in intakes]
    events = [n.event for n in intakes]
    links = [(n.incident.id, other, distance) for n in intakes for other, distance in n.duplicates]
    files = [(n.incident.id, n.report.id, a) for n in intakes for a in n.attachments]
    rows = await conn.fetch(
        """WITH input AS (
               SELECT * FROM unnest(
                   $1::uuid[], $2::text[], $3::text[], $4::text[], $5::smallint[],
                   $6::uuid[], $7::text[], $8::text[], $9::text[], $10::text[],
                   $11::float8[], $12::float8[], $13::float8[], $14::float8[],
                   $15::timestamptz[], $16::float8[], $17::float8[], $18::text[],
                   $19::uuid[], $20::text[], $21::text[], $22::float8[], $23::float8[],
                   $24::text[], $25::float8[], $26::text[], $27::timestamptz[], $28::text[],
                   $29::text[], $30::text[], $31::text[], $32::text[], $33::text[])
                   WITH ORDINALITY
                   AS t (id, case_no, channel, tag, severity, citizen_id, verification,
                         precinct_code, jurisdiction, nearest_precinct_code, distance_m,
                         lon, lat, accuracy_m, received_at, priority_credit_s,
                         priority_score, tracking_token_hash,
                         report_id, idempotency_key, text, report_lon, report_lat, datum,
                         report_accuracy_m, location_source, client_time, response,
                         event_type, event_precinct, actor_kind, actor_id, payload, ord)),
           incident AS (
               INSERT INTO incidents
                   (id, case_no, state, channel, tag, severity, citizen_id, verification,
                    precinct_code, jurisdiction, nearest_precinct_code, distance_m,
                    lon, lat, accuracy_m, received_at, priority_credit_s, priority_score,
                    tracking_token_hash)
               SELECT id, case_no, 'queued', channel, tag, severity, citizen_id,
                      verification, precinct_code, jurisdiction, nearest_precinct_code,
                      distance_m, lon, lat, accuracy_m, received_at, priority_credit_s,
                      priority_score, tracking_token_hash
               FROM input ORDER BY ord
               RETURNING id),
           report AS (
               INSERT INTO reports
                   (id, incident_id, citizen_id, channel, idempotency_key, text, tag, lon, lat,
                    datum, accuracy_m, location_source, client_time, received_at, response)
               SELECT report_id, id, citizen_id, channel, idempotency_key, text, tag,
                      report_lon, report_lat, datum, report_accuracy_m, location_source,
                      client_time, received_at, response::jsonb
               FROM input ORDER BY ord),
           links AS (
               INSERT INTO incident_links (incident_id, other_id, kind, distance_m)
               SELECT a, b, 'possible_duplicate', d
               FROM unnest($34::uuid[], $35::uuid[], $36::float8[]) AS link (id, other, d),
                    LATERAL (VALUES (link.id, link.other), (link.other, link.id)) AS pair (a, b)
               ON CONFLICT DO NOTHING),
           attachments AS (
               INSERT INTO attachments
                   (id, incident_id, report_id, kind, media_type, sha256, bytes, width, height,
                    storage_key, exif_lon, exif_lat, taken_at)
               SELECT * FROM unnest(
                   $37::uuid[], $38::uuid[], $39::uuid[], $40::text[], $41::text[],
                   $42::text[], $43::bigint[], $44::int[], $45::int[], $46::text[],
                   $47::float8[], $48::float8[], $49::timestamptz[])),
           feed AS (SELECT pg_advisory_xact_lock_shared($50)),
           event AS (
               -- `seq` is drawn only once the feed lock is held (see store.events).
               INSERT INTO incident_events
                   (type, incident_id, precinct_code, citizen_id, actor_kind, actor_id, payload)
               SELECT input.event_type, input.id, input.event_precinct, input.citizen_id,
                      input.actor_kind, input.actor_id, input.payload::jsonb
               FROM feed, input JOIN incident USING (id)
               ORDER BY input.ord
               RETURNING seq, incident_id, created_at)
           SELECT seq, incident_id, created_at FROM event""",
        [i.id for i in incidents], [i.case_no for i in incidents],
        [i.channel for i in incidents], [i.tag for i in incidents],
        [i.severity for i in incidents], [i.citizen_id for i in incidents],
        [i.verification for i in incidents], [loc.precinct_code for loc in locations],
        [loc.jurisdiction for loc in locations], [loc.nearest_code for loc in locations],
        [loc.distance_m for loc in locations], [loc.lon for loc in locations],
        [loc.lat for loc in locations], [loc.accuracy_m for loc in locations],
        [i.received_at for i in incidents], [i.priority_credit_s for i in incidents],
        [i.priority_score for i in incidents], [i.tracking_token_hash for i in incidents],
        [r.id for r in reports], [r.idempotency_key for r in reports],
        [r.text for r in reports], [r.lon for r in reports], [r.lat for r in reports],
        [r.datum for r in reports], [r.accuracy_m for r in reports],
        [r.location_source for r in reports], [r.client_time for r in reports],
        [json_text(r.response) for r in reports],
        [e.type for e in events], [e.precinct_code for e in events],
        [e.actor.kind.value for e in events], [e.actor.id for e in events],
        [json_text(e.payload) for e in events],
        [link[0] for link in links], [link[1] for link in links], [link[2] for link in links],
        [a.id for _, _, a in files], [incident_id for incident_id, _, _ in files],
        [report_id for _, report_id, _ in files], [a.kind for _, _, a in files],
        [a.media_type for _, _, a in files], [a.sha256 for _, _, a in files],
        [a.size for _, _, a in files], [a.width for _, _, a in files],
        [a.height for _, _, a in files], [a.storage_key for _, _, a in files],
        [a.exif_lon for _, _, a in files], [a.exif_lat for _, _, a in files],
        [a.taken_at for _, _, a in files],
        FEED_LOCK,
    )  # fmt: skip
    written = {row["incident_id"]: row for row in rows}
    assert len(written) == len(intakes)
    return [_stored_event(n, written[n.incident.id]) for n in intakes]


def _stored_event(intake: NewIntake, row: asyncpg.Record) -> StoredEvent:
    return StoredEvent(
        seq=row["seq"], type=intake.event.type, incident_id=intake.incident.id,
        precinct_code=intake.event.precinct_code, citizen_id=intake.incident.citizen_id,
        officer_id=None, actor=intake.event.actor, payload=intake.event.payload,
        created_at=row["created_at"],
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
        channel=Channel(row["channel"]),
        tag=row["tag"],
        precinct_code=row["precinct_code"],
        citizen_id=row["citizen_id"],
        received_at=row["received_at"],
        tracking_token_hash=row["tracking_token_hash"],
        rating=row["rating"],
    )


_TRACKED = """SELECT id, case_no, state, channel, tag, precinct_code, citizen_id, received_at,
                     tracking_token_hash, rating FROM incidents"""


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


async def route_first_fix(conn: asyncpg.Connection, incident_id: UUID, location: Location) -> None:
    """An alarm sent before the phone had a fix gets its place and its precinct."""
    await conn.execute(
        """UPDATE incidents SET lon = $2, lat = $3, accuracy_m = $4, precinct_code = $5,
                  jurisdiction = $6, nearest_precinct_code = $7, distance_m = $8,
                  version = version + 1, updated_at = now()
           WHERE id = $1""",
        incident_id, location.lon, location.lat, location.accuracy_m, location.precinct_code,
        location.jurisdiction, location.nearest_code, location.distance_m,
    )  # fmt: skip


async def referenced_storage_keys(conn: asyncpg.Connection, keys: Sequence[str]) -> set[str]:
    """Those of `keys` that an attachment refers to."""
    rows = await conn.fetch(
        "SELECT storage_key FROM attachments WHERE storage_key = any($1::text[])", list(keys)
    )
    return {row["storage_key"] for row in rows}


async def queued_scores(conn: asyncpg.Connection) -> list[tuple[UUID, str | None, float]]:
    """(id, precinct, priority score) of every queued incident: the queue index's source."""
    rows = await conn.fetch(
        "SELECT id, precinct_code, priority_score FROM incidents WHERE state = 'queued'"
    )
    return [(r["id"], r["precinct_code"], r["priority_score"]) for r in rows]
