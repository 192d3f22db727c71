"""Officers: duty, positions, and who is nearest to an incident."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from dispatch.domain.errors import BadRequest, RateLimited
from dispatch.domain.events import EventType, StoredEvent
from dispatch.domain.users import Role
from dispatch.infra.clock import Clock
from dispatch.infra.precinct_registry import PrecinctRegistry
from dispatch.infra.publisher import Publisher
from dispatch.services.incidents import IncidentQueries
from dispatch.services.staff_auth import StaffSession
from dispatch.store import events as event_store
from dispatch.store import officers as officer_store
from geo.datum import Datum, to_wgs84
from geo.distance import haversine_m

# A phone may report at most once per second; faster updates are refused, not queued.
MIN_POSITION_INTERVAL = timedelta(seconds=1)
# A position older than this says little about where the officer is now (a phone
# off the network, a terminal left in the car): such officers rank after every
# officer with a fresh position, whatever the distances, and are marked stale.
STALE_POSITION = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Recommendation:
    officer_id: int
    callsign: str
    distance_m: float
    position_at: datetime | None
    stale: bool


@dataclass(frozen=True, slots=True)
class OfficerService:
    pool: asyncpg.Pool
    clock: Clock
    publisher: Publisher
    precincts: PrecinctRegistry
    incidents: IncidentQueries

    async def set_duty(self, session: StaffSession, on_duty: bool) -> str:
        session.require(Role.OFFICER)
        status = "available" if on_duty else "off_duty"
        async with self.pool.acquire() as conn, conn.transaction():
            previous = await officer_store.status_for_update(conn, session.user.id)
            if previous is None:
                raise BadRequest("this account has no officer record")
            if on_duty and previous == "busy":
                status = "busy"  # back on duty mid-assignment stays busy
            await officer_store.set_status(conn, session.user.id, status)
            event = await event_store.append_event(
                conn, EventType.OFFICER_STATUS, session.actor,
                {"officer_id": session.user.id, "status": status},
                precinct_code=min(session.user.precincts, default=None), officer_id=session.user.id,
            )  # fmt: skip
        await self.publisher.publish([event])
        return status

    async def report_position(
        self, session: StaffSession, lon: float, lat: float, accuracy_m: float, datum: Datum
    ) -> StoredEvent | None:
        session.require(Role.OFFICER)
        now = self.clock.now()
        wgs_lon, wgs_lat = to_wgs84(lon, lat, datum)
        here = self.precincts.snapshot.index.locate(wgs_lon, wgs_lat).precinct
        events: list[StoredEvent] = []
        async with self.pool.acquire() as conn, conn.transaction():
            last = await officer_store.last_position_for_update(conn, session.user.id)
            if last is None:
                raise BadRequest("this account has no officer record")
            if last.position_at is not None and now - last.position_at < MIN_POSITION_INTERVAL:
                raise RateLimited("positions at most once a second")
            await officer_store.set_position(
                conn, session.user.id, lon=wgs_lon, lat=wgs_lat, accuracy_m=accuracy_m,
                at=now, precinct=here,
            )  # fmt: skip
            home = min(session.user.precincts, default=None)
            # `position_at`, not `at`: the wire envelope's `at` is the event's commit time.
            events.append(
                await event_store.append_event(
                    conn, EventType.OFFICER_POSITION, session.actor,
                    {"officer_id": session.user.id, "lon": wgs_lon, "lat": wgs_lat,
                     "accuracy_m": accuracy_m, "precinct_code": here,
                     "position_at": now.isoformat()},
                    precinct_code=home, officer_id=session.user.id,
                )
            )  # fmt: skip
            was_inside = last.precinct in session.user.precincts
            is_inside = here in session.user.precincts
            if last.position_at is not None and was_inside != is_inside:
                events.append(
                    await event_store.append_event(
                        conn, EventType.OFFICER_GEOFENCE, session.actor,
                        {"officer_id": session.user.id,
                         "crossing": "entered" if is_inside else "left",
                         "from_precinct": last.precinct, "to_precinct": here},
                        precinct_code=home, officer_id=session.user.id,
                    )
                )  # fmt: skip
        await self.publisher.publish(events)
        return events[0]

    async def recommendations(
        self, session: StaffSession, incident_id: uuid.UUID, limit: int = 5
    ) -> list[Recommendation]:
        """The nearest available on-duty officers in the incident's scope, in metres;
        those whose last position is stale come after all the others."""
        incident = await self.incidents.get(session, incident_id)
        if incident.lon is None or incident.lat is None:
            raise BadRequest("this incident has no position to measure from")
        scope = incident.scope_precinct
        async with self.pool.acquire() as conn:
            free = await officer_store.free_officers(conn, scope)
        now = self.clock.now()
        ranked = sorted(
            (Recommendation(o.officer_id, o.callsign,
                            round(haversine_m(incident.lon, incident.lat, o.lon, o.lat), 1),
                            o.position_at,
                            o.position_at is None or now - o.position_at > STALE_POSITION)
             for o in free),
            key=lambda rec: (rec.stale, rec.distance_m, rec.officer_id),
        )  # fmt: skip
        return ranked[:limit]
