"""After an alarm or a call is sent: the positions that follow it (its trail; the first
one routes an alarm sent with no fix) and the reporter's cancel.  Both are the
reporter's own acts on their incident; anyone else's incident looks missing."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from dispatch.domain.errors import BadRequest, NotFound, RateLimited
from dispatch.domain.events import Actor, ActorKind, EventType
from dispatch.domain.incidents import (
    Action,
    CitizenId,
    Incident,
    IncidentState,
    Location,
    transition,
)
from dispatch.domain.priority import Channel
from dispatch.infra.clock import Clock
from dispatch.infra.publisher import Publisher
from dispatch.infra.queue_index import PriorityQueue, QueueEntry
from dispatch.services.intake import Position
from dispatch.store import events as event_store
from dispatch.store import incidents as incident_store
from dispatch.store import workflow as workflow_store
from dispatch.wire.incident_view import incident_view

logger = logging.getLogger(__name__)

# Trail updates: at most this many points per incident per minute.
TRAIL_POINTS_PER_MINUTE = 120


@dataclass(slots=True)
class AlarmFollowUp:
    pool: asyncpg.Pool
    queue: PriorityQueue
    publisher: Publisher
    clock: Clock
    locate: Callable[[Position | None], Location]  # IntakeService.locate: one geofence
    _trail_budget: dict[uuid.UUID, tuple[float, float]] = field(default_factory=dict)

    async def _owned_incident(
        self, conn: asyncpg.Connection, citizen_id: CitizenId, incident_id: uuid.UUID
    ) -> incident_store.TrackedIncident:
        incident = await incident_store.get_for_update(conn, incident_id)
        # Someone else's incident looks exactly like a missing one.
        if incident is None or incident.citizen_id != citizen_id:
            raise NotFound("no such alarm")
        return incident

    def _spend_trail_budget(self, incident_id: uuid.UUID, points: int) -> None:
        # A token bucket per incident, in this process (a phone sticks to one node).
        now = asyncio.get_running_loop().time()
        tokens, last = self._trail_budget.get(incident_id, (float(TRAIL_POINTS_PER_MINUTE), now))
        tokens = min(TRAIL_POINTS_PER_MINUTE, tokens + (now - last) * TRAIL_POINTS_PER_MINUTE / 60)
        if tokens < points:
            raise RateLimited("too many trail points; send at most 2 per second", field="points")
        self._trail_budget.pop(incident_id, None)
        self._trail_budget[incident_id] = (tokens - points, now)  # newest last
        if len(self._trail_budget) > 10_000:  # bound the memory: forget the stalest
            del self._trail_budget[next(iter(self._trail_budget))]

    async def add_trail(
        self,
        citizen_id: CitizenId,
        incident_id: uuid.UUID,
        points: list[tuple[Position, datetime]],
    ) -> int:
        located = [(self.locate(position), at) for position, at in points]
        async with self.pool.acquire() as conn, conn.transaction():
            incident = await self._owned_incident(conn, citizen_id, incident_id)
            # Only the owner spends an alarm's budget: a stranger cannot exhaust it.
            self._spend_trail_budget(incident_id, len(points))
            if incident.channel not in _TRAILED:
                raise BadRequest("only a silent alarm or a video call has a trail")
            if not incident.state.is_open:
                raise BadRequest(f"the alarm is {incident.state.value}; it takes no more positions")
            rows = [(loc.lon, loc.lat, loc.accuracy_m, at) for loc, at in located]
            await incident_store.add_trail(conn, incident_id, rows)  # type: ignore[arg-type]
            latest = max(located, key=lambda pair: pair[1])[0]
            before = await workflow_store.get_incident(conn, incident_id)
            assert before is not None
            routed = routes_on_first_fix(before)
            if routed:
                await incident_store.route_first_fix(conn, incident_id, latest)
            else:
                await incident_store.update_position(conn, incident_id, latest)
            moved = await workflow_store.get_incident(conn, incident_id)
            assert moved is not None
            event = await event_store.append_event(
                conn,
                EventType.INCIDENT_TRAIL,
                Actor(ActorKind.CITIZEN, str(citizen_id)),
                {"incident": incident_view(moved),
                 "points": [{"lon": loc.lon, "lat": loc.lat, "accuracy_m": loc.accuracy_m,
                             "time": at.isoformat(), "precinct_code": loc.precinct_code}
                            for loc, at in located],
                 "routed": routed},
                incident_id=incident_id,
                # The routing event goes where the alarm was seen until now (every
                # dispatcher: `precinct:_none`), so consoles that listed it learn where
                # it went; what follows goes to its precinct.
                precinct_code=before.scope_precinct if routed else moved.scope_precinct,
                citizen_id=citizen_id,
            )  # fmt: skip
        if routed and moved.precinct_code is not None:
            # Same score: the alarm keeps its place from the moment it was sent.
            self.queue.remove_soon(incident_id, None)
            self.queue.add_soon(
                [QueueEntry(incident_id, moved.precinct_code, moved.priority_score)]
            )
        await self.publisher.publish([event])
        if routed:
            logger.info(
                "alarm routed by its first fix",
                extra={"incident_id": str(incident_id), "precinct": moved.precinct_code,
                       "jurisdiction": moved.jurisdiction},
            )  # fmt: skip
        return len(points)

    async def cancel(self, citizen_id: CitizenId, incident_id: uuid.UUID, reason: str) -> str:
        """The reporter says it was a false trigger: kept, marked, and off the queue."""
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            incident = await self._owned_incident(conn, citizen_id, incident_id)
            if incident.state is IncidentState.QUEUED:
                state = transition(incident.state, Action.CANCEL)
                await incident_store.set_state(
                    conn, incident_id, state, cancelled_at=now, cancel_reason=reason
                )
            elif incident.state.is_open:
                # Someone is already on it: record the cancellation, let the dispatcher decide.
                state = incident.state
                await incident_store.mark_cancelled(conn, incident_id, reason, now)
            else:
                raise BadRequest(f"the alarm is already {incident.state.value}", field="state")
            after = await workflow_store.get_incident(conn, incident_id)
            assert after is not None
            event = await event_store.append_event(
                conn,
                EventType.INCIDENT_CANCELLED,
                Actor(ActorKind.CITIZEN, str(citizen_id)),
                {"incident": incident_view(after), "reason": reason},
                incident_id=incident_id,
                precinct_code=after.scope_precinct,
                citizen_id=citizen_id,
            )
        if state is IncidentState.CANCELLED:
            self.queue.remove_soon(incident_id, incident.precinct_code)
        await self.publisher.publish([event])
        return state.value


# The channels sent from a phone that may not have a fix yet: positions follow.
_TRAILED = frozenset({Channel.ALARM, Channel.VIDEO})


def routes_on_first_fix(incident: Incident) -> bool:
    """An alarm or a call sent with no fix waits in the no-precinct queue, which every dispatcher
    sees; its first fix routes it to its precinct while it is still queued.  Once a
    dispatcher holds it, a fix only moves it on the map: routing it then would take it
    out of that dispatcher's precincts (they can reroute it themselves)."""
    return incident.jurisdiction == "unknown" and incident.state is IncidentState.QUEUED
