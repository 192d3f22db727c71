"""/console: the dispatchers' and commanders' feed, and the workflow verbs as acked calls."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from dispatch.domain.field_reports import Thread
from dispatch.domain.incidents import Disposition, TransferTarget
from dispatch.domain.scope import scope_of
from dispatch.domain.users import Role
from dispatch.services.messages import MessageService
from dispatch.services.staff_auth import StaffAuth, StaffSession
from dispatch.services.workflow import Workflow
from dispatch.wire import models
from dispatch.wire.incident_view import incident_view
from signaling.audiences import (
    ALL_PRECINCTS_ROOM,
    CONSOLE,
    precinct_room,
)
from signaling.hub import FeedHub
from signaling.namespaces.base import (
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
        self.workflow = workflow
        self.messages = messages

    def staff_rooms(self, session: StaffSession) -> list[str]:
        scope = scope_of(session.user)
        if scope.all_precincts:
            return [ALL_PRECINCTS_ROOM]
        # precinct_room(None): incidents with no position, which `Scope.covers`.
        return [precinct_room(code) for code in scope.codes()] + [precinct_room(None)]

    def admitted(self, sid: str, token: str, session: dict[str, Any]) -> None:
        super().admitted(sid, token, session)
        logger.info("console connected", extra={"sid": sid, "user_id": session["user_id"]})

    async def _verb(
        self, sid: str, data: Any, call: Callable[[StaffSession, uuid.UUID], Awaitable[Any]]
    ) -> dict[str, Any]:
        target = decode(
            IdIn,
            {"incident_id": (data or {}).get("incident_id")} if isinstance(data, dict) else data,
        )
        incident = await call(await self.staff(sid), target.incident_id)
        return {"ok": True, "incident": incident_view(incident)}

    @staticmethod
    def _body(model: type[T], data: Any) -> T:
        body = (
            {k: v for k, v in (data or {}).items() if k != "incident_id"}
            if isinstance(data, dict)
            else data
        )
        return decode(model, body)

    @acked
    async def on_next(self, sid: str, data: Any) -> dict[str, Any]:
        incident = await self.workflow.next(await self.staff(sid))
        return {"ok": True, "incident": incident_view(incident) if incident else None}

    @acked
    async def on_claim(self, sid: str, data: Any) -> dict[str, Any]:
        return await self._verb(sid, data, self.workflow.claim)

    @acked
    async def on_release(self, sid: str, data: Any) -> dict[str, Any]:
        return await self._verb(sid, data, self.workflow.release)

    @acked
    async def on_unmerge(self, sid: str, data: Any) -> dict[str, Any]:
        return await self._verb(sid, data, self.workflow.unmerge)

    @acked
    async def on_close(self, sid: str, data: Any) -> dict[str, Any]:
        return await self._verb(sid, data, self.workflow.close)

    @acked
    async def on_assign(self, sid: str, data: Any) -> dict[str, Any]:
        body = self._body(models.AssignIn, data)
        return await self._verb(
            sid,
            data,
            lambda s, i: self.workflow.assign(s, i, body.officer_ids, body.mutual_aid_reason),
        )

    @acked
    async def on_merge(self, sid: str, data: Any) -> dict[str, Any]:
        body = self._body(models.MergeIn, data)
        return await self._verb(sid, data, lambda s, i: self.workflow.merge(s, i, body.into))

    @acked
    async def on_invalid(self, sid: str, data: Any) -> dict[str, Any]:
        body = self._body(models.InvalidIn, data)
        return await self._verb(
            sid, data, lambda s, i: self.workflow.mark_invalid(s, i, body.reason)
        )

    @acked
    async def on_escalate(self, sid: str, data: Any) -> dict[str, Any]:
        body = self._body(models.EscalateIn, data)
        return await self._verb(sid, data, lambda s, i: self.workflow.escalate(s, i, body.note))

    @acked
    async def on_resolve(self, sid: str, data: Any) -> dict[str, Any]:
        body = self._body(models.ResolveIn, data)
        return await self._verb(
            sid,
            data,
            lambda s, i: self.workflow.resolve(s, i, Disposition(body.disposition), body.note),
        )

    @acked
    async def on_transfer(self, sid: str, data: Any) -> dict[str, Any]:
        body = self._body(models.TransferIn, data)
        if body.to == "precinct":
            return await self._verb(
                sid, data, lambda s, i: self.workflow.reroute(s, i, body.name, body.note)
            )
        return await self._verb(
            sid,
            data,
            lambda s, i: self.workflow.transfer(
                s, i, TransferTarget(body.to), body.name, body.note
            ),
        )

    @acked
    async def on_note(self, sid: str, data: Any) -> dict[str, Any]:
        body = self._body(models.NoteIn, data)
        target = decode(IdIn, {"incident_id": (data or {}).get("incident_id")})
        event = await self.workflow.note(
            await self.staff(sid), target.incident_id, body.text, body.kind
        )
        return {"ok": True, "seq": event.seq}

    @acked
    async def on_message(self, sid: str, data: Any) -> dict[str, Any]:
        body = self._body(models.MessageIn, data)
        target = decode(IdIn, {"incident_id": (data or {}).get("incident_id")})
        message = await self.messages.from_staff(
            await self.staff(sid), target.incident_id, body.body, body.client_key,
            Thread(body.thread),
        )  # fmt: skip
        return {"ok": True, "message": message}
