"""How an incident looks on the wire: one shape, `IncidentView`, and its rendering.

Every incident event and snapshot carries it (Socket.IO: `IncidentSnapshot` in
`signaling.events.shapes`), the staff API returns it (`dispatch.wire.models.IncidentOut`),
and `incident_view` renders a domain `Incident` as it.  Its SQL twin
(`dispatch.store.incident_view.incident_view_sql`) is built from the same field list
(`VIEW_FIELDS`), so a field is added in one place, `IncidentView`: a field named as the
`Incident` attribute (and the `incidents` column) it shows, or a flag in `_SET_WHEN`.

The rendering is fixed by each field's type, the same whichever way an event was
written: ids as text, enums as their values, moments in ISO 8601 with `+00:00`, not the
`Z` msgspec writes elsewhere: the events already stored have it, and a replay must look
like the live feed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from operator import attrgetter, methodcaller
from types import MappingProxyType
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec.inspect as mi
from msgspec import Meta, Struct

from dispatch.domain.identity import VerificationLevel
from dispatch.domain.incidents import Disposition, Incident, IncidentState
from dispatch.domain.priority import Channel

Instant = Annotated[datetime, Meta(tz=True)]
Jurisdiction = Literal["inside", "out_of_jurisdiction", "unknown"]


class IncidentView(Struct, kw_only=True, forbid_unknown_fields=True):
    """The incident as every event, snapshot and staff answer carries it."""

    id: UUID
    case_no: str
    state: IncidentState
    channel: Channel
    tag: str
    severity: Annotated[int, Meta(ge=1, le=4, description="1 is the most severe")]
    verification: VerificationLevel
    precinct_code: str | None
    jurisdiction: Jurisdiction
    nearest_precinct_code: str | None
    distance_m: float | None
    lon: float | None
    lat: float | None
    accuracy_m: float | None
    received_at: Instant
    priority_score: float
    claimed_by: int | None
    merged_into: UUID | None
    disposition: Disposition | None
    overdue: bool
    cancelled: bool
    version: int
    refused_attempts: Annotated[
        int, Meta(ge=0, description="the reporter's attempts refused by the intake budgets")
    ]


# The flags: true when the incident's moment of that name is set.
_SET_WHEN = MappingProxyType({"overdue": "overdue_at", "cancelled": "cancelled_at"})


class Rendering(StrEnum):
    """How a field of the view is written from the incident's attribute."""

    AS_IS = "as_is"  # text, numbers, booleans, null
    TEXT = "text"  # a UUID, as its text
    VALUE = "value"  # an enum, as its value
    INSTANT = "instant"  # a moment, ISO 8601 in UTC with "+00:00"
    IS_SET = "is_set"  # true when the source (a moment) is not null


@dataclass(frozen=True, slots=True)
class ViewField:
    name: str  # on the wire
    source: str  # the `Incident` attribute, and the `incidents` column
    rendering: Rendering
    nullable: bool


def _view_field(name: str, kind: mi.Type) -> ViewField:
    if name in _SET_WHEN:
        return ViewField(name, _SET_WHEN[name], Rendering.IS_SET, nullable=False)
    if isinstance(kind, mi.Metadata):
        kind = kind.type
    nullable = isinstance(kind, mi.UnionType)
    if isinstance(kind, mi.UnionType):
        (kind,) = (k for k in kind.types if not isinstance(k, mi.NoneType))
    if isinstance(kind, mi.UUIDType):
        rendering = Rendering.TEXT
    elif isinstance(kind, mi.EnumType):
        rendering = Rendering.VALUE
    elif isinstance(kind, mi.DateTimeType):
        rendering = Rendering.INSTANT
    else:
        rendering = Rendering.AS_IS
    return ViewField(name, name, rendering, nullable)


def _fields() -> tuple[ViewField, ...]:
    info = mi.type_info(IncidentView)
    assert isinstance(info, mi.StructType)
    return tuple(_view_field(f.name, f.type) for f in info.fields)


VIEW_FIELDS = _fields()


_RENDER: MappingProxyType[Rendering, Callable[[Any], Any]] = MappingProxyType(
    {
        Rendering.TEXT: str,
        Rendering.VALUE: attrgetter("value"),
        Rendering.INSTANT: methodcaller("isoformat"),
    }
)


def _getter(field: ViewField) -> Callable[[Incident], Any]:
    read = attrgetter(field.source)
    match field.rendering:
        case Rendering.AS_IS:
            return read
        case Rendering.VALUE if not field.nullable:
            return attrgetter(f"{field.source}.value")
        case Rendering.IS_SET:
            return lambda incident: read(incident) is not None
    render = _RENDER[field.rendering]
    if field.nullable:
        return lambda incident: None if (value := read(incident)) is None else render(value)
    return lambda incident: render(read(incident))


_GETTERS = tuple((field.name, _getter(field)) for field in VIEW_FIELDS)


def incident_view(incident: Incident) -> dict[str, Any]:
    """The incident as the wire carries it (`IncidentView`, as JSON-ready values)."""
    return {name: get(incident) for name, get in _GETTERS}
