"""Reading incidents: the queue view, one incident, its history, and EIDO export."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from dispatch.domain.access import (
    INCIDENT_REACH,
    INCIDENT_VIEW,
    IncidentReach,
    IncidentView,
    in_officer_history,
    officer_may_read,
)
from dispatch.domain.errors import BadRequest, Forbidden, NotFound
from dispatch.domain.events import ActorKind, EventType, StoredEvent
from dispatch.domain.incidents import Incident
from dispatch.domain.scope import scope_of
from dispatch.infra.clock import Clock
from dispatch.services.staff_auth import StaffSession
from dispatch.store import assignments as assignment_store
from dispatch.store import calls as call_store
from dispatch.store import events as event_store
from dispatch.store import precincts as precinct_store
from dispatch.store import workflow as store
from dispatch.store.workflow import RenderedSnapshot

# NENA EIDO-style incident status vocabulary.
_EIDO_STATUS = {
    "queued": "Pending",
    "claimed": "Active",
    "assigned": "Dispatched",
    "escalated": "Active",
    "resolved": "Resolved",
    "closed": "Closed",
    "merged": "Merged",
    "invalid": "Closed",
    "transferred": "Transferred",
    "cancelled": "Closed",
}


# How many open incidents a console's snapshot (and its annotations) holds unless it asks
# for another number, and the most it may ask for: a commander's 100,000 open incidents
# made a 59 MB snapshot that took 15 s (docs/reliability.md, the restart benchmark).
CONSOLE_LOAD = 2_000
CONSOLE_LOAD_MAX = 20_000


def console_load_limit(asked: int | None) -> int:
    if asked is None:
        return CONSOLE_LOAD
    if not 1 <= asked <= CONSOLE_LOAD_MAX:
        raise BadRequest(f"limit must be between 1 and {CONSOLE_LOAD_MAX:,}", field="limit")
    return asked


def _officer_entry(event: StoredEvent) -> dict[str, Any]:
    """A history entry in an officer's view: the reporter is "a citizen", not an id."""
    actor_id = None if event.actor.kind is ActorKind.CITIZEN else event.actor.id
    payload = {k: v for k, v in event.payload.items() if k != "possible_duplicates"}
    actor = {"kind": event.actor.kind.value, "id": actor_id}
    return {"seq": event.seq, "type": event.type, "at": event.created_at.isoformat(),
            "actor": actor, "payload": payload}  # fmt: skip


