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
            previous = await conn.fetchval(
                "SELECT status FROM officers WHERE user_id = $1 FOR UPDATE", session.user.id
            )
            if previous is None:
                raise BadRequest("this account has no officer record")
            if on_duty and previous == "busy":
                status = "busy"  # back on duty mid-assignment stays busy
            await conn.execute(
                "UPDATE officers SET status = $2, updated_at = now() WHERE user_id = $1",
                session.user.id,
                status,
            )
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
            row = await conn.fetchrow(
                """SELECT position_at, position_precinct, status FROM officers
                   WHERE user_id = $1 FOR UPDATE""",
                session.user.id,
            )
            if row is None:
                raise BadRequest("this account has no officer record")
            if row["position_at"] is not None and now - row["position_at"] < MIN_POSITION_INTERVAL:
                raise RateLimited("positions at most once a second")
            await conn.execute(
                """UPDATE officers SET lon = $2, lat = $3, accuracy_m = $4, position_at = $5,
                       position_precinct = $6, updated_at = $5 WHERE user_id = $1""",
                session.user.id, wgs_lon, wgs_lat, accuracy_m, now, here,
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
            was_inside = row["position_precinct"] in session.user.precincts
            is_inside = here in session.user.precincts
            if row["position_at"] is not None and was_inside != is_inside:
                events.append(
                    await event_store.append_event(
                        conn, EventType.OFFICER_GEOFENCE, session.actor,
                        {"officer_id": session.user.id,
                         "crossing": "entered" if is_inside else "left",
                         "from_precinct": row["position_precinct"], "to_precinct": here},
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
            rows = await conn.fetch(
                """SELECT o.user_id, o.callsign, o.lon, o.lat, o.position_at FROM officers o
                   JOIN users u ON u.id = o.user_id
                   WHERE u.active AND o.status = 'available' AND o.lon IS NOT NULL
                     AND ($1::text IS NULL OR EXISTS (SELECT 1 FROM user_precincts p
                          WHERE p.user_id = o.user_id AND p.precinct_code = $1))""",
                scope,
            )
        now = self.clock.now()
        ranked = sorted(
            (Recommendation(r["user_id"], r["callsign"],
                            round(haversine_m(incident.lon, incident.lat, r["lon"], r["lat"]), 1),
                            r["position_at"],
                            r["position_at"] is None or now - r["position_at"] > STALE_POSITION)
             for r in rows),
            key=lambda rec: (rec.stale, rec.distance_m, rec.officer_id),
        )  # fmt: skip
        return ranked[:limit]
