"""/citizen: the reporter's case steps (`case.status`) and chat with the dispatcher."""

from __future__ import annotations

import logging
from typing import Any

from dispatch.domain.incidents import CitizenId
from dispatch.services.citizens import CitizenServices
from dispatch.services.messages import MessageService
from dispatch.wire import models
from signaling.audiences import (
    CITIZEN,
    citizen_room,
)
from signaling.hub import FeedHub
from signaling.namespaces.base import (
    _FeedNamespace,
    acked,
    decode,
    sign_in_room,
)

logger = logging.getLogger(__name__)


class CitizenNamespace(_FeedNamespace):
    def __init__(self, hub: FeedHub, citizens: CitizenServices, messages: MessageService) -> None:
        super().__init__(CITIZEN, hub)
        self.citizens = citizens
        self.messages = messages

    async def admit(self, token: str) -> dict[str, Any]:
        citizen = await self.citizens.authenticate(token)
        return {"rooms": [citizen_room(citizen)], "citizen_id": str(citizen)}

    def admitted(self, sid: str, token: str, session: dict[str, Any]) -> None:
        # "Sign out everywhere" (or a leaked refresh token) ends these through this room.
        self.server.manager.basic_enter_room(
            sid, self.namespace, sign_in_room(session["citizen_id"])
        )

    @acked
    async def on_message(self, sid: str, data: Any) -> dict[str, Any]:
        session = await self.get_session(sid)
        citizen = await self.citizens.authenticate(session["token"])  # expiry, sign-out
        body = decode(models.CitizenMessageIn, data)
        message = await self.messages.from_citizen(
            CitizenId(citizen), body.incident_id, body.body, body.client_key
        )
        return {"ok": True, "message": message}
