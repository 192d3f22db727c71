"""/console: the dispatchers' and commanders' feed, and the workflow verbs as acked calls
(one handler per verb of `dispatch.services.verbs`)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from dispatch.domain.scope import scope_of
from dispatch.domain.users import Role
from dispatch.services.messages import MessageService
from dispatch.services.staff_auth import StaffAuth, StaffSession
from dispatch.services.verbs import VERBS, Desk, Verb
from dispatch.services.workflow import Workflow
from signaling.audiences import (
    ALL_PRECINCTS_ROOM,
    CONSOLE,
    precinct_room,
)
from signaling.hub import FeedHub
from signaling.namespaces.base import (
    Handler,
    IdIn,
    T,
    _StaffNamespace,
    acked,
    decode,
)

logger = logging.getLogger(__name__)


class ConsoleNamespace(_StaffNamespace):
    credential_of = "staff"
    roles = (Role.DISPATCHER, Role.COMMANDER)

    def __init__(
        self, hub: FeedHub, auth: StaffAuth, workflow: Workflow, messages: MessageService
    ) -> None:
        super().__init__(CONSOLE, hub)
        self.auth = auth
        self.desk = Desk(workflow, messages)

    def staff_rooms(self, session: StaffSession) -> list[str]:
        scope = scope_of(session.user)
        if scope.all_precincts:
            return [ALL_PRECINCTS_ROOM]
        # precinct_room(None): incidents with no position, which `Scope.covers`.
        return [precinct_room(code) for code in scope.codes()] + [precinct_room(None)]

    def admitted(self, sid: str, token: str, session: dict[str, Any]) -> None:
        super().admitted(sid, token, session)
        logger.info("console connected", extra={"sid": sid, "user_id": session["user_id"]})

    @staticmethod
    def _body(model: type[T], data: Any) -> T:
        body = (
            {k: v for k, v in (data or {}).items() if k != "incident_id"}
            if isinstance(data, dict)
            else data
        )
        return decode(model, body)

    @staticmethod
    def _target(data: Any) -> uuid.UUID:
        target = decode(
            IdIn,
            {"incident_id": (data or {}).get("incident_id")} if isinstance(data, dict) else data,
        )
        return target.incident_id

    async def run(self, verb: Verb, sid: str, data: Any) -> dict[str, Any]:
        """`verb` over Socket.IO: the body, then the incident id, then the staff session."""
        body = None if verb.body is None else self._body(verb.body, data)
        target = self._target(data) if verb.targeted else None
        result = await verb.call(self.desk, await self.staff(sid), target, body)
        return {"ok": True, verb.answer.key: verb.answer.render(result)}


def _handler(verb: Verb) -> Handler:
    async def handle(self: ConsoleNamespace, sid: str, data: Any) -> dict[str, Any]:
        return await self.run(verb, sid, data)

    handle.__name__ = handle.__qualname__ = f"on_{verb.name}"
    return acked(handle)


# One acked handler per verb: `on_claim` answers the event `claim`, and so on.
for _verb in VERBS:
    setattr(ConsoleNamespace, f"on_{_verb.name}", _handler(_verb))
