"""Video calls: the citizen's call is an incident (channel `video`) whose media this
node terminates; staff pick it up; every segment's recording becomes evidence.

The media itself is behind `media.interface.CallMedia` (ids and SDP only); this service
owns what the application knows: who may do what, the rows, the feed events, and the
evidence.  It is also the media's `CallObserver`: ends and leaves reported by the media
side are written here (one transaction each, with its event, published after commit).

A call lives on the node that answered it: its session row names the node, and a
request for it that reaches another node raises `CallElsewhere` (the HTTP layer
forwards it there).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from dispatch.domain.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceBusy
from dispatch.domain.events import Actor, ActorKind, EventType, StoredEvent
from dispatch.domain.incidents import CitizenId, Incident
from dispatch.domain.priority import Channel
from dispatch.domain.scope import scope_of
from dispatch.domain.users import Role
from dispatch.infra.clock import Clock
from dispatch.infra.publisher import Publisher
from dispatch.services.intake import IntakeResult, IntakeService, Submission
from dispatch.services.staff_auth import StaffSession
from dispatch.store import calls as call_store
from dispatch.store import events as event_store
from dispatch.store import workflow as workflow_store
from dispatch.store.calls import CallSession, CallViewer, StoredRecording
from dispatch.wire.incident_view import incident_view
from media.interface import (
    AtCapacity,
    BadOffer,
    CallMedia,
    EndReason,
    LeaveReason,
    MediaStats,
    NoLiveCall,
    SessionEnded,
    ViewerLeft,
)
from media.recordings import MEDIA_TYPE, Recording, read_back

logger = logging.getLogger(__name__)

BUSY_HINT = (
    "all video lines of this server are busy: send a silent alarm (POST /api/alarms) or a "
    "text report (POST /api/reports) now, or try the call again shortly"
)


class CallElsewhere(Exception):
    """The call's media is on another node, reachable at `node_url`."""

    def __init__(self, node_url: str) -> None:
        super().__init__(node_url)
        self.node_url = node_url


@dataclass(frozen=True, slots=True)
class Started:
    session: CallSession
    answer_sdp: str


@dataclass(frozen=True, slots=True)
class Watching:
    viewer: CallViewer
    answer_sdp: str


def recording_url(incident_id: uuid.UUID, recording_id: uuid.UUID) -> str:
    return f"/api/incidents/{incident_id}/recordings/{recording_id}"


def _recording_ref(
    incident_id: uuid.UUID, attachment_id: uuid.UUID, rec: Recording
) -> dict[str, Any]:
    return {
        "id": str(attachment_id), "url": recording_url(incident_id, attachment_id),
        "media_type": MEDIA_TYPE, "sha256": rec.sha256, "bytes": rec.size,
        "duration_s": rec.duration_s, "codecs": list(rec.codecs),
    }  # fmt: skip


