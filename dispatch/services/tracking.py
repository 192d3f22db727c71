"""A citizen following their case by case number."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, field

import asyncpg

from dispatch.auth.tokens import TokenKind, TokenSigner, token_digest
from dispatch.domain.citizen_view import STATUS_TEXT, timeline_text
from dispatch.domain.errors import Conflict, DispatchError, NotFound
from dispatch.domain.events import Actor, ActorKind, EventType
from dispatch.domain.incidents import IncidentState
from dispatch.infra.clock import Clock
from dispatch.infra.publisher import Publisher
from dispatch.store import citizens as citizen_store
from dispatch.store import events as event_store
from dispatch.store import incidents as incident_store
from dispatch.store import precincts as precinct_store
from dispatch.store import workflow as workflow_store
from dispatch.wire.incident_view import incident_view
from dispatch.wire.models import CaseOut, PrecinctOut, TimelineEntryOut


@dataclass(frozen=True, slots=True)
class TrackingService:
    pool: asyncpg.Pool
    signer: TokenSigner
    clock: Clock
    # The app's publisher; the default one has no listeners.
    publisher: Publisher = field(default_factory=Publisher)

    async def _may_see(
        self, conn: asyncpg.Connection, incident: incident_store.TrackedIncident, token: str
    ) -> bool:
        now = self.clock.now()
        try:
            claims = self.signer.verify(token, TokenKind.TRACKING, now=now)
        except DispatchError:
            claims = None
        if claims is not None:
            return claims.subject == str(incident.id) and hmac.compare_digest(
                token_digest(token), incident.tracking_token_hash
            )
        try:
            owner = self.signer.verify(token, TokenKind.CITIZEN, now=now)
        except DispatchError:
            return False
        if incident.citizen_id is None or owner.subject != str(incident.citizen_id):
            return False
        # A signed-out citizen's access token no longer reads the case.
        current = await citizen_store.sign_in_generation(conn, incident.citizen_id)
        return current is not None and owner.extra.get("sg", 0) == current

    async def case(self, case_no: str, token: str | None) -> CaseOut:
        # Missing, someone else's, and non-existent all answer the same 404.
        not_found = NotFound("no such case")
        if not token or len(case_no) > 40:
            raise not_found
        async with self.pool.acquire() as conn:
            incident = await incident_store.get_by_case_no(conn, case_no)
            if incident is None or not await self._may_see(conn, incident, token):
                raise not_found
            events = await event_store.events_for_incident(conn, uuid.UUID(str(incident.id)))
            names = await precinct_store.precinct_name(conn, incident.precinct_code)
        timeline = []
        for event in events:
            text = timeline_text(event.type, event.payload)
            if text is not None:
                timeline.append(TimelineEntryOut(at=event.created_at, event=event.type, text=text))
        return CaseOut(
            case_no=incident.case_no,
            status=incident.state.value,
            status_text=STATUS_TEXT[incident.state],
            channel=incident.channel.value,
            tag=incident.tag,
            precinct=PrecinctOut(incident.precinct_code, names or "")
            if incident.precinct_code
            else None,
            received_at=incident.received_at,
            timeline=timeline,
            rating=incident.rating,
        )

    async def rate(self, case_no: str, token: str | None, rating: int, comment: str) -> None:
        """The reporter rates how their case was handled: once, after it is resolved."""
        if not token:
            raise NotFound("no such case")
        async with self.pool.acquire() as conn, conn.transaction():
            incident = await incident_store.get_by_case_no(conn, case_no)
            if incident is None or not await self._may_see(conn, incident, token):
                raise NotFound("no such case")
            if incident.state not in (IncidentState.RESOLVED, IncidentState.CLOSED):
                raise Conflict(
                    f"a case can be rated once it is resolved; this one is {incident.state.value}",
                    field="state",
                )
            rated = await workflow_store.rate_once(
                conn, incident.id, rating, comment, self.clock.now()
            )
            if rated is None:
                raise Conflict("this case was already rated", field="rating")
            # Like every incident event: the incident as it now is, in its staff's scope.
            event = await event_store.append_event(
                conn,
                EventType.INCIDENT_RATED,
                Actor(ActorKind.CITIZEN, str(incident.citizen_id)),
                {"incident": incident_view(rated), "rating": rating, "comment": comment},
                incident_id=incident.id,
                precinct_code=rated.scope_precinct,
                citizen_id=incident.citizen_id,
            )
        await self.publisher.publish([event])
