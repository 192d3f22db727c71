"""The HTTP API's wire models: every request body is decoded into one of these.

Strict: unknown fields are refused, numbers must be finite and in range, strings are
bounded.  The OpenAPI document is generated from these same classes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta, Struct

from dispatch.wire.incident_view import IncidentView

Lon = Annotated[float, Meta(ge=-180.0, le=180.0, description="longitude, degrees")]
Lat = Annotated[float, Meta(ge=-90.0, le=90.0, description="latitude, degrees")]
Accuracy = Annotated[
    float, Meta(gt=0.0, le=100_000.0, description="horizontal accuracy radius, metres")
]
DatumName = Literal["wgs84", "gcj02", "bd09"]
IdempotencyKey = Annotated[
    str,
    Meta(
        min_length=8,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="client-generated; a retry with the same key returns the first answer",
    ),
]
# A row id as PostgreSQL stores it (bigint): a larger number names nothing and must be
# refused here, not by the driver.
RowId = Annotated[int, Meta(ge=1, le=2**63 - 1)]
TagCode = Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]
AwareTime = Annotated[datetime, Meta(tz=True)]


class _In(Struct, forbid_unknown_fields=True):
    pass


class RegisterCitizenIn(_In):
    device_id: Annotated[str, Meta(min_length=8, max_length=128)]
    platform: Annotated[str, Meta(max_length=40)] | None = None


class RefreshIn(_In):
    refresh_token: Annotated[str, Meta(min_length=1, max_length=4096)]


class PhoneStartIn(_In):
    phone: Annotated[str, Meta(min_length=3, max_length=32)]


class PhoneVerifyIn(_In):
    challenge_id: UUID
    code: Annotated[str, Meta(pattern=r"^[0-9]{6}$")]


class RealNameIn(_In):
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    national_id: Annotated[str, Meta(min_length=1, max_length=64)]


class AttestationIn(_In):
    token: Annotated[str, Meta(min_length=1, max_length=8192)]


class AlarmIn(_In):
    """A silent alarm is sent the moment it is confirmed, with the phone's best fix so
    far or with none (`lon`, `lat`, `accuracy_m`, `datum` all absent): the trail brings
    the position later, and the first fix routes it."""

    tag: TagCode
    client_time: AwareTime
    idempotency_key: IdempotencyKey
    lon: Lon | None = None
    lat: Lat | None = None
    accuracy_m: Accuracy | None = None
    datum: DatumName | None = None
    note: Annotated[str, Meta(max_length=2000)] | None = None


class CallIn(_In):
    """Start a video call: an alarm's intake fields; the SDP offer follows separately.
    Like an alarm, with the phone's best fix or with none (all four position fields
    absent): the call's trail brings the position later, and the first fix routes it."""

    idempotency_key: IdempotencyKey
    lon: Lon | None = None
    lat: Lat | None = None
    accuracy_m: Accuracy | None = None
    datum: DatumName | None = None
    tag: TagCode = "other"
    client_time: AwareTime | None = None
    note: Annotated[str, Meta(max_length=2000)] | None = None


class CallOut(Struct, frozen=True):
    case_no: str
    incident_id: UUID
    tracking_token: str
    precinct: PrecinctOut | None
    jurisdiction: JurisdictionOut
    status: str
    session_url: Annotated[str, Meta(description="POST the SDP offer here (application/sdp)")]


class IceServerOut(Struct, frozen=True, omit_defaults=True):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class RtcConfigOut(Struct, frozen=True):
    ice_servers: list[IceServerOut]
    expires_at: datetime | None


class TrailPointIn(_In):
    lon: Lon
    lat: Lat
    accuracy_m: Accuracy
    datum: DatumName
    time: AwareTime


class TrailIn(_In):
    points: Annotated[list[TrailPointIn], Meta(min_length=1, max_length=50)]


class CancelIn(_In):
    reason: Annotated[str, Meta(min_length=1, max_length=500)]


# --- responses -------------------------------------------------------------------


class PrecinctOut(Struct, frozen=True):
    code: str
    name: str


class JurisdictionOut(Struct, frozen=True, omit_defaults=True):
    status: Literal["inside", "out_of_jurisdiction", "unknown"]
    nearest: PrecinctOut | None = None
    distance_m: float | None = None


class IntakeOut(Struct, frozen=True):
    case_no: str
    incident_id: UUID
    tracking_token: str
    precinct: PrecinctOut | None
    jurisdiction: JurisdictionOut
    status: str


