"""Socket.IO namespaces: /console, /officer, /citizen.

Protocol: connect with `auth={"token": ...}`; then emit `resume` with
`{"last_seq": N}` (or null for live only) and get, in order, every event after N you
may see, then live events; the ack says the seq you are now at.  Workflow calls use
acks: `{"ok": true, ...}` or `{"ok": false, "error": {code, message, field}}`, with the
same codes as HTTP.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import asyncpg
import msgspec
import socketio

from dispatch.domain.errors import BadRequest, Conflict, DispatchError, Unauthorized
from dispatch.domain.field_reports import Place, Thread, place_in_wgs84
from dispatch.domain.incidents import CitizenId, Disposition, TransferTarget
from dispatch.domain.scope import scope_of
from dispatch.domain.users import Role
from dispatch.infra.connections import DATABASE_UNAVAILABLE
from dispatch.services.assignments import AssignmentService
from dispatch.services.citizens import CitizenServices
from dispatch.services.feed import events_between, latest_officer_events
from dispatch.services.messages import MessageService
from dispatch.services.officers import OfficerService
from dispatch.services.staff_auth import StaffAuth, StaffSession
from dispatch.services.workflow import Workflow
from dispatch.wire import models
from dispatch.wire.incident_view import incident_view
from dispatch.wire.validation import NUL_MESSAGE, field_of, nul_path
from geo.datum import Datum
from signaling.audiences import (
    ALL_PRECINCTS_ROOM,
    CITIZEN,
    CONSOLE,
    MEMBERSHIP_TYPES,
    OFFICER,
    citizen_room,
    incident_room,
    membership,
    membership_joins,
    officer_room,
    precinct_room,
    rooms_for,
)
from signaling.hub import FeedHub

logger = logging.getLogger(__name__)

T = TypeVar("T")
# A client further behind than this gets {"resync": true}: load a fresh snapshot.
MAX_REPLAY = 5000


def refusal(exc: DispatchError) -> socketio.exceptions.ConnectionRefusedError:
    return socketio.exceptions.ConnectionRefusedError(exc.message, exc.as_dict())


def error_ack(exc: DispatchError) -> dict[str, Any]:
    """The one place a DispatchError becomes a Socket.IO answer."""
    return {"ok": False, "error": exc.as_dict()}


def decode(model: type[T], data: Any) -> T:
    if (where := nul_path(data)) is not None:
        raise BadRequest(NUL_MESSAGE, field=where)
    try:
        return msgspec.convert(data if data is not None else {}, model, strict=True)
    except msgspec.ValidationError as exc:
        field, message = field_of(exc)
        raise BadRequest(message, field=field) from None


Handler = Callable[..., Awaitable[dict[str, Any]]]


def acked(handler: Handler) -> Handler:
    """Turn DispatchErrors into error acks; anything else is logged, never fatal."""

    @functools.wraps(handler)
    async def wrapper(self: Any, sid: str, data: Any = None) -> dict[str, Any]:
        try:
            return await handler(self, sid, data)
        except DispatchError as exc:
            return error_ack(exc)
        except DATABASE_UNAVAILABLE:
            logger.warning("database unavailable", exc_info=True, extra={"sid": sid})
            return {
                "ok": False,
                "error": {
                    "code": "dependency_unavailable",
                    "message": "the database is not answering; try again shortly",
                    "field": None,
                },
            }
        except Exception:
            logger.exception(
                "socket handler failed", extra={"sid": sid, "handler": handler.__name__}
            )
            return {
                "ok": False,
                "error": {"code": "internal", "message": "internal server error", "field": None},
            }

    return wrapper


class IdIn(msgspec.Struct, forbid_unknown_fields=True):
    incident_id: uuid.UUID


class ResumeIn(msgspec.Struct, forbid_unknown_fields=True):
    # A feed seq is a bigint; 0 resumes from the beginning.
    last_seq: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None = None


async def working_on(pool: asyncpg.Pool, officer_id: int, seq: int) -> list[uuid.UUID]:
    """Incidents whose room the feed had moved `officer_id` into by `seq`: those whose
    latest assignment event for the officer, up to `seq`, joined the room."""
    latest = await latest_officer_events(pool, officer_id, seq, sorted(MEMBERSHIP_TYPES))
    return [incident_id for incident_id, event_type in latest if membership_joins(event_type)]


def session_room(session_id: object) -> str:
    """The connections of one staff session (not a feed room: nothing is published to it)."""
    return f"staff-session:{session_id}"


def sign_in_room(citizen_id: object) -> str:
    """The connections of one citizen, whatever their device (not a feed room)."""
    return f"citizen-sign-in:{citizen_id}"


class _FeedNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """A namespace whose clients follow the feed.  Connecting takes a token
    (`auth={"token": ...}`), checked by `admit`: refused with the error's code, or kept
    in the connection's session with the rooms it may follow."""

    # Who holds the token, as the refusal of a connection without one names it.
    credential_of = "citizen"

    def __init__(self, namespace: str, hub: FeedHub) -> None:
        super().__init__(namespace)
        self.hub = hub

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            if not isinstance(token, str):
                raise Unauthorized(
                    f"connect with auth={{'token': <{self.credential_of} token>}}", field="token"
                )
            session = await self.admit(token)
        except DispatchError as exc:
            raise refusal(exc) from None
        await self.save_session(sid, {"token": token, **session})
        self.admitted(sid, token, session)

    async def admit(self, token: str) -> dict[str, Any]:
        """What a connection with `token` keeps in its session: "rooms" and who it is;
        a DispatchError refuses it."""
        raise NotImplementedError

    def admitted(self, sid: str, token: str, session: dict[str, Any]) -> None:
        """Called once the connection's session is saved."""

    async def rooms_of(self, sid: str) -> list[str]:
        session = await self.get_session(sid)
        rooms: list[str] = session["rooms"]
        return rooms

    @acked
    async def on_resume(self, sid: str, data: Any) -> dict[str, Any]:
        request = decode(ResumeIn, data)
        rooms = await self.rooms_of(sid)
        session = await self.get_session(sid)
        if session.get("joined"):
            raise BadRequest("already resumed; reconnect to resume again")
        replayed = self.hub.cursor if request.last_seq is None else request.last_seq
        if replayed < 0 or replayed > self.hub.cursor + MAX_REPLAY:
            raise BadRequest(
                "last_seq is not a sequence number this server issued", field="last_seq"
            )
        if self.hub.cursor - replayed > MAX_REPLAY:
            # Too far behind to replay: the client reloads a snapshot and resumes from its seq.
            return {"ok": True, "resync": True, "seq": self.hub.cursor}
        # The rooms this client was in at `replayed`: its own, plus the incident rooms
        # the feed had moved it into by then; replay moves it as live delivery did.
        wanted = set(rooms) | await self.rooms_at(sid, replayed)
        while True:
            target = self.hub.cursor
            if replayed < target:
                for event in await events_between(self.hub.pool, replayed, target):
                    for namespace, room, name, wire in rooms_for(event):
                        if namespace == self.namespace and room in wanted:
                            await self.emit(name, wire, to=sid, ignore_queue=True)
                            break
                    moved = membership(event)
                    if moved is not None and moved[0] == self.namespace and moved[1] in wanted:
                        (wanted.add if moved[3] else wanted.discard)(moved[2])
                replayed = target
                continue
            if replayed > target:
                # The client saw a seq (say, in a snapshot) this hub has not dispatched
                # yet: catch up from PostgreSQL rather than wait (never spin).
                await self.hub.catch_up()
                if self.hub.cursor < replayed:
                    raise BadRequest("last_seq is ahead of the feed", field="last_seq")
                continue
            async with self.hub.lock:
                if not self.server.manager.is_connected(sid, self.namespace):
                    # It left while its replay ran (a timeout in a reconnect storm):
                    # nothing to join, and no one to answer.
                    raise Conflict("the connection closed during the resume")
                if self.hub.cursor == replayed:
                    # No await between the check and the joins: the next event the hub
                    # dispatches reaches this client through its rooms.
                    for room in sorted(wanted):
                        self.server.manager.basic_enter_room(sid, self.namespace, room)
                    break
        session["joined"] = True
        await self.save_session(sid, session)
        return {"ok": True, "seq": replayed, **(await self.resumed(sid))}

    async def resumed(self, sid: str) -> dict[str, Any]:
        """Extra state a namespace hands over on resume."""
        return {}

    async def rooms_at(self, sid: str, seq: int) -> set[str]:
        """Rooms the feed had moved this client into by `seq` (incident rooms)."""
        return set()


