"""What an officer's phone reports from the field: when and where a step was tapped.

A phone on a bad network keeps a status tap or a message in its outbox and sends it
when the connection returns, perhaps minutes later.  The record keeps both times: the
event's commit time (`at`) and the moment the officer tapped (`captured_at`), with the
place they were at.  Pure: the caller converts the place to WGS-84 first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from dispatch.domain.errors import BadRequest
from geo.datum import Datum, to_wgs84

# A phone's clock may run a little ahead of ours: such a capture time is recorded as
# now.  Further ahead it is a broken clock, refused by name.
CLOCK_SKEW_ALLOWED = timedelta(minutes=5)
# Nothing waits in an outbox longer than a staff token lives (26 hours).
MAX_CAPTURE_AGE = timedelta(days=2)


class Thread(StrEnum):
    """Who a chat message on an incident is between."""

    REPORTER = "reporter"  # the dispatcher and the citizen who reported it
    OFFICERS = "officers"  # the dispatcher and the officers working it


@dataclass(frozen=True, slots=True)
class Place:
    """A position in WGS-84."""

    lon: float
    lat: float
    accuracy_m: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"lon": self.lon, "lat": self.lat, "accuracy_m": self.accuracy_m}


@dataclass(frozen=True, slots=True)
class Capture:
    """When and where the officer tapped; either may be unknown."""

    at: datetime | None = None
    place: Place | None = None

    def payload(self) -> dict[str, Any]:
        """The event payload fields: only those known (an old client sends neither)."""
        fields: dict[str, Any] = {}
        if self.at is not None:
            fields["captured_at"] = self.at.isoformat()
        if self.place is not None:
            fields["place"] = self.place.as_dict()
        return fields


NO_CAPTURE = Capture()


def place_in_wgs84(lon: float, lat: float, accuracy_m: float | None, datum: Datum) -> Place:
    wgs_lon, wgs_lat = to_wgs84(lon, lat, datum)
    return Place(wgs_lon, wgs_lat, accuracy_m)


def message_thread(payload: dict[str, Any]) -> Thread:
    """The thread of a `message.created` payload (messages from before threads were
    all between the dispatcher and the reporter)."""
    message = payload.get("message")
    thread = message.get("thread") if isinstance(message, dict) else None
    return Thread(thread) if thread is not None else Thread.REPORTER


def capture(captured_at: datetime | None, place: Place | None, now: datetime) -> Capture:
    """The capture as recorded: a time a little ahead of `now` becomes `now`; one far
    ahead or too old is refused, naming `captured_at`."""
    if captured_at is None:
        return Capture(None, place)
    if captured_at > now + CLOCK_SKEW_ALLOWED:
        raise BadRequest(
            "captured_at is in the future: check the phone's clock", field="captured_at"
        )
    if captured_at < now - MAX_CAPTURE_AGE:
        raise BadRequest("captured_at is more than two days old", field="captured_at")
    return Capture(min(captured_at, now), place)
