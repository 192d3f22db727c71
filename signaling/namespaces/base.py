"""What the three namespaces share: connect with a token, resume by `seq`, acked calls
with the HTTP error codes, and the staff namespaces' session rooms."""

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
from dispatch.domain.users import Role
from dispatch.infra.connections import DATABASE_UNAVAILABLE
from dispatch.services.feed import latest_officer_events
from dispatch.services.staff_auth import StaffAuth, StaffSession
from dispatch.wire.validation import NUL_MESSAGE, field_of, nul_path
from signaling.audiences import (
    MEMBERSHIP_TYPES,
    membership,
    membership_joins,
)
from signaling.fanout import FeedManager
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
        manager: FeedManager = self.server.manager
        while True:
            target = self.hub.cursor
            if replayed < target:
                for dispatched in await self.hub.replay(replayed, target):
                    for index, (namespace, room, name, wire) in enumerate(dispatched.deliveries):
                        if namespace == self.namespace and room in wanted:
                            # Encoded once for all the clients a storm replays it to.
                            encoded = dispatched.encoded.get(index)
                            if encoded is None:
                                encoded = manager.encode(namespace, name, wire, binary=False)
                                dispatched.encoded[index] = encoded
                            await manager.send_encoded(namespace, sid, encoded)
                            break
                    moved = membership(dispatched.event)
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
        # One check per session, however many consoles it has open (a desk's screens,
        # a storm of reconnections).
        by_token: dict[str, list[str]] = {}
        for sid, token in list(self._tokens.items()):
            by_token.setdefault(token, []).append(sid)
        for token, sids in by_token.items():
            try:
                await self.auth.authenticate(token)
            except DispatchError as exc:
                for sid in sids:
                    if self._tokens.pop(sid, None) is None:
                        continue  # gone meanwhile
                    ended += 1
                    await self.emit("session.ended", {"reason": exc.message}, to=sid)
                    await self.disconnect(sid)
        return ended