class _StaffNamespace(_FeedNamespace):
    """A feed for staff: the session behind every connection is re-checked.

    Verbs re-authenticate on every call; the feed itself is guarded by `sweep`, run
    periodically on every node: a connection whose session was logged out, expired,
    or whose account was disabled is told why (`session.ended`) and disconnected.
    """

    auth: StaffAuth
    roles: tuple[Role, ...]

    def __init__(self, namespace: str, hub: FeedHub) -> None:
        super().__init__(namespace, hub)
        self._tokens: dict[str, str] = {}

    async def admit(self, token: str) -> dict[str, Any]:
        session = await self.auth.authenticate(token)
        session.require(*self.roles)
        return {"rooms": self.staff_rooms(session), "user_id": session.user.id,
                "session_id": str(session.session_id)}  # fmt: skip

    def staff_rooms(self, session: StaffSession) -> list[str]:
        raise NotImplementedError

    def admitted(self, sid: str, token: str, session: dict[str, Any]) -> None:
        self._tokens[sid] = token
        # Logout ends the session's connections on every node through this room.
        self.server.manager.basic_enter_room(
            sid, self.namespace, session_room(session["session_id"])
        )

    async def staff(self, sid: str) -> StaffSession:
        # Re-checked on every call: a logout or a disabled account takes effect at once.
        session = await self.get_session(sid)
        return await self.auth.authenticate(session["token"])

    def on_disconnect(self, sid: str, *_: Any) -> None:
        self._tokens.pop(sid, None)

    async def sweep(self) -> int:
        """Disconnect connections whose session has ended; returns how many."""
        ended = 0
        for sid, token in list(self._tokens.items()):
            try:
                await self.auth.authenticate(token)
            except DispatchError as exc:
                ended += 1
                self._tokens.pop(sid, None)
                await self.emit("session.ended", {"reason": exc.message}, to=sid)
                await self.disconnect(sid)
        return ended


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
