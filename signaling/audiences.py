"""Who sees which event, and in what form: one declarative table.

Live delivery and resume replay both use `rooms_for`, so a client that reconnects is
sent exactly what it would have received live.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

from dispatch.domain.access import ASSIGNMENT_STEPS
from dispatch.domain.citizen_view import STATUS_TEXT, timeline_text
from dispatch.domain.events import EventType, StoredEvent
from dispatch.domain.field_reports import Thread, message_thread
from dispatch.domain.incidents import IncidentState

CONSOLE = "/console"
OFFICER = "/officer"
CITIZEN = "/citizen"

_E = EventType

ALL_PRECINCTS_ROOM = "all"
NO_PRECINCT = "_none"

# Stored event type -> the name consoles and officers see (the catalogue's names).
WIRE_NAME: MappingProxyType[str, str] = MappingProxyType(
    {
        EventType.INCIDENT_TRAIL: "incident.updated",
        EventType.INCIDENT_CANCELLED: "incident.updated",
        EventType.INCIDENT_NOTE: "incident.updated",
        EventType.INCIDENT_REFUSED: "incident.updated",
    }
)

# Which stored events reach which audience.
_CONSOLE_PREFIXES = ("incident.", "message.", "assignment.", "officer.", "call.")
_OFFICER_TYPES: frozenset[str] = ASSIGNMENT_STEPS | {EventType.OFFICER_STATUS}


# Incident rooms: an officer working an incident follows it.  Membership is driven by
# the feed itself (accepting joins, the assignment's end leaves), so live delivery and
# resume replay agree on who was in the room at every seq.
_JOINS: frozenset[str] = frozenset(
    {EventType.ASSIGNMENT_ACCEPTED, EventType.ASSIGNMENT_EN_ROUTE, EventType.ASSIGNMENT_ON_SCENE}
)
_LEAVES: frozenset[str] = frozenset(
    {_E.ASSIGNMENT_CLEARED, _E.ASSIGNMENT_CANCELLED, _E.ASSIGNMENT_DECLINED,
     _E.ASSIGNMENT_UNACKNOWLEDGED}
)  # fmt: skip
# What an officer working the incident is sent through its room.
_FOLLOWED: frozenset[str] = frozenset(
    {_E.INCIDENT_TRAIL, _E.INCIDENT_CANCELLED, _E.INCIDENT_NOTE, _E.INCIDENT_MERGED,
     _E.INCIDENT_TRANSFERRED, _E.INCIDENT_RESOLVED, _E.INCIDENT_CLOSED, _E.INCIDENT_INVALID}
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
    if text is None or event.type == EventType.MESSAGE_CREATED:
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
    thread = message_thread(event.payload) if event.type == EventType.MESSAGE_CREATED else None
    if thread is Thread.OFFICERS and event.incident_id is not None:
        # The officers working the incident, the sender's own phone included (its
        # confirmation on every device; clients match it by `client_key`).
        yield (
            OFFICER,
            incident_room(event.incident_id),
            "message.created",
            wire_data(event, "message.created"),
        )
    if event.citizen_id is not None and thread is not Thread.OFFICERS:
        if (
            event.type == EventType.MESSAGE_CREATED
            and event.payload.get("sender_kind") != "citizen"
        ):
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
