"""The shapes events share: the incident snapshot, the actor, a chat message, ...

Closed (`forbid_unknown_fields`) like the events, so drift in a nested payload fails too.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta, Struct

from dispatch.domain.events import ActorKind
from dispatch.wire.incident_view import IncidentView, Instant


class Shape(Struct, kw_only=True, forbid_unknown_fields=True):
    """A closed wire shape: an unknown field is an error."""


class ActorRef(Shape):
    """Who caused the event: a citizen (id = citizen UUID), staff (id = user id) or the
    system (id = the sweep that raised it)."""

    kind: ActorKind
    id: str


class IncidentSnapshot(IncidentView):
    """The incident as it is after the event (`dispatch.wire.incident_view.incident_view`).

    A console that applies incident events in `seq` order ends where a fresh snapshot
    would; `version` grows with every change."""


class PossibleDuplicate(Shape):
    """An open incident close in space and time with a compatible tag (never merged)."""

    incident_id: UUID
    distance_m: float


class TrailPoint(Shape):
    """One position of a silent alarm's trail, in WGS-84."""

    lon: float
    lat: float
    accuracy_m: float | None
    time: Instant
    precinct_code: str | None


class Transfer(Shape):
    """Where an incident went: another precinct (queued there), an outside agency or a
    department (it leaves us)."""

    kind: Literal["precinct", "agency", "department"]
    name: str
    note: str


class Place(Shape):
    """Where an officer was when they tapped a step or wrote a message, in WGS-84."""

    lon: float
    lat: float
    accuracy_m: float | None


class Message(Shape):
    """One chat message on an incident: between the dispatcher and the reporter (thread
    `reporter`), or between the dispatcher and the officers working it (`officers`)."""

    id: UUID
    incident_id: UUID
    sender_kind: ActorKind
    sender_id: str
    body: str
    client_key: str | None
    created_at: Instant
    thread: Annotated[
        Literal["reporter", "officers"],
        Meta(description="absent on messages recorded before threads: `reporter`"),
    ] = "reporter"
    captured_at: Annotated[
        Instant | None,
        Meta(description="when the sender's phone captured it (it may have waited offline)"),
    ] = None
    place: Annotated[Place | None, Meta(description="where the officer was")] = None


class RecordingRef(Shape):
    """A finished recording segment of a video call: evidence of the incident."""

    id: Annotated[UUID, Meta(description="the attachment id; fetch it at `url`")]
    url: str
    media_type: str
    sha256: str
    bytes: Annotated[int, Meta(ge=0)]
    duration_s: float
    codecs: list[str]