class CitizenTokensOut(Struct, frozen=True):
    citizen_id: UUID
    token: str
    token_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    verification: str


class TimelineEntryOut(Struct, frozen=True):
    at: datetime
    event: str
    text: str


class CaseOut(Struct, frozen=True):
    case_no: str
    status: str
    status_text: str
    channel: str
    tag: str
    precinct: PrecinctOut | None
    received_at: datetime
    timeline: list[TimelineEntryOut]
    # The reporter's own rating once given (1-5), so every phone shows it, not a form.
    rating: int | None = None


class ErrorBody(Struct, frozen=True):
    code: str
    message: str
    field: str | None


class ErrorOut(Struct, frozen=True):
    error: ErrorBody


# --- staff ---------------------------------------------------------------------------

Note = Annotated[str, Meta(max_length=2000)]


class LoginIn(_In):
    username: Annotated[str, Meta(min_length=1, max_length=64)]
    password: Annotated[str, Meta(min_length=1, max_length=1024)]


class AssignIn(_In):
    officer_ids: Annotated[list[RowId], Meta(min_length=1, max_length=20)]
    # Officers of other precincts are sent only as mutual aid, asked for with a reason.
    mutual_aid_reason: Annotated[str, Meta(min_length=3, max_length=500)] | None = None


class MergeIn(_In):
    into: UUID


class InvalidIn(_In):
    reason: Annotated[str, Meta(min_length=1, max_length=500)]


class TransferIn(_In):
    to: Literal["precinct", "agency", "department"]
    name: Annotated[str, Meta(min_length=1, max_length=120)]
    note: Note = ""


class EscalateIn(_In):
    note: Note = ""


class ResolveIn(_In):
    disposition: Literal[
        "arrested", "report_taken", "advised", "assisted", "no_offence", "gone_on_arrival",
        "referred", "other",
    ]  # fmt: skip
    note: Note = ""


class NoteIn(_In):
    text: Annotated[str, Meta(min_length=1, max_length=2000)]
    kind: Literal["note", "follow_up", "callback"] = "note"


class RatingIn(_In):
    rating: Annotated[int, Meta(ge=1, le=5)]
    comment: Annotated[str, Meta(max_length=1000)] = ""


class DutyIn(_In):
    on_duty: bool


class PositionIn(_In):
    lon: Lon
    lat: Lat
    accuracy_m: Accuracy
    datum: DatumName = "wgs84"


class StaffUserOut(Struct, frozen=True):
    id: int
    username: str
    display_name: str
    role: str
    precincts: list[str]


class LoginOut(Struct, frozen=True):
    token: str
    expires_at: datetime
    user: StaffUserOut


class IncidentOut(IncidentView):
    """An incident, as the staff API answers with it: the `incident` of every event."""


class RecommendationOut(Struct, frozen=True):
    officer_id: int
    callsign: str
    distance_m: float
    position_at: datetime | None
    # The last position is older than a few minutes: ranked after every fresh one.
    stale: bool


ChatKey = Annotated[str, Meta(min_length=1, max_length=128)]
MessageBody = Annotated[str, Meta(min_length=1, max_length=2000)]
CapturedAt = Annotated[
    datetime,
    Meta(tz=True, description="when the phone captured it (it may have waited offline)"),
]


class PlaceIn(_In):
    """Where the officer was when they tapped it."""

    lon: Lon
    lat: Lat
    accuracy_m: Accuracy | None = None
    datum: DatumName = "wgs84"


class MessageIn(_In):
    body: MessageBody
    client_key: ChatKey | None = None
    # `officers`: to the officers working the incident, not to the reporter.
    thread: Literal["reporter", "officers"] = "reporter"


class OfficerMessageIn(_In):
    incident_id: UUID
    body: MessageBody
    client_key: ChatKey | None = None
    captured_at: CapturedAt | None = None
    place: PlaceIn | None = None


class CitizenMessageIn(_In):
    incident_id: UUID
    body: MessageBody
    client_key: ChatKey | None = None


class AssignmentAckIn(_In):
    assignment_id: UUID
    accept: bool
    # Required (not blank) to decline.
    reason: Annotated[str, Meta(max_length=500)] = ""
    client_key: IdempotencyKey | None = None
    captured_at: CapturedAt | None = None
    place: PlaceIn | None = None


class AssignmentStatusIn(_In):
    assignment_id: UUID
    status: Literal["en_route", "on_scene", "cleared"]
    client_key: IdempotencyKey | None = None
    captured_at: CapturedAt | None = None
    place: PlaceIn | None = None