@dataclass(slots=True)
class CallService:
    pool: asyncpg.Pool
    publisher: Publisher
    clock: Clock
    intake: IntakeService
    media: CallMedia
    evidence_root: Path
    node: str
    node_url: str
    # Who is ending a call right now (session id -> the staff actor), for the end's event.
    _ended_by: dict[str, Actor] = field(default_factory=dict, init=False)

    # --- the citizen -----------------------------------------------------------------

    def _check_capacity(self, incident_id: uuid.UUID | None = None) -> None:
        try:
            self.media.check_capacity(None if incident_id is None else str(incident_id))
        except AtCapacity as exc:
            raise ServiceBusy(BUSY_HINT, retry_after_s=exc.retry_after_s) from exc

    async def media_stats(self) -> MediaStats:
        """Where this node's live calls' media went (read at each /metrics scrape)."""
        return await self.media.stats()

    async def start(self, citizen_id: CitizenId, submission: Submission) -> IntakeResult:
        """A new video call: an incident like any report, queued at once, before any
        media (a call whose media never connects still stands, for a call back).
        Refused, with nothing written, when this node carries its limit of calls."""
        assert submission.channel is Channel.VIDEO
        self._check_capacity()
        return await self.intake.submit(citizen_id, submission)

    async def _citizen_call(self, citizen_id: CitizenId, incident_id: uuid.UUID) -> Incident:
        async with self.pool.acquire() as conn:
            incident = await workflow_store.get_incident(conn, incident_id)
        if (
            incident is None
            or incident.citizen_id != citizen_id
            or incident.channel != Channel.VIDEO.value
        ):
            raise NotFound("no such video call", field="incident_id")
        return incident

    async def offer(self, citizen_id: CitizenId, incident_id: uuid.UUID, sdp: str) -> Started:
        """The phone's offer: answered at once, recording from the first packet.  A new
        offer on the same call (the phone lost its network) is a new segment."""
        incident = await self._citizen_call(citizen_id, incident_id)
        if not incident.state.is_open:
            raise Conflict(
                f"the incident is {incident.state.value}; start a new call with POST /api/calls",
                field="incident_id",
            )
        async with self.pool.acquire() as conn:
            last_end = await call_store.last_end_reason(conn, incident_id)
        if last_end == EndReason.ENDED.value:
            # The dispatcher ended it: a phone that saw its connection go must not
            # take that for a lost network and call back into the same incident.
            raise Conflict(
                "the dispatcher ended this call; start a new call with POST /api/calls",
                field="incident_id",
            )
        session_id = uuid.uuid4()
        try:
            answer = await self.media.publish(str(incident_id), str(session_id), sdp)
        except BadOffer as exc:
            raise BadRequest(exc.message, field=exc.field) from exc
        except AtCapacity as exc:
            raise ServiceBusy(BUSY_HINT, retry_after_s=exc.retry_after_s) from exc
        storage_key = self.media.recording_path(str(incident_id), str(session_id))
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                current = await workflow_store.get_incident(conn, incident_id, for_update=True)
                assert current is not None
                session = await call_store.start_session(
                    conn, session_id=session_id, incident_id=incident_id, node=self.node,
                    node_url=self.node_url, storage_key=storage_key, now=self.clock.now(),
                )  # fmt: skip
                event = await event_store.append_event(
                    conn, EventType.CALL_STARTED, Actor(ActorKind.CITIZEN, str(citizen_id)),
                    {"incident": incident_view(current), "session_id": str(session_id),
                     "segment": session.segment, "node": self.node},
                    incident_id=incident_id, precinct_code=current.scope_precinct,
                    citizen_id=citizen_id,
                )  # fmt: skip
        except BaseException:
            # Not recorded as started: the media goes too (its recording is reported to
            # `session_ended`, which finds no row and keeps nothing).
            await self.media.hang_up(str(incident_id), str(session_id), EndReason.FAILED)
            raise
        await self.publisher.publish([event])
        return Started(session, answer.sdp)

    async def hang_up(
        self, citizen_id: CitizenId, incident_id: uuid.UUID, session_id: uuid.UUID
    ) -> None:
        await self._citizen_call(citizen_id, incident_id)
        async with self.pool.acquire() as conn:
            session = await call_store.get_session(conn, session_id)
        if session is None or session.incident_id != incident_id:
            raise NotFound("no such call session", field="session_id")
        if not session.live:
            return  # already over: hanging up twice is fine
        if session.node != self.node:
            raise CallElsewhere(session.node_url)
        await self.media.hang_up(str(incident_id), str(session_id), EndReason.HANG_UP)

    # --- staff -----------------------------------------------------------------------

    async def _staff_incident(self, staff: StaffSession, incident_id: uuid.UUID) -> Incident:
        async with self.pool.acquire() as conn:
            incident = await workflow_store.get_incident(conn, incident_id)
        if incident is None or not scope_of(staff.user).sees(incident):
            raise NotFound("no such incident in your precincts", field="incident_id")
        return incident

    async def watch(self, staff: StaffSession, incident_id: uuid.UUID, sdp: str) -> Watching:
        """Pick up (the dispatcher who claimed the incident: sees, hears and talks) or
        listen in (a commander: sees and hears, silently)."""
        staff.require(Role.DISPATCHER, Role.COMMANDER)
        incident = await self._staff_incident(staff, incident_id)
        talk = staff.user.role is Role.DISPATCHER
        if talk and incident.claimed_by != staff.user.id:
            raise Forbidden("claim the incident before picking up its call", field="incident_id")
        async with self.pool.acquire() as conn:
            session = await call_store.live_session(conn, incident_id)
        if session is None:
            raise Conflict("there is no live call on this incident", field="incident_id")
        if session.node != self.node:
            raise CallElsewhere(session.node_url)
        viewer_id = uuid.uuid4()
        try:
            answer = await self.media.watch(str(incident_id), str(viewer_id), sdp, talk=talk)
        except NoLiveCall as exc:
            raise Conflict("there is no live call on this incident", field="incident_id") from exc
        except BadOffer as exc:
            raise BadRequest(exc.message, field=exc.field) from exc
        except AtCapacity as exc:
            raise ServiceBusy(exc.message, retry_after_s=exc.retry_after_s) from exc
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                current = await workflow_store.get_incident(conn, incident_id, for_update=True)
                assert current is not None
                viewer = await call_store.add_viewer(
                    conn, viewer_id=viewer_id, session=session, user_id=staff.user.id,
                    talk=talk, node=self.node, node_url=self.node_url, now=self.clock.now(),
                )  # fmt: skip
                event = await event_store.append_event(
                    conn, EventType.CALL_ANSWERED, staff.actor,
                    {"incident": incident_view(current), "session_id": str(session.id),
                     "viewer_id": str(viewer_id), "user_id": staff.user.id, "talk": talk},
                    incident_id=incident_id, precinct_code=current.scope_precinct,
                    citizen_id=current.citizen_id,
                )  # fmt: skip
        except BaseException:
            await self.media.leave(str(incident_id), str(viewer_id), LeaveReason.FAILED)
            raise
        await self.publisher.publish([event])
        return Watching(viewer, answer.sdp)

    async def end(self, staff: StaffSession, incident_id: uuid.UUID) -> None:
        """The dispatcher who claimed the incident ends its call: the phone's connection
        closes (its recording kept as evidence), every viewer leaves, and the phone may
        not reconnect into it.  The incident stays open.  Ending twice is fine."""
        staff.require(Role.DISPATCHER)
        incident = await self._staff_incident(staff, incident_id)
        if incident.claimed_by != staff.user.id:
            raise Forbidden("claim the incident before ending its call", field="incident_id")
        async with self.pool.acquire() as conn:
            session = await call_store.live_session(conn, incident_id)
        if session is None:
            return
        if session.node != self.node:
            raise CallElsewhere(session.node_url)
        self._ended_by[str(session.id)] = staff.actor
        try:
            found = await self.media.hang_up(str(incident_id), str(session.id), EndReason.ENDED)
        finally:
            self._ended_by.pop(str(session.id), None)
        if not found:
            # The media forgot it (a restart): record the end all the same.
            with contextlib.suppress(_AlreadyReported):
                await self._record_end(incident_id, session.id, EndReason.ENDED.value, None,
                                       staff.actor)  # fmt: skip

    async def leave(
        self, staff: StaffSession, incident_id: uuid.UUID, viewer_id: uuid.UUID
    ) -> None:
        # As for picking up: officers and administrators never watch a call.
        staff.require(Role.DISPATCHER, Role.COMMANDER)
        await self._staff_incident(staff, incident_id)
        async with self.pool.acquire() as conn:
            viewer = await call_store.get_viewer(conn, viewer_id)
        if viewer is None or viewer.incident_id != incident_id or viewer.user_id != staff.user.id:
            raise NotFound("no such viewer of this call", field="viewer_id")
        if viewer.left:
            return
        if viewer.node != self.node:
            raise CallElsewhere(viewer.node_url)
        if not await self.media.leave(str(incident_id), str(viewer_id), LeaveReason.LEFT):
            # The media forgot it (a restart): record the leave all the same.
            await self.viewer_left(ViewerLeft(str(incident_id), str(viewer_id), LeaveReason.LEFT))

    async def recording(
        self, staff: StaffSession, incident_id: uuid.UUID, recording_id: uuid.UUID,
        byte_range: str | None,
    ) -> tuple[StoredRecording, Path]:  # fmt: skip
        """A recording for staff in scope; every fetch is audited."""
        staff.require(Role.DISPATCHER, Role.COMMANDER)
        await self._staff_incident(staff, incident_id)
        async with self.pool.acquire() as conn:
            found = await call_store.get_recording(conn, incident_id, recording_id)
            if found is None:
                raise NotFound("no such recording of this incident", field="recording_id")
            await call_store.log_recording_read(conn, found, staff.user.id, byte_range)
        return found, self.evidence_root / found.storage_key

    async def recordings(self, incident_id: uuid.UUID) -> list[StoredRecording]:
        async with self.pool.acquire() as conn:
            return await call_store.recordings_of(conn, incident_id)

    # --- what the media side reports (CallObserver) -----------------------------------

    async def session_ended(self, ended: SessionEnded) -> None:
        actor = (
            Actor(ActorKind.CITIZEN, "") if ended.reason is EndReason.HANG_UP
            else self._ended_by.get(ended.session_id) or Actor.system("media")
        )  # fmt: skip
        try:
            await self._record_end(
                uuid.UUID(ended.call_id), uuid.UUID(ended.session_id), ended.reason.value,
                ended.recording, actor,
            )  # fmt: skip
        except _AlreadyReported:
            pass
        except (asyncpg.PostgresError, OSError):
            # Left unreported: this node's next start records it from the file.
            logger.exception("call end not recorded", extra={"session_id": ended.session_id})

    async def _record_end(
        self, incident_id: uuid.UUID, session_id: uuid.UUID, reason: str,
        recording: Recording | None, actor: Actor,
    ) -> None:  # fmt: skip
        now = self.clock.now()
        events: list[StoredEvent] = []
        async with self.pool.acquire() as conn, conn.transaction():
            incident = await workflow_store.get_incident(conn, incident_id, for_update=True)
            if incident is None:
                return
            if actor.kind is ActorKind.CITIZEN:
                actor = Actor(ActorKind.CITIZEN, str(incident.citizen_id))
            session = await call_store.get_session(conn, session_id)
            if session is None:
                return  # never recorded as started (its start failed): nothing to keep
            attachment_id = None
            if recording is not None:
                attachment_id = uuid.uuid4()
                await call_store.insert_recording(
                    conn, attachment_id=attachment_id, incident_id=incident_id,
                    media_type=MEDIA_TYPE, sha256=recording.sha256, size=recording.size,
                    width=recording.width, height=recording.height,
                    storage_key=session.storage_key, duration_s=recording.duration_s,
                    codecs=recording.codecs, now=now,
                )  # fmt: skip
            ended = await call_store.end_session(
                conn, session_id, reason=reason, now=now, attachment_id=attachment_id
            )
            if ended is None:
                raise _AlreadyReported
            events.append(
                await event_store.append_event(
                    conn,
                    EventType.CALL_ENDED,
                    actor,
                    {
                        "incident": incident_view(incident),
                        "session_id": str(session_id),
                        "segment": session.segment,
                        "reason": reason,
                        "recording": None
                        if recording is None or attachment_id is None
                        else _recording_ref(incident_id, attachment_id, recording),
                    },
                    incident_id=incident_id,
                    precinct_code=incident.scope_precinct,
                    citizen_id=incident.citizen_id,
                )
            )
        await self.publisher.publish(events)

    async def viewer_left(self, left: ViewerLeft) -> None:
        try:
            await self._record_leave(uuid.UUID(left.call_id), uuid.UUID(left.viewer_id),
                                     left.reason.value)  # fmt: skip
        except (asyncpg.PostgresError, OSError):
            logger.exception("viewer leave not recorded", extra={"viewer_id": left.viewer_id})

    async def _record_leave(
        self, incident_id: uuid.UUID, viewer_id: uuid.UUID, reason: str
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            incident = await workflow_store.get_incident(conn, incident_id, for_update=True)
            viewer = await call_store.end_viewer(
                conn, viewer_id, reason=reason, now=self.clock.now()
            )
            if incident is None or viewer is None:
                return
            actor = Actor.staff(viewer.user_id) if reason == "left" else Actor.system("media")
            event = await event_store.append_event(
                conn, EventType.CALL_LEFT, actor,
                {"incident": incident_view(incident), "viewer_id": str(viewer_id),
                 "user_id": viewer.user_id, "talk": viewer.talk, "reason": reason},
                incident_id=incident_id, precinct_code=incident.scope_precinct,
                citizen_id=incident.citizen_id,
            )  # fmt: skip
        await self.publisher.publish([event])

    async def recover(self) -> int:
        """At start: sessions and viewers this node held when it last stopped without
        reporting their end (killed): each recording that made it to disk becomes
        evidence, read back from the file.  Returns how many sessions were closed."""
        async with self.pool.acquire() as conn:
            sessions = await call_store.unrecorded_sessions_on(conn, self.node)
            viewers = await call_store.open_viewers_on(conn, self.node)
        for session in sessions:
            recording = await read_back(self.evidence_root / session.storage_key)
            with contextlib.suppress(_AlreadyReported):
                await self._record_end(session.incident_id, session.id, "server_restart",
                                       recording, Actor.system("recovery"))  # fmt: skip
        for viewer in viewers:
            await self._record_leave(viewer.incident_id, viewer.id, "shutdown")
        return len(sessions)


class _AlreadyReported(Exception):
    pass
