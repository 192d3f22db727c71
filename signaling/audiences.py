"""Who sees which event, and in what form: one declarative table.

Live delivery and resume replay both use `rooms_for`, so a client that reconnects is
sent exactly what it would have received live.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

from dispatch.domain.citizen_view import STATUS_TEXT, timeline_text
from dispatch.domain.events import StoredEvent
from dispatch.domain.incidents import IncidentState

CONSOLE = "/console"
OFFICER = "/officer"
CITIZEN = "/citizen"

ALL_PRECINCTS_ROOM = "all"
NO_PRECINCT = "_none"

# Stored event type -> the name consoles and officers see (the catalogue's names).
WIRE_NAME = MappingProxyType(
    {
        "incident.trail": "incident.updated",
        "incident.cancelled": "incident.updated",
        "incident.note": "incident.updated",
    }
)

# Which stored events reach which audience.
_CONSOLE_PREFIXES = ("incident.", "message.", "assignment.", "officer.")
_OFFICER_TYPES = frozenset(
    {
        "assignment.offered",
        "assignment.accepted",
        "assignment.declined",
        "assignment.cancelled",
        "assignment.cleared",
        "assignment.unacknowledged",
        "assignment.en_route",
        "assignment.on_scene",
        "officer.status",
    }
)


# Incident rooms: an officer working an incident follows it.  Membership is driven by
# the feed itself (accepting joins, the assignment's end leaves), so live delivery and
# resume replay agree on who was in the room at every seq.
_JOINS = frozenset({"assignment.accepted", "assignment.en_route", "assignment.on_scene"})
_LEAVES = frozenset(
    {"assignment.cleared", "assignment.cancelled", "assignment.declined",
     "assignment.unacknowledged"}
)  # fmt: skip
# What an officer working the incident is sent through its room.
_FOLLOWED = frozenset(
    {"incident.trail", "incident.cancelled", "incident.note", "incident.merged",
     "incident.transferred", "incident.resolved", "incident.closed", "incident.invalid"}
)  # fmt: skip
MEMBERSHIP_TYPES = _JOINS | _LEAVES


def membership_joins(event_type: str) -> bool:
    return event_type in _JOINS


def incident_room(incident_id: object) -> str:
    return f"incident:{incident_id}"


def membership(event: StoredEvent) -> tuple[str, str, str, bool] | None:
    """(namespace, member's room, incident room, join?) when `event` moves an officer
    into or out of an incident's room; applied after the event is delivered."""
    if event.officer_id is None or event.incident_id is None:
        return None
    if event.type in _JOINS:
        return OFFICER, officer_room(event.officer_id), incident_room(event.incident_id), True
    if event.type in _LEAVES:
        return OFFICER, officer_room(event.officer_id), incident_room(event.incident_id), False
    return None


def precinct_room(code: str | None) -> str:
    return f"precinct:{code or NO_PRECINCT}"


def officer_room(officer_id: int) -> str:
    return f"officer:{officer_id}"


def citizen_room(citizen_id: object) -> str:
    return f"citizen:{citizen_id}"


def wire_data(event: StoredEvent, name: str) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "type": name,
        "at": event.created_at.isoformat(),
        "actor": {"kind": event.actor.kind.value, "id": event.actor.id},
        **event.payload,
    }


def _case_status(event: StoredEvent) -> dict[str, Any] | None:
    text = timeline_text(event.type, event.payload)
    incident = event.payload.get("incident")
    if text is None or event.type == "message.created":
        return None
    data: dict[str, Any] = {
        "seq": event.seq,
        "type": "case.status",
        "at": event.created_at.isoformat(),
        "text": text,
        "event": event.type,
    }
    if isinstance(incident, dict):
        state = IncidentState(incident["state"])
        data.update(case_no=incident["case_no"], status=state.value, status_text=STATUS_TEXT[state])
    return data


def rooms_for(event: StoredEvent) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(namespace, room, wire event name, wire data) for each audience of `event`."""
    if event.type.startswith(_CONSOLE_PREFIXES):
        name = WIRE_NAME.get(event.type, event.type)
        data = wire_data(event, name)
        yield CONSOLE, ALL_PRECINCTS_ROOM, name, data
        yield CONSOLE, precinct_room(event.precinct_code), name, data
    if event.officer_id is not None and event.type in _OFFICER_TYPES:
        name = WIRE_NAME.get(event.type, event.type)
        yield OFFICER, officer_room(event.officer_id), name, wire_data(event, name)
    if event.incident_id is not None and event.type in _FOLLOWED:
        name = WIRE_NAME.get(event.type, event.type)
        yield OFFICER, incident_room(event.incident_id), name, wire_data(event, name)
    if event.citizen_id is not None:
        if event.type == "message.created" and event.payload.get("sender_kind") != "citizen":
            yield (
                CITIZEN,
                citizen_room(event.citizen_id),
                "message.created",
                wire_data(event, "message.created"),
            )
        else:
            status = _case_status(event)
            if status is not None:
                yield CITIZEN, citizen_room(event.citizen_id), "case.status", status
