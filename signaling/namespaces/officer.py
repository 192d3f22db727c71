"""/officer: an officer's assignments, answers and status steps, position, duty, chat."""

from __future__ import annotations

import logging
from typing import Any

from dispatch.domain.field_reports import Place, place_in_wgs84
from dispatch.domain.users import Role
from dispatch.services.assignments import AssignmentService
from dispatch.services.messages import MessageService
from dispatch.services.officers import OfficerService
from dispatch.services.staff_auth import StaffAuth, StaffSession
from dispatch.wire import models
from geo.datum import Datum
from signaling.audiences import (
    OFFICER,
    incident_room,
    officer_room,
)
from signaling.hub import FeedHub
from signaling.namespaces.base import (
    _StaffNamespace,
    acked,
    decode,
    working_on,
)

logger = logging.getLogger(__name__)


def _place(place: models.PlaceIn | None) -> Place | None:
    if place is None:
        return None
    return place_in_wgs84(place.lon, place.lat, place.accuracy_m, Datum(place.datum))


class OfficerNamespace(_StaffNamespace):
    credential_of = "officer"
    roles = (Role.OFFICER,)

    def __init__(
        self,
        hub: FeedHub,
        auth: StaffAuth,
        officers: OfficerService,
        assignments: AssignmentService,
        messages: MessageService,
    ) -> None:
        super().__init__(OFFICER, hub)
        self.auth = auth
        self.officers = officers
        self.assignments = assignments
        self.messages = messages

    def staff_rooms(self, session: StaffSession) -> list[str]:
        return [officer_room(session.user.id)]

    async def rooms_at(self, sid: str, seq: int) -> set[str]:
        session = await self.get_session(sid)
        return {
            incident_room(incident_id)
            for incident_id in await working_on(self.hub.pool, session["user_id"], seq)
        }

    async def resumed(self, sid: str) -> dict[str, Any]:
        # At least once: whatever is still waiting for an answer is handed over again,
        # and the phone learns what it is working on (a reload lost its screen).
        session = await self.staff(sid)
        return {
            "pending": await self.assignments.pending(session),
            "active": await self.assignments.active(session),
        }

    @acked
    async def on_ack(self, sid: str, data: Any) -> dict[str, Any]:
        body = decode(models.AssignmentAckIn, data)
        state = await self.assignments.answer(
            await self.staff(sid), body.assignment_id, body.accept, body.reason,
            client_key=body.client_key, captured_at=body.captured_at, place=_place(body.place),
        )  # fmt: skip
        return {"ok": True, "state": state}

    @acked
    async def on_status(self, sid: str, data: Any) -> dict[str, Any]:
        body = decode(models.AssignmentStatusIn, data)
        state = await self.assignments.progress(
            await self.staff(sid), body.assignment_id, body.status,
            client_key=body.client_key, captured_at=body.captured_at, place=_place(body.place),
        )  # fmt: skip
        return {"ok": True, "state": state}

    @acked
    async def on_message(self, sid: str, data: Any) -> dict[str, Any]:
        body = decode(models.OfficerMessageIn, data)
        message = await self.messages.from_officer(
            await self.staff(sid), body.incident_id, body.body, body.client_key,
            captured_at=body.captured_at, place=_place(body.place),
        )  # fmt: skip
        return {"ok": True, "message": message}

    @acked
    async def on_position(self, sid: str, data: Any) -> dict[str, Any]:
        body = decode(models.PositionIn, data)
        event = await self.officers.report_position(
            await self.staff(sid), body.lon, body.lat, body.accuracy_m, Datum(body.datum)
        )
        return {"ok": True, "precinct_code": event.payload["precinct_code"] if event else None}

    @acked
    async def on_duty(self, sid: str, data: Any) -> dict[str, Any]:
        body = decode(models.DutyIn, data)
        return {
            "ok": True,
            "status": await self.officers.set_duty(await self.staff(sid), body.on_duty),
        }
