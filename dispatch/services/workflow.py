"""The dispatcher's workflow as verb functions, shared by HTTP and Socket.IO.

Each verb: one transaction that locks the incident, checks scope and the transition
table, writes the change and its event; then, after commit, updates the queue index
and publishes (without waiting for Redis, see `_after_commit`).  Every event payload
carries the incident as it now is, so a console applying events in `seq` order ends
where a fresh snapshot would.  (`next` is one statement: claim and event together.)
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import asyncpg

from dispatch.domain.errors import BadRequest, Conflict, Forbidden, InvalidTransition, NotFound
from dispatch.domain.events import Actor, EventType, StoredEvent
from dispatch.domain.incidents import (
    Action,
    Disposition,
    Incident,
    IncidentState,
    TransferTarget,
    transition,
)
from dispatch.domain.scope import scope_of
from dispatch.domain.users import Role
from dispatch.infra.clock import Clock
from dispatch.infra.publisher import Publisher
from dispatch.infra.queue_index import PriorityQueue, QueueEntry
from dispatch.services import officer_status
from dispatch.services.staff_auth import StaffSession
from dispatch.store import assignments as assignment_store
from dispatch.store import citizens as citizen_store
from dispatch.store import events as event_store
from dispatch.store import officers as officer_store
from dispatch.store import precincts as precinct_store
from dispatch.store import workflow as store
from dispatch.wire.incident_view import incident_view

logger = logging.getLogger(__name__)

_WORKERS = (Role.DISPATCHER, Role.COMMANDER)


@dataclass(frozen=True, slots=True)
class Workflow:
    pool: asyncpg.Pool
    queue: PriorityQueue
    publisher: Publisher
    clock: Clock
    # How long an assignment offer waits for the officer's answer before it is made
    # again: the first offer as every re-offer (MICRO110_ASSIGNMENT_REOFFER_S).
    offer_for: timedelta = timedelta(seconds=30)

    # --- checks -------------------------------------------------------------------

    async def _load(
        self, conn: asyncpg.Connection, session: StaffSession, incident_id: uuid.UUID
    ) -> Incident:
        incident = await store.get_incident(conn, incident_id, for_update=True)
        # Out of scope looks like missing: a dispatcher learns nothing of other precincts.
        if incident is None or not scope_of(session.user).sees(incident):
            raise NotFound("no such incident in your precincts", field="incident_id")
        return incident

    @staticmethod
    def _require_holder(session: StaffSession, incident: Incident) -> None:
        """Only the dispatcher who claimed it (or a commander) may work a claimed incident."""
        if session.user.role is Role.COMMANDER:
            return
        if incident.claimed_by != session.user.id:
            raise Conflict(
                f"incident {incident.case_no} is {incident.state.value} by another dispatcher"
                if incident.claimed_by
                else f"claim incident {incident.case_no} before working on it",
                field="incident_id",
            )

    # --- the common path ------------------------------------------------------------

    async def _event(
        self,
        conn: asyncpg.Connection,
        type_: EventType,
        actor: Actor,
        incident: Incident,
        **extra: Any,
    ) -> StoredEvent:
        return await event_store.append_event(
            conn,
            type_,
            actor,
            {"incident": incident_view(incident), **extra},
            incident_id=incident.id,
            precinct_code=incident.scope_precinct,
            citizen_id=incident.citizen_id,
        )

    async def _after_commit(
        self, before: Incident | None, after: Incident, events: Sequence[StoredEvent]
    ) -> None:
        """Tell the queue index and the feed.  The answer waits for neither Redis round
        trip (they go out, in order, with this node's other Redis writes): Redis is an
        index and a bus, and a slow or lost Redis must not hold up a dispatcher whose
        change has committed.  This node's consoles have the events before it returns."""
        queued_before = before is not None and before.state is IncidentState.QUEUED
        if after.state is IncidentState.QUEUED:
            if before is not None and before.precinct_code != after.precinct_code:
                self.queue.remove_soon(after.id, before.precinct_code)
            self.queue.add_soon([QueueEntry(after.id, after.precinct_code, after.priority_score)])
        elif queued_before or before is None:
            self.queue.remove_soon(after.id, after.precinct_code)
        await self.publisher.publish(events)

    # --- verbs ----------------------------------------------------------------------

    async def next(self, session: StaffSession) -> Incident | None:
        """Claim the most urgent queued incident in my scope (None when the queue is empty);
        a commander gets incidents escalated to a commander first."""
        session.require(*_WORKERS)
        async with self.pool.acquire() as conn:
            claimed = await store.claim_next(
                conn, session.actor, session.user.id, scope_of(session.user), self.clock.now(),
                escalated=session.user.role is Role.COMMANDER,
            )  # fmt: skip
        if claimed is None:
            return None
        incident, event = claimed
        self.queue.remove_soon(incident.id, incident.precinct_code)  # see _after_commit
        await self.publisher.publish([event])
        return incident

    async def claim(self, session: StaffSession, incident_id: uuid.UUID) -> Incident:
        session.require(*_WORKERS)
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            current = await store.get_incident(conn, incident_id)
            if current is None or not scope_of(session.user).sees(current):
                raise NotFound("no such incident in your precincts", field="incident_id")
            if current.state is IncidentState.ESCALATED and session.user.role is not Role.COMMANDER:
                raise Forbidden("an escalated incident is for a commander to claim")
            incident = await store.claim(conn, incident_id, session.user.id, now)
            if incident is None:
                # Lost the race, or not claimable: name both states.
                latest = await store.get_incident(conn, incident_id)
                assert latest is not None
                transition(latest.state, Action.CLAIM)  # raises InvalidTransition
                raise InvalidTransition(f"incident {latest.case_no} is {latest.state.value}")
            event = await self._event(conn, EventType.INCIDENT_CLAIMED, session.actor, incident)
        await self._after_commit(current, incident, [event])
        return incident

    async def _simple(
        self,
        session: StaffSession,
        incident_id: uuid.UUID,
        action: Action,
        event_type: EventType,
        *,
        holder_only: bool = True,
        extra: dict[str, Any] | None = None,
        **columns: Any,
    ) -> Incident:
        """A state change that writes some columns and one event."""
        session.require(*_WORKERS)
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            before = await self._load(conn, session, incident_id)
            state = transition(before.state, action)
            if holder_only and before.state is not IncidentState.QUEUED:
                self._require_holder(session, before)
            after = await store.update_incident(conn, incident_id, now, state=state, **columns)
            events = [await self._event(conn, event_type, session.actor, after, **(extra or {}))]
            events += await self._side_effects(conn, session, before, after, now)
        await self._after_commit(before, after, events)
        return after

    async def _side_effects(
        self,
        conn: asyncpg.Connection,
        session: StaffSession,
        before: Incident,
        after: Incident,
        now: Any,
    ) -> list[StoredEvent]:
        """Assignments end with their incident; a reporter's record follows the outcome."""
        events: list[StoredEvent] = []
        tally: tuple[uuid.UUID, Literal["false_alarm", "valid_report"]] | None = None
        if after.citizen_id is not None and before.state is not after.state:
            if after.state is IncidentState.INVALID:
                tally = (after.citizen_id, "false_alarm")
            elif after.state is IncidentState.RESOLVED:
                tally = (after.citizen_id, "valid_report")
        if after.state in (IncidentState.RESOLVED, IncidentState.INVALID, IncidentState.TRANSFERRED,
                           IncidentState.MERGED):  # fmt: skip
            ending = "cleared" if after.state is IncidentState.RESOLVED else "cancelled"
            # The reporter's record is counted in the same statement (one round trip).
            ended = await assignment_store.end_assignments(conn, after.id, ending, now, tally=tally)
            tally = None
            freed = sorted({a.officer_id for a in ended if a.was_working})
            for assignment in ended:
                # The same shape as every other assignment event (AssignmentService._event).
                events.append(
                    await event_store.append_event(
                        conn, EventType.of_assignment(ending), session.actor,
                        {"incident": incident_view(after), "assignment_id": str(assignment.id),
                         "officer_id": assignment.officer_id, "callsign": assignment.callsign},
                        incident_id=after.id, precinct_code=after.scope_precinct,
                        citizen_id=after.citizen_id, officer_id=assignment.officer_id,
                    )
                )  # fmt: skip
            if freed:
                events += await officer_status.set_officers_status(
                    conn, session.actor, freed, "available"
                )
        if tally is not None:  # (INVALID and RESOLVED end assignments: counted above)
            if tally[1] == "false_alarm":
                await citizen_store.add_false_alarm(conn, tally[0])
            else:
                await citizen_store.add_valid_report(conn, tally[0])
        return events

    async def release(self, session: StaffSession, incident_id: uuid.UUID) -> Incident:
        return await self._simple(
            session,
            incident_id,
            Action.RELEASE,
            EventType.INCIDENT_RELEASED,
            claimed_by=None,
            claimed_at=None,
        )

    async def escalate(self, session: StaffSession, incident_id: uuid.UUID, note: str) -> Incident:
        return await self._simple(
            session, incident_id, Action.ESCALATE, EventType.INCIDENT_ESCALATED,
            extra={"note": note}, escalated_at=self.clock.now(), claimed_by=None, claimed_at=None,
        )  # fmt: skip

    async def resolve(
        self, session: StaffSession, incident_id: uuid.UUID, disposition: Disposition, note: str
    ) -> Incident:
        return await self._simple(
            session, incident_id, Action.RESOLVE, EventType.INCIDENT_RESOLVED,
            extra={"note": note}, disposition=disposition.value, resolved_at=self.clock.now(),
        )  # fmt: skip

    async def close(self, session: StaffSession, incident_id: uuid.UUID) -> Incident:
        return await self._simple(
            session, incident_id, Action.CLOSE, EventType.INCIDENT_CLOSED, holder_only=False,
            closed_at=self.clock.now(),
        )  # fmt: skip

    async def mark_invalid(
        self, session: StaffSession, incident_id: uuid.UUID, reason: str
    ) -> Incident:
        return await self._simple(
            session, incident_id, Action.MARK_INVALID, EventType.INCIDENT_INVALID,
            extra={"reason": reason}, invalid_reason=reason,
        )  # fmt: skip

    async def transfer(
        self,
        session: StaffSession,
        incident_id: uuid.UUID,
        target: TransferTarget,
        name: str,
        note: str,
    ) -> Incident:
        transfer = {"kind": target.value, "name": name, "note": note}
        return await self._simple(
            session, incident_id, Action.TRANSFER, EventType.INCIDENT_TRANSFERRED,
            extra={"transfer": transfer}, transfer=transfer,
        )  # fmt: skip

    async def reroute(
        self, session: StaffSession, incident_id: uuid.UUID, precinct_code: str, note: str
    ) -> Incident:
        async with self.pool.acquire() as conn:
            # A dispatcher may give the precinct's name (鼓楼区) as well as its code.
            code = await precinct_store.active_code(conn, precinct_code)
        if code is None:
            raise BadRequest(
                f"unknown precinct {precinct_code!r}: give an active precinct's code or its "
                "exact name",
                field="precinct_code",
            )
        precinct_code = code
        return await self._simple(
            session, incident_id, Action.REROUTE, EventType.INCIDENT_TRANSFERRED,
            extra={"transfer": {"kind": "precinct", "name": precinct_code, "note": note}},
            precinct_code=precinct_code, jurisdiction="inside", nearest_precinct_code=None,
            distance_m=None, claimed_by=None, claimed_at=None,
        )  # fmt: skip

    async def merge(
        self, session: StaffSession, incident_id: uuid.UUID, into: uuid.UUID
    ) -> Incident:
        if incident_id == into:
            raise BadRequest("an incident cannot be merged into itself", field="into")
        async with self.pool.acquire() as conn:
            target = await store.get_incident(conn, into)
        if target is None or not scope_of(session.user).sees(target):
            raise NotFound("no such target incident in your precincts", field="into")
        if not target.state.is_open:
            raise InvalidTransition(
                f"cannot merge into incident {target.case_no}: it is {target.state.value}",
                field="into",
            )
        return await self._simple(
            session, incident_id, Action.MERGE, EventType.INCIDENT_MERGED,
            extra={"into": str(into), "into_case_no": target.case_no}, merged_into=into,
        )  # fmt: skip

    async def unmerge(self, session: StaffSession, incident_id: uuid.UUID) -> Incident:
        return await self._simple(
            session, incident_id, Action.UNMERGE, EventType.INCIDENT_UNMERGED, holder_only=False,
            merged_into=None, claimed_by=None, claimed_at=None,
        )  # fmt: skip

    async def assign(
        self,
        session: StaffSession,
        incident_id: uuid.UUID,
        officer_ids: Sequence[int],
        mutual_aid_reason: str | None = None,
    ) -> Incident:
        """Send officers.  Officers who do not serve the incident's precinct go only as
        mutual aid, asked for with a reason: recorded in the history and shown to their
        home precinct's consoles (`officer.mutual_aid`)."""
        session.require(*_WORKERS)
        if not officer_ids or len(set(officer_ids)) != len(officer_ids):
            raise BadRequest("name one or more different officers", field="officer_ids")
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            before = await self._load(conn, session, incident_id)
            state = transition(before.state, Action.ASSIGN)
            self._require_holder(session, before)
            officers = {o.user_id: o for o in await officer_store.officers_in(conn, officer_ids)}
            missing = sorted(set(officer_ids) - set(officers))
            if missing:
                raise BadRequest(f"no such officer(s): {missing}", field="officer_ids")
            for officer in officers.values():
                if officer.status == "off_duty":
                    raise Conflict(f"officer {officer.callsign} is off duty", field="officer_ids")
            already = await assignment_store.active_assignment_officers(conn, incident_id)
            fresh = [o for o in officer_ids if o not in already]
            if not fresh:
                raise Conflict("these officers are already assigned", field="officer_ids")
            scope = before.scope_precinct
            aid = {o: sorted(officers[o].precincts) for o in fresh
                   if scope is None or scope not in officers[o].precincts}  # fmt: skip
            if aid and not mutual_aid_reason:
                callsigns = ", ".join(officers[o].callsign for o in aid)
                raise Forbidden(
                    f"{callsigns} do(es) not serve precinct {scope or '(none)'}: send officers "
                    "of another precinct only as mutual aid, with mutual_aid_reason saying why",
                    field="officer_ids",
                )
            after = await store.update_incident(conn, incident_id, now, state=state)
            extra: dict[str, Any] = {}
            if aid:
                extra["mutual_aid"] = {"officer_ids": sorted(aid), "reason": mutual_aid_reason}
            events = [
                await self._event(conn, EventType.INCIDENT_ASSIGNED, session.actor, after,
                                  officer_ids=fresh,
                                  callsigns=[officers[o].callsign for o in fresh], **extra)
            ]  # fmt: skip
            for officer_id, home in aid.items():
                for precinct in home:
                    # Their home precinct sees where its officer went, and why.
                    events.append(
                        await event_store.append_event(
                            conn, EventType.OFFICER_MUTUAL_AID, session.actor,
                            {"officer_id": officer_id, "callsign": officers[officer_id].callsign,
                             "incident_id": str(after.id), "case_no": after.case_no,
                             "precinct_code": scope, "reason": mutual_aid_reason},
                            incident_id=after.id, precinct_code=precinct,
                        )
                    )  # fmt: skip
            for officer_id in fresh:
                assignment_id = uuid.uuid4()
                await assignment_store.insert_assignment(
                    conn, assignment_id, incident_id, officer_id, session.user.id, now,
                    now + self.offer_for,
                )  # fmt: skip
                events.append(
                    await event_store.append_event(
                        conn, EventType.ASSIGNMENT_OFFERED, session.actor,
                        {"incident": incident_view(after), "assignment_id": str(assignment_id),
                         "officer_id": officer_id, "callsign": officers[officer_id].callsign,
                         "offers": 1},
                        incident_id=incident_id, precinct_code=after.scope_precinct,
                        citizen_id=after.citizen_id, officer_id=officer_id,
                    )
                )  # fmt: skip
        await self._after_commit(before, after, events)
        return after

    async def note(
        self, session: StaffSession, incident_id: uuid.UUID, text: str, kind: str
    ) -> StoredEvent:
        """A follow-up or callback note: on the record, no change of state."""
        session.require(*_WORKERS)
        async with self.pool.acquire() as conn, conn.transaction():
            incident = await self._load(conn, session, incident_id)
            event = await self._event(
                conn, EventType.INCIDENT_NOTE, session.actor, incident, kind=kind, text=text
            )
        await self.publisher.publish([event])
        return event
