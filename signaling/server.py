"""The Socket.IO server: created with the app, started once the services exist."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import socketio
from aiohttp import web

from dispatch.domain.events import EventType, StoredEvent
from dispatch.infra.connections import Infrastructure
from dispatch.infra.publisher import Publisher
from dispatch.infra.redis_writes import RedisWrites
from dispatch.services.assignments import AssignmentService
from dispatch.services.citizens import CitizenServices
from dispatch.services.messages import MessageService
from dispatch.services.officers import OfficerService
from dispatch.services.staff_auth import StaffAuth
from dispatch.services.workflow import Workflow
from signaling.fanout import FeedManager
from signaling.hub import FeedHub
from signaling.namespaces import (
    CitizenNamespace,
    ConsoleNamespace,
    OfficerNamespace,
    session_room,
    sign_in_room,
)

logger = logging.getLogger(__name__)


def create_socketio(app: web.Application) -> socketio.AsyncServer:
    """Attach a Socket.IO server to `app`; its Redis manager comes in `start`."""
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        # Dead consoles are noticed within ~20 s, not the default ~45 s.
        ping_interval=10,
        ping_timeout=10,
        max_http_buffer_size=256 * 1024,
        # Only the namespaces with handlers: the default "/" (python-socketio accepts it
        # unless told otherwise) refuses connections.
        namespaces=["/console", "/officer", "/citizen"],
        logger=False,
        engineio_logger=False,
    )
    sio.attach(app)
    return sio


# How often each node re-checks the staff sessions behind its open connections.
SESSION_SWEEP_S = 15.0


@dataclass
class Signaling:
    sio: socketio.AsyncServer
    hub: FeedHub
    staff_namespaces: tuple[ConsoleNamespace, OfficerNamespace]
    sweeper: asyncio.Task[None] | None = None

    async def sweep_sessions(self) -> int:
        """Disconnect staff whose session ended (logout, expiry, disabled account)."""
        return sum([await namespace.sweep() for namespace in self.staff_namespaces])

    async def _sweep_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sweep_sessions()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                logger.warning("session sweep failed; retrying", exc_info=True)

    def start_sweeping(self, interval_s: float = SESSION_SWEEP_S) -> None:
        self.sweeper = asyncio.create_task(self._sweep_forever(interval_s), name="session-sweep")

    async def stop(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sweeper
        await self.hub.stop()


async def start_signaling(
    sio: socketio.AsyncServer,
    infra: Infrastructure,
    publisher: Publisher,
    *,
    staff_auth: StaffAuth,
    citizens: CitizenServices,
    workflow: Workflow,
    officers: OfficerService,
    assignments: AssignmentService,
    messages: MessageService,
    writes: RedisWrites | None = None,
) -> Signaling:
    assert infra.redis is not None
    assert infra.redis_url is not None
    # Fan-out across nodes goes through Redis.  The manager is installed here because
    # the Redis URL (embedded or configured) is only known once the infrastructure is up,
    # and before any client can connect.
    manager = FeedManager(infra.redis_url, channel="m110:socketio")
    sio.manager = manager
    manager.set_server(sio)

    async def emit(name: str, data: dict[str, Any], rooms: Sequence[str], namespace: str) -> None:
        # Every node's hub delivers to its own clients: not through the manager's Redis.
        # Feed events are JSON (they come from PostgreSQL's jsonb): no binary attachments.
        await manager.send_to_rooms(namespace, rooms, name, data, binary=False)

    def move(namespace: str, member_room: str, room: str, join: bool) -> None:
        # Only clients that have resumed are in their own room, so only they move.
        for sid, _ in manager.get_participants(namespace, member_room):
            if join:
                manager.basic_enter_room(sid, namespace, room)
            else:
                manager.basic_leave_room(sid, namespace, room)

    hub = FeedHub(pool=infra.pool, redis=infra.redis, emit=emit, move=move, writes=writes)
    await hub.start()
    publisher.subscribe(hub.publish)
    console = ConsoleNamespace(hub, staff_auth, workflow, messages)
    officer = OfficerNamespace(hub, staff_auth, officers, assignments, messages)
    sio.register_namespace(console)
    sio.register_namespace(officer)
    citizen = CitizenNamespace(hub, citizens, messages)
    sio.register_namespace(citizen)

    async def end_sessions(events: Sequence[StoredEvent]) -> None:
        # A logout ends that session's feeds on every node at once, not at the next sweep.
        for event in events:
            if event.type == EventType.STAFF_LOGOUT:
                room = session_room(event.payload["session_id"])
                for namespace in (console.namespace, officer.namespace):
                    await manager.end_room(
                        namespace, room, "session.ended", {"reason": "you logged out; log in again"}
                    )
            elif event.type == EventType.CITIZEN_SIGNED_OUT:
                await manager.end_room(
                    citizen.namespace, sign_in_room(event.payload["citizen_id"]),
                    "session.ended", {"reason": "signed out; register again"},
                )  # fmt: skip

    publisher.subscribe(end_sessions)
    logger.info("signaling started", extra={"seq": hub.cursor})
    signaling = Signaling(sio, hub, (console, officer))
    signaling.start_sweeping()
    return signaling
