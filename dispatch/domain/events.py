"""Events: who did something (the actor recorded on every incident_events row), and an
event as it was committed (`StoredEvent`: one row of the audit trail and the feed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


class ActorKind(StrEnum):
    CITIZEN = "citizen"
    STAFF = "staff"
    SYSTEM = "system"


class EventType(StrEnum):
    """Every kind of row in incident_events: the audit trail and the feed.  What a client
    is sent for each is `signaling.audiences` and `signaling.events.catalogue`."""

    INCIDENT_ASSIGNED = "incident.assigned"
    INCIDENT_CANCELLED = "incident.cancelled"
    INCIDENT_CLAIMED = "incident.claimed"
    INCIDENT_CLOSED = "incident.closed"
    INCIDENT_CREATED = "incident.created"
    INCIDENT_ESCALATED = "incident.escalated"
    INCIDENT_INVALID = "incident.invalid"
    INCIDENT_MERGED = "incident.merged"
    INCIDENT_NOTE = "incident.note"
    INCIDENT_OVERDUE = "incident.overdue"
    INCIDENT_RATED = "incident.rated"
    INCIDENT_RELEASED = "incident.released"
    INCIDENT_RESOLVED = "incident.resolved"
    INCIDENT_TRAIL = "incident.trail"
    INCIDENT_TRANSFERRED = "incident.transferred"
    INCIDENT_UNMERGED = "incident.unmerged"
    ASSIGNMENT_ACCEPTED = "assignment.accepted"
    ASSIGNMENT_CANCELLED = "assignment.cancelled"
    ASSIGNMENT_CLEARED = "assignment.cleared"
    ASSIGNMENT_DECLINED = "assignment.declined"
    ASSIGNMENT_EN_ROUTE = "assignment.en_route"
    ASSIGNMENT_OFFERED = "assignment.offered"
    ASSIGNMENT_ON_SCENE = "assignment.on_scene"
    ASSIGNMENT_UNACKNOWLEDGED = "assignment.unacknowledged"
    MESSAGE_CREATED = "message.created"
    OFFICER_GEOFENCE = "officer.geofence"
    OFFICER_MUTUAL_AID = "officer.mutual_aid"
    OFFICER_POSITION = "officer.position"
    OFFICER_STATUS = "officer.status"
    CALL_STARTED = "call.started"
    CALL_ANSWERED = "call.answered"
    CALL_LEFT = "call.left"
    CALL_ENDED = "call.ended"
    CITIZEN_REGISTERED = "citizen.registered"
    CITIZEN_VERIFIED = "citizen.verified"
    CITIZEN_VERIFICATION_FAILED = "citizen.verification_failed"
    CITIZEN_SIGNED_OUT = "citizen.signed_out"
    INCIDENT_REFUSED = "incident.refused"
    STAFF_LOGIN = "staff.login"
    STAFF_LOGOUT = "staff.logout"
    USER_CREATED = "user.created"
    PRECINCTS_IMPORTED = "precincts.imported"
    IDENTITY_REGISTRY_IMPORTED = "identity.registry_imported"

    @classmethod
    def of_assignment(cls, state: str) -> EventType:
        """The event an assignment records on reaching `state` (accepted, cleared, ...)."""
        return cls(f"assignment.{state}")


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    id: str

    @classmethod
    def system(cls, what: str = "server") -> Actor:
        return cls(ActorKind.SYSTEM, what)

    @classmethod
    def staff(cls, user_id: int) -> Actor:
        return cls(ActorKind.STAFF, str(user_id))


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    type: str
    incident_id: UUID | None
    precinct_code: str | None
    citizen_id: UUID | None
    officer_id: int | None
    actor: Actor
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Horizon:
    """What one look at the feed tells: every seq <= `seq` has committed, will never
    commit, or belongs to one of `writers` (transactions holding the feed lock then).
    Once none of `writers` is in flight any more, every seq <= `seq` is settled."""

    seq: int
    writers: frozenset[str]

    def settled_by(self, later: Horizon) -> bool:
        return not (self.writers & later.writers)
