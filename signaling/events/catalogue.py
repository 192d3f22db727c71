"""The Socket.IO event catalogue: one typed schema per wire event, the contract with clients.

Every event a namespace can push is one `Struct` here, keyed by its wire name in
`CATALOGUE`; the docstrings say who gets it and when, and feed `docs/events.md`.  The
hub sends plain dicts (built in `signaling.audiences`), so these classes describe the
wire rather than build it; the tests decode every event of an end-to-end run with them.

Shapes are closed (`forbid_unknown_fields`), so a payload that drifts from its schema
fails a test instead of surprising a client.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, Union
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from dispatch.domain.events import ActorKind
from dispatch.domain.incidents import IncidentState
from dispatch.wire.incident_view import Instant
from signaling.audiences import CITIZEN, CONSOLE, OFFICER
from signaling.events.shapes import (
    ActorRef,
    IncidentSnapshot,
    Message,
    Place,
    PossibleDuplicate,
    RecordingRef,
    Shape,
    TrailPoint,
    Transfer,
)

Seq = Annotated[int, Meta(ge=1, description="position in the incident_events feed")]
OfficerId = Annotated[int, Meta(description="the officer's user id")]


# --- envelopes ----------------------------------------------------------------------


class Event(Shape, tag_field="type"):
    """Every event: its wire name in `type` (also the Socket.IO event name), its `seq`
    from incident_events and the commit time; pushed only after its transaction commits."""

    # The namespaces that receive this event (the rooms are in the docs' introduction).
    audience: ClassVar[tuple[str, ...]] = (CONSOLE,)

    seq: Seq
    at: Instant


class RecordedEvent(Event):
    """An event as recorded, with its actor: what staff (and a reporter's chat) see."""

    actor: ActorRef


class IncidentEvent(RecordedEvent):
    """A change to one incident, carrying the incident as it now is."""

    incident: IncidentSnapshot


class AssignmentEvent(IncidentEvent):
    """A change to one officer's assignment to an incident."""

    audience = (CONSOLE, OFFICER)

    assignment_id: UUID
    officer_id: OfficerId
    callsign: str


# --- incident.*: to consoles whose scope holds the incident ----------------------------


class IncidentCreated(IncidentEvent, tag="incident.created"):
    """A citizen's report was accepted and queued."""

    priority_credit_s: Annotated[
        float, Meta(description="head start in the queue, seconds (severity, reporter)")
    ]
    text: str | None
    images: Annotated[int, Meta(ge=0)]
    possible_duplicates: list[PossibleDuplicate]


class IncidentUpdated(IncidentEvent, tag="incident.updated"):
    """The incident changed without a workflow step: a silent alarm sent more of its trail
    (`points`), the reporter cancelled it (`reason`), a dispatcher added a note,
    follow-up or callback record (`kind`, `text`), or the intake budgets refused more of
    the reporter's alarms, reports or messages (`refused_attempts` in the last day, the
    latest `refused_kind`).  Exactly one of these groups is set."""

    audience = (CONSOLE, OFFICER)  # also to officers working it (incident room)

    points: list[TrailPoint] | UnsetType = UNSET
    routed: (
        Annotated[
            bool,
            Meta(
                description="with `points`: true when this first fix of an alarm sent without "
                "one routed it to its precinct (sent to every console that listed it, "
                "`precinct:_none`); later points go to its precinct"
            ),
        ]
        | UnsetType
    ) = UNSET
    reason: str | UnsetType = UNSET
    kind: Literal["note", "follow_up", "callback"] | UnsetType = UNSET
    text: str | UnsetType = UNSET
    refused_attempts: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    refused_kind: Literal["alarm", "report", "message"] | UnsetType = UNSET


class IncidentClaimed(IncidentEvent, tag="incident.claimed"):
    """A dispatcher claimed the incident (by id, or by taking the next in the queue)."""


class IncidentReleased(IncidentEvent, tag="incident.released"):
    """Its dispatcher put the incident back in the queue."""


class MutualAid(Shape):
    """Officers sent from outside the incident's precinct, and the dispatcher's reason."""

    officer_ids: list[OfficerId]
    reason: str


class IncidentAssigned(IncidentEvent, tag="incident.assigned"):
    """Officers were sent; each also gets an `assignment.offered`.  Officers of other
    precincts are sent only as `mutual_aid` (their home precinct gets `officer.mutual_aid`)."""

    officer_ids: list[OfficerId]
    callsigns: list[str]
    mutual_aid: MutualAid | UnsetType = UNSET


class IncidentMerged(IncidentEvent, tag="incident.merged"):
    """The incident was merged into another report of the same incident; its live
    assignments end with `assignment.cancelled`."""

    audience = (CONSOLE, OFFICER)  # also to officers working it (incident room)

    into: UUID
    into_case_no: str


class IncidentUnmerged(IncidentEvent, tag="incident.unmerged"):
    """A merge was undone: the incident is queued on its own again."""


class IncidentTransferred(IncidentEvent, tag="incident.transferred"):
    """The incident was rerouted to another precinct (and queued there), or handed to an
    outside agency or department (its live assignments end with `assignment.cancelled`)."""

    audience = (CONSOLE, OFFICER)  # also to officers working it (incident room)

    transfer: Transfer


class IncidentEscalated(IncidentEvent, tag="incident.escalated"):
    """A dispatcher passed the incident to a commander."""

    note: str


class IncidentOverdue(IncidentEvent, tag="incident.overdue"):
    """A queued incident has waited longer than its severity allows: raised once per
    incident by the overdue sweep (actor `system`)."""

    waited_s: float
    threshold_s: int


class IncidentResolved(IncidentEvent, tag="incident.resolved"):
    """Its dispatcher recorded the outcome (`incident.disposition`); live assignments end
    with `assignment.cleared`."""

    audience = (CONSOLE, OFFICER)  # also to officers working it (incident room)

    note: str


class IncidentClosed(IncidentEvent, tag="incident.closed"):
    """A resolved incident was closed for good."""

    audience = (CONSOLE, OFFICER)  # also to officers working it (incident room)


class IncidentInvalid(IncidentEvent, tag="incident.invalid"):
    """The incident was judged not to need police action (a false alarm on the
    reporter's record); live assignments end with `assignment.cancelled`."""

    audience = (CONSOLE, OFFICER)  # also to officers working it (incident room)

    reason: str


class IncidentRated(IncidentEvent, tag="incident.rated"):
    """The reporter rated how their resolved case was handled (once per case)."""

    rating: Annotated[int, Meta(ge=1, le=5)]
    comment: str


# --- message.* ------------------------------------------------------------------------


class MessageCreated(RecordedEvent, tag="message.created"):
    """A chat message on an incident.  Consoles get every message.  The reporter gets the
    dispatcher's messages in the `reporter` thread, never an echo of their own; the
    officers working the incident (its room) get the `officers` thread, their own
    messages included (match them by `client_key`)."""

    audience = (CONSOLE, OFFICER, CITIZEN)

    message: Message
    sender_kind: ActorKind
    case_no: str


# --- officer.*: to consoles of the officer's home precinct -----------------------------


class OfficerPosition(RecordedEvent, tag="officer.position"):
    """The officer's phone reported a position (at most one a second), in WGS-84."""

    officer_id: OfficerId
    lon: float
    lat: float
    accuracy_m: float
    precinct_code: Annotated[str | None, Meta(description="the precinct the officer is in")]
    position_at: Instant


class OfficerStatus(RecordedEvent, tag="officer.status"):
    """The officer went on or off duty, or became busy (accepted an assignment) or free
    again (cleared it, or its incident ended); the officer's own phone gets it too."""

    audience = (CONSOLE, OFFICER)

    officer_id: OfficerId
    status: Literal["available", "busy", "off_duty"]


class OfficerGeofence(RecordedEvent, tag="officer.geofence"):
    """A reported position crossed the boundary of the officer's precincts."""

    officer_id: OfficerId
    crossing: Literal["entered", "left"]
    from_precinct: str | None
    to_precinct: str | None


class OfficerMutualAid(RecordedEvent, tag="officer.mutual_aid"):
    """One of the precinct's officers was sent to another precinct's incident as mutual
    aid, with the sending dispatcher's reason (the incident itself stays out of reach)."""

    officer_id: OfficerId
    callsign: str
    incident_id: UUID
    case_no: str
    precinct_code: Annotated[str | None, Meta(description="the incident's precinct")]
    reason: str


# --- assignment.*: to consoles whose scope holds the incident, and to the officer ------


CapturedAt = Annotated[
    Instant,
    Meta(description="when the officer tapped it (it may have waited offline); `at` is when "
         "it was recorded"),
]  # fmt: skip


class OfficerStep(AssignmentEvent, kw_only=True):
    """An answer or status step the officer's phone may stamp with when and where."""

    captured_at: CapturedAt | UnsetType = UNSET
    place: Place | UnsetType = UNSET


class AssignmentOffered(AssignmentEvent, tag="assignment.offered"):
    """The officer was sent to the incident; offered again every 30 s while unanswered
    (`offers` counts them; the re-offers' actor is `system`)."""

    offers: Annotated[int, Meta(ge=1)]


class AssignmentAccepted(OfficerStep, tag="assignment.accepted"):
    """The officer accepted (a late answer counts too) and is now busy."""

    reason: str


class AssignmentDeclined(OfficerStep, tag="assignment.declined"):
    """The officer declined, with their reason."""

    reason: str


class AssignmentUnacknowledged(AssignmentEvent, tag="assignment.unacknowledged"):
    """An offer went unanswered for two minutes: raised once (actor `system`), so the
    dispatcher can send someone else.  The officer may still answer late."""

    offers: Annotated[int, Meta(ge=1)]


class AssignmentEnRoute(OfficerStep, tag="assignment.en_route"):
    """The officer reports being on the way."""


class AssignmentOnScene(OfficerStep, tag="assignment.on_scene"):
    """The officer reports arriving."""


class AssignmentCleared(OfficerStep, tag="assignment.cleared"):
    """The officer is done, or the incident was resolved while the assignment was live;
    an officer who was working it is available again."""


class AssignmentCancelled(AssignmentEvent, tag="assignment.cancelled"):
    """The incident ended otherwise (invalid, transferred out, merged) while the
    assignment was live, answered or not; an officer who was working it is available."""


# --- call.*: video calls, to consoles whose scope holds the incident -------------------


class CallStarted(IncidentEvent, tag="call.started"):
    """The citizen's phone connected the incident's video call: recording starts with its
    first packet.  `segment` 1 is the first connection; 2, 3, ... are reconnections of
    the same call (each a recording segment of its own)."""

    session_id: UUID
    segment: Annotated[int, Meta(ge=1)]
    node: Annotated[str, Meta(description="the server node holding the call's media")]


class CallAnswered(IncidentEvent, tag="call.answered"):
    """Staff joined the call: the dispatcher who claimed the incident (`talk`: the
    citizen hears them) or a commander watching and listening silently.  The reporter
    is told when a dispatcher joins (case.status), never about silent listeners."""

    session_id: UUID
    viewer_id: UUID
    user_id: int
    talk: bool


class CallLeft(IncidentEvent, tag="call.left"):
    """A viewer left the call (hung up, vanished, or the call ended)."""

    viewer_id: UUID
    user_id: int
    talk: bool
    reason: Literal["left", "vanished", "failed", "call_ended", "shutdown"]


class CallEnded(IncidentEvent, tag="call.ended"):
    """A connection of the call ended: the citizen hung up, reconnected (`replaced`),
    vanished (nothing heard for a few seconds), the connection failed, or the server
    stopped.  `recording` is its segment, now evidence (null if no video arrived)."""

    session_id: UUID
    segment: Annotated[int, Meta(ge=1)]
    reason: Literal["hang_up", "replaced", "vanished", "failed", "ended", "shutdown",
                    "server_restart"]  # fmt: skip
    recording: RecordingRef | None


# --- case.status: to the reporter -------------------------------------------------------


class CaseStatus(Event, tag="case.status"):
    """A step of the reporter's case, in plain words (received, claimed, officers sent,
    an officer on the way, an officer arrived, resolved, rated and so on).  Internal
    steps (notes, trail, overdue, offers) are never sent."""

    audience = (CITIZEN,)

    text: Annotated[str, Meta(description="this step, for the reporter")]
    event: Annotated[
        str,
        Meta(description="the step's event type (`incident.claimed`, ...): to translate `text`"),
    ]
    case_no: str
    status: IncidentState
    status_text: Annotated[str, Meta(description="the case's state now, for the reporter")]


def _catalogue(*events: type[Event]) -> Mapping[str, type[Event]]:
    return MappingProxyType({wire_name(e): e for e in events})


def wire_name(event: type[Event]) -> str:
    tag = event.__struct_config__.tag
    assert isinstance(tag, str), event
    return tag


# Wire event name -> its schema, in the order the docs list them.
CATALOGUE = _catalogue(
    IncidentCreated, IncidentUpdated, IncidentClaimed, IncidentReleased, IncidentAssigned,
    IncidentMerged, IncidentUnmerged, IncidentTransferred, IncidentEscalated, IncidentOverdue,
    IncidentResolved, IncidentClosed, IncidentInvalid, IncidentRated,
    MessageCreated,
    OfficerPosition, OfficerStatus, OfficerGeofence, OfficerMutualAid,
    AssignmentOffered, AssignmentAccepted, AssignmentDeclined, AssignmentUnacknowledged,
    AssignmentEnRoute, AssignmentOnScene, AssignmentCleared, AssignmentCancelled,
    CallStarted, CallAnswered, CallLeft, CallEnded,
    CaseStatus,
)  # fmt: skip

# Wire event name -> the namespaces that receive it (checked against `rooms_for`).
NAMESPACES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {name: event.audience for name, event in CATALOGUE.items()}
)


def namespace_union(namespace: str) -> Any:
    """The tagged union of every event `namespace` pushes: decode any of them by `type`."""
    members = tuple(CATALOGUE[name] for name, spaces in NAMESPACES.items() if namespace in spaces)
    return Union[members]  # noqa: UP007 - built at run time from a tuple


def json_schema() -> dict[str, Any]:
    """A JSON Schema (2020-12) document: any one catalogued event, with every shape in $defs."""
    refs, defs = msgspec.json.schema_components(
        list(CATALOGUE.values()), ref_template="#/$defs/{name}"
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "micro-110 Socket.IO events",
        "description": (
            "Every event the /console, /officer and /citizen namespaces push; the Socket.IO "
            "event name equals the payload's `type`."
        ),
        "oneOf": refs,
        "$defs": defs,
    }