@dataclass(frozen=True, slots=True)
class IncidentQueries:
    pool: asyncpg.Pool
    agency: str
    clock: Clock
    # How long an officer may still read an incident after their assignment on it ended.
    officer_read_after: timedelta = timedelta(hours=1)

    async def open_incidents(self, session: StaffSession) -> list[Incident]:
        """Open incidents in my scope, most urgent first (the console's queue)."""
        async with self.pool.acquire() as conn:
            return await store.open_incidents(conn, scope_of(session.user), limit=1000)

    async def snapshot(
        self, session: StaffSession, limit: int | None = None
    ) -> tuple[int, RenderedSnapshot]:
        """The open incidents in my scope a console loads (those in hand, then the queue
        most urgent first, at most `limit`: `console_load_limit`), rendered for the wire,
        with the counts of all of them, and the seq they are current as of, from one
        consistent view: resuming the feed after that seq misses and repeats nothing
        (events about incidents beyond the limit bring them in)."""
        async with self.pool.acquire() as conn, event_store.feed_snapshot(conn) as seq:
            return seq, await store.open_incidents_rendered(
                conn, scope_of(session.user), limit=console_load_limit(limit)
            )

    async def get(self, session: StaffSession, incident_id: uuid.UUID) -> Incident:
        """An incident this staff member may read (dispatch/domain/access.py); one they
        may not looks missing, so nobody learns of incidents beyond their reach."""
        return (await self.read(session, incident_id))[0]

    async def read(
        self, session: StaffSession, incident_id: uuid.UUID
    ) -> tuple[Incident, IncidentView]:
        role = session.user.role
        reach = INCIDENT_REACH[role]
        if reach is IncidentReach.NONE:
            raise Forbidden(
                f"a {role.value} reads no incidents: they are for dispatchers, commanders "
                "and the officers sent to them"
            )
        async with self.pool.acquire() as conn:
            incident = await store.get_incident(conn, incident_id)
            if incident is None:
                visible = False
            elif reach is IncidentReach.ASSIGNED:
                hold = await assignment_store.officer_hold(conn, incident_id, session.user.id)
                visible = officer_may_read(hold, self.clock.now(), self.officer_read_after)
            else:  # precincts, or all of them: the one scope rule
                visible = scope_of(session.user).sees(incident)
        if incident is None or not visible:
            where = (
                "among your assignments" if reach is IncidentReach.ASSIGNED else "in your precincts"
            )
            raise NotFound(f"no such incident {where}", field="incident_id")
        return incident, INCIDENT_VIEW[role]

    async def history(self, session: StaffSession, incident_id: uuid.UUID) -> list[dict[str, Any]]:
        _, view = await self.read(session, incident_id)
        async with self.pool.acquire() as conn:
            events = await event_store.events_for_incident(conn, incident_id)
        if view is IncidentView.OFFICER:
            return [_officer_entry(e) for e in events if in_officer_history(e.type, e.payload)]
        return [
            {"seq": e.seq, "type": e.type, "at": e.created_at.isoformat(),
             "actor": {"kind": e.actor.kind.value, "id": e.actor.id}, "payload": e.payload}
            for e in events
        ]  # fmt: skip

    async def eido(self, session: StaffSession, incident_id: uuid.UUID) -> dict[str, Any]:
        """A NENA EIDO-style JSON document for exchange with other agencies."""
        incident, view = await self.read(session, incident_id)
        if view is not IncidentView.FULL:
            raise Forbidden("the EIDO export is for dispatchers and commanders")
        async with self.pool.acquire() as conn:
            events = await event_store.events_for_incident(conn, incident_id)
            units = await assignment_store.assigned_units(conn, incident_id)
            links = await store.incident_links(conn, incident_id)
            merged_in = await store.merged_from(conn, incident_id)
            precinct_name = await precinct_store.precinct_name(conn, incident.scope_precinct)
            recordings = await call_store.recordings_of(conn, incident_id)
        notes = [
            {"noteDateTimeStamp": e.created_at.isoformat(), "noteText": e.payload.get("text", ""),
             "noteType": e.payload.get("kind", "note"),
             "authorReference": f"{e.actor.kind}:{e.actor.id}"}
            for e in events if e.type == EventType.INCIDENT_NOTE
        ]  # fmt: skip
        location = None
        if incident.lon is not None and incident.lat is not None:
            location = {
                "locationReference": f"{incident.id}:location",
                "geometry": {"type": "Point", "coordinates": [incident.lon, incident.lat]},
                "crs": "urn:ogc:def:crs:EPSG::4326",
                "uncertaintyRadiusMeters": incident.accuracy_m,
            }
        return {
            "$schema": "urn:nena:eido:incident:1.0-style",
            "eidoMessageIdentifier": f"urn:micro110:eido:{uuid.uuid4()}",
            "incidentComponent": {
                "incidentTrackingIdentifier": f"urn:micro110:incident:{incident.id}",
                "localIncidentIdentifier": incident.case_no,
                "incidentTypeCommonRegistryText": incident.tag,
                "incidentStatusCommonRegistryText": _EIDO_STATUS[incident.state.value],
                "incidentStateText": incident.state.value,
                "priority": incident.severity,
                "priorityScore": incident.priority_score,
                "incidentCreationTimestamp": incident.received_at.isoformat(),
                "callSource": incident.channel,
                "reporterVerification": incident.verification,
                "disposition": incident.disposition,
            },
            "agencyComponent": {
                "agencyIdentifier": self.agency,
                "owningPrecinct": {"code": incident.scope_precinct, "name": precinct_name},
                "jurisdiction": incident.jurisdiction,
                "transfer": incident.transfer,
            },
            "locationComponent": [location] if location else [],
            "notesComponent": notes,
            "unitComponent": [
                {"unitIdentifier": u.callsign, "assignmentReference": str(u.id),
                 "unitStatus": u.state, "dispatchTimestamp": u.offered_at.isoformat(),
                 "acknowledgedTimestamp": u.acked_at.isoformat() if u.acked_at else None}
                for u in units
            ],
            # Video-call recordings: evidence, each with its hash (issue 15).
            "attachmentComponent": [
                {"attachmentReference": f"urn:micro110:attachment:{r.id}",
                 "attachmentType": "video-call-recording", "mimeType": r.media_type,
                 "hashAlgorithm": "SHA-256", "hash": r.sha256, "sizeBytes": r.size,
                 "durationSeconds": r.duration_s, "codecs": list(r.codecs),
                 "url": f"/api/incidents/{incident_id}/recordings/{r.id}"}
                for r in recordings
            ],
            "linkComponent": (
                [{"linkedIncidentIdentifier": f"urn:micro110:incident:{link.other_id}",
                  "linkType": link.kind} for link in links]
                + ([{"linkedIncidentIdentifier": f"urn:micro110:incident:{incident.merged_into}",
                     "linkType": "merged_into"}] if incident.merged_into else [])
                + [{"linkedIncidentIdentifier": f"urn:micro110:incident:{m.id}",
                    "linkType": "merged_from", "localIncidentIdentifier": m.case_no}
                   for m in merged_in]
            ),
        }  # fmt: skip
